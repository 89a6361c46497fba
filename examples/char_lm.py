"""Character-level language models on Tiny Shakespeare: nanoGPT's CPU GPT and an LSTM.

    python examples/char_lm.py [--quick] [--models gpt,lstm] [--iters 2000]
                               [--eval-interval 250] [--eval-iters 200]

Data: Tiny Shakespeare (``$FNN_DATA/tinyshakespeare/input.txt``), its first 90% for training
and the last 10% for validation (nanoGPT's split), one id per character (65 characters).

GPT (``char_lm_models.gpt``): nanoGPT's configuration for a CPU ("I'm on a macbook" in its
README: ``--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``, with ``config/train_shakespeare_char.py``
for the rest): 4 pre-norm blocks of 4 heads, width 128, context 64, batch 12 random windows,
no dropout; AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on the matrices), gradients
clipped to global norm 1, the lr warming up linearly over 100 iterations then following a
cosine to 1e-4 at iteration 2000. The LSTM (``embedding(65, 64) -> lstm(256) -> linear(65)``)
trains on the same batches with the same optimiser and schedule.

Evaluation as nanoGPT's ``estimate_loss``: every ``--eval-interval`` iterations (and before the
first) the mean cross-entropy in nats per character over ``--eval-iters`` batches of random
windows of the validation text, and of the training text (200: the value of nanoGPT's config
file; its CPU line estimates over 20). Unlike nanoGPT, whose batches are drawn afresh at each
evaluation, these windows are drawn once (a fixed sample of ``eval_iters x batch`` windows),
so the curve's steps are the model's, not the sample's. Samples: ``--sample-chars``
characters after a newline at every estimate, temperature 1 (the GPT, whose position table
has ``context`` rows, generates half a context at a time from the latest half; the LSTM
carries its state).

Each model trains through ``fnn.train`` with checkpoints in ``<out>/checkpoints/<model>``
(every 50 iterations): a killed run started again continues where it stopped, with the same
numbers. Outputs in ``<out>``: ``curves.png`` (train/validation loss of both models),
``samples.txt`` (text generated at every evaluation), ``attention.png`` (one head's attention
for a prompt), ``results.json`` (iterations, wall time, losses, threads, CPU).
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import char_lm_models as models  # noqa: E402
import common  # noqa: E402

NAME = "char_lm"
NEEDS_REAL_DATA = True
TARGET = 1.88  # nanoGPT's CPU run: "val loss 1.88" after 2000 iterations
PROMPT = "ROMEO:\nBut soft, what light"
QUICK = {"iters": 12, "eval_interval": 6, "eval_iters": 2, "n_layer": 1, "width": 32,
         "heads": 2, "lstm_hidden": 32, "lstm_embed": 16, "sample_chars": 40, "warmup": 3}


def cpu_model() -> str:
    """The processor's name from ``/proc/cpuinfo`` (the platform's otherwise)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class WallClock:
    """Wall time of a run that may be killed and resumed: each process's span (start, latest
    tick) kept in ``path`` (JSON), ticked after every evaluation; the total is their sum."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.spans = json.loads(path.read_text())["spans"] if path.is_file() else []
        self.spans.append([time.time(), time.time()])

    def tick(self) -> float:
        self.spans[-1][1] = time.time()
        self.path.write_text(json.dumps({"spans": self.spans}))
        return self.total()

    def drop(self) -> float:
        """Forget this process's span (it trained nothing: the run was finished already)."""
        self.spans.pop()
        self.path.write_text(json.dumps({"spans": self.spans}))
        return self.total()

    def total(self) -> float:
        return float(sum(end - start for start, end in self.spans))


def build(kind: str, vocab: int, args) -> fnn.Layer:
    if kind == "gpt":
        return models.gpt(vocab, n_layer=args.n_layer, heads=args.heads, width=args.width,
                          context=args.context)
    return models.lstm_model(vocab, embed=args.lstm_embed, hidden=args.lstm_hidden)


def describe(kind: str, args) -> str:
    if kind == "gpt":
        return (f"GPT: {args.n_layer} pre-norm blocks, {args.heads} heads, width {args.width}, "
                f"context {args.context}, learned positions, GELU MLP (4x)")
    return f"LSTM: embedding(65, {args.lstm_embed}) -> lstm({args.lstm_hidden}) -> linear(65)"


def make_optimizer(args) -> fnn.Optimizer:
    """nanoGPT's: clip to global norm, AdamW, linear warm-up then cosine to ``--min-lr``."""
    schedule = fnn.optim.warmup_cosine_decay(args.lr, args.warmup, args.iters,
                                             start=args.lr / (args.warmup + 1),
                                             final=args.min_lr)
    return fnn.optim.chain(
        fnn.optim.clip_by_global_norm(args.grad_clip),
        fnn.adamw(schedule, b1=0.9, b2=args.beta2, weight_decay=args.weight_decay,
                  mask=models.decayed))


def describe_optimizer(args) -> str:
    return (f"AdamW lr {args.lr:g} (linear warm-up over {args.warmup} iterations, cosine to "
            f"{args.min_lr:g} at {args.iters}), betas (0.9, {args.beta2:g}), weight decay "
            f"{args.weight_decay:g} on matrices, gradient clip {args.grad_clip:g}")


def loss_over(model: fnn.Layer, params: Any, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Mean token cross-entropy over the windows, a batch at a time (nats per character)."""
    values = [models.token_cross_entropy.value(model.apply(params, x[i:i + batch]),
                                               y[i:i + batch]) for i in range(0, len(x), batch)]
    return float(np.mean(values))


def estimator(model: fnn.Layer, windows: dict, batch: int) -> fnn.EvalFn:
    """nanoGPT's ``estimate_loss`` on fixed windows: ``{"loss": validation, "train_loss"}``."""

    def eval_fn(state) -> dict:
        params = state.params if isinstance(state, fnn.TrainState) else state
        return {"loss": loss_over(model, params, *windows["val"], batch),
                "train_loss": loss_over(model, params, *windows["train"], batch)}

    rows = {k: len(v[0]) for k, v in windows.items()}
    return fnn.EvalFn(eval_fn, metric_names=("loss", "train_loss"), fingerprint=rows)


def generate(kind: str, model, params, vocab, args, key, prompt: str = "\n") -> str:
    """``--sample-chars`` characters after ``prompt`` (temperature 1, no top-k)."""
    ids = vocab.encode(prompt)[None]
    out = models.sample(model, params, ids, args.sample_chars, key,
                        context=args.context if kind == "gpt" else None)
    return prompt + vocab.decode(out[0])


def train_model(kind: str, data: dict, args, out: Path) -> dict:
    """One model through ``fnn.train``: an epoch is ``--eval-interval`` iterations, evaluated
    (and sampled from) at its end; checkpoints every 50 iterations."""
    key = fnn.key(args.seed)
    vocab = data["vocab"]
    model = build(kind, len(vocab), args)
    _, params, _ = fnn.init(model, fnn.fold_in(key, 0), (-1, args.context))
    if kind == "gpt":
        params = models.nanogpt_init(params, fnn.fold_in(key, 4), args.n_layer)
    opt = make_optimizer(args)
    batches = fnn.datasets.TokenWindows(data["train"], args.context, args.batch_size,
                                        args.eval_interval, rng=fnn.fold_in(key, 1))
    eval_fn = estimator(model, data["windows"], args.batch_size)
    step = fnn.supervised_step(model, models.token_cross_entropy, opt)
    samples_dir = out / "checkpoints" / "samples" / kind  # kept for a resumed run
    samples_dir.mkdir(parents=True, exist_ok=True)
    clock = WallClock(out / "checkpoints" / f"{kind}_wall.json")
    first = eval_fn(params)  # iteration 0, as nanoGPT's first estimate
    (samples_dir / f"{0:06d}.txt").write_text(
        generate(kind, model, params, vocab, args, fnn.fold_in(key, 2)))

    ran = []

    def report(epoch: int, state, history: fnn.History) -> None:
        ran.append(epoch)
        it = (epoch + 1) * args.eval_interval
        text = generate(kind, model, state.params, vocab, args, fnn.fold_in(key, 2))
        (samples_dir / f"{it:06d}.txt").write_text(text)
        clock.tick()
        if not args.progress:
            print(f"  {kind} iteration {it}/{args.iters}: train loss "
                  f"{history.eval['train_loss'][-1]:.4f}  val loss "
                  f"{history.eval['loss'][-1]:.4f}  ({history.seconds[-1]:.1f} s)", flush=True)

    t0 = time.time()
    state, history = fnn.train(
        step, batches, fnn.TrainState.create(params, opt), epochs=args.iters // args.eval_interval,
        eval_fn=eval_fn, callbacks=[report], progress=args.progress,
        checkpoint=out / "checkpoints" / kind, checkpoint_every=50,
        config={"model": kind, **common.settings_of(args, exclude=("models", "quick"))})
    iters = [0] + [(e + 1) * args.eval_interval for e in range(history.epochs)]
    val = [first["loss"], *history.eval["loss"]]
    reached = next((i for i, v in zip(iters, val) if v <= TARGET), None)
    fnn.save(out / f"{kind}_params.npz", state.params)
    return {"model": model, "params": state.params, "history": history, "summary": {
        "description": describe(kind, args), "params": fnn.tree_size(state.params),
        "iterations": int(state.step), "iters": iters, "val_loss": val,
        "train_loss": [first["train_loss"], *history.eval["train_loss"]],
        "batch_loss": history.train["loss"],
        "final_val_loss": val[-1], "best_val_loss": float(min(val)),
        "first_iteration_at_target": reached,
        "train_seconds": round(float(sum(history.seconds)), 1),
        "this_process_seconds": round(time.time() - t0, 1),
        "wall_seconds": round(clock.tick() if ran else clock.drop(), 1),
        "processes": len(clock.spans),
        "resumed": history.resumed, "stop_reason": history.stop_reason}}


# ----------------------------------------------------------------------------- figures

def curves_figure(summaries: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (kind, s) in enumerate(summaries.items()):
        ax.plot(s["iters"], s["train_loss"], "--", color=f"C{i}", label=f"{kind} train")
        ax.plot(s["iters"], s["val_loss"], "-o", ms=3, color=f"C{i}", label=f"{kind} validation")
    ax.axhline(TARGET, color="gray", ls=":", lw=1, label=f"nanoGPT CPU: {TARGET}")
    ax.set(xlabel="iteration", ylabel="cross-entropy (nats / char)",
           title="Tiny Shakespeare, character level")
    ax.set_ylim(top=min(4.5, ax.get_ylim()[1]))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attention_figure(model, params, vocab, args, prompt: str):
    """Head 0 of the first and of the last block for ``prompt``."""
    import matplotlib.pyplot as plt

    ids = vocab.encode(prompt[-args.context:])[None]
    chars = [{" ": "\u2423", "\n": "\\n"}.get(c, c) for c in vocab.decode(ids[0])]
    layers = sorted({0, args.n_layer - 1})
    fig, axes = plt.subplots(1, len(layers), figsize=(6.5 * len(layers), 6.2), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        p = models.attention_map(model, params, ids, layer=layer, head=0)
        ax.imshow(p, cmap="viridis", vmin=0, vmax=max(float(p.max()), 1e-6))
        ax.set_xticks(range(len(chars)), chars, fontsize=6, family="monospace")
        ax.set_yticks(range(len(chars)), chars, fontsize=6, family="monospace")
        ax.set(xlabel="key (attended character)", ylabel="query (current character)",
               title=f"block {layer + 1}, head 1 (causal)")
    fig.tight_layout()
    return fig


def gather_samples(out: Path, kinds) -> str:
    parts = []
    for kind in kinds:
        for path in sorted((out / "checkpoints" / "samples" / kind).glob("*.txt")):
            parts.append(f"===== {kind}, iteration {int(path.stem)} =====\n{path.read_text()}\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- main

def arguments(argv=None):
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--models", default="gpt,lstm", help="comma-separated: gpt, lstm")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=200,
                   help="batches of validation (and training) windows per estimate")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--lstm-hidden", type=int, default=256)
    p.add_argument("--lstm-embed", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--sample-chars", type=int, default=300)
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(args.models) - {"gpt", "lstm"}
    if unknown or not args.models:
        p.error(f"--models: choose among gpt, lstm; got {sorted(unknown) or 'nothing'}")
    if args.iters % args.eval_interval:
        p.error("--iters must be a multiple of --eval-interval")
    return args


def load(args) -> dict:
    text = fnn.datasets.tiny_shakespeare()
    vocab = fnn.datasets.CharVocab.from_text(text)
    split = fnn.datasets.split_text(text, 0.9)
    train, val = vocab.encode(split.train), vocab.encode(split.validation)
    count = args.eval_iters * args.batch_size
    key = fnn.fold_in(fnn.key(args.seed), 3)
    windows = {"val": fnn.datasets.sample_windows(val, args.context, count, fnn.fold_in(key, 0)),
               "train": fnn.datasets.sample_windows(train, args.context, count,
                                                    fnn.fold_in(key, 1))}
    return {"vocab": vocab, "train": train, "val": val, "windows": windows}


@common.one_blas_thread
def main(argv=None) -> dict:
    args = arguments(argv)
    out = common.out_dir(NAME, args)
    data = load(args)
    print(f"{NAME}: {len(data['train'])} training / {len(data['val'])} validation characters, "
          f"vocabulary {len(data['vocab'])}; {args.iters} iterations of batch {args.batch_size} "
          f"x {args.context}; {describe_optimizer(args)}", flush=True)
    data["vocab"].save(out / "vocab.json")
    runs = {kind: train_model(kind, data, args, out) for kind in args.models}
    summaries = {kind: r["summary"] for kind, r in runs.items()}
    for kind, s in summaries.items():
        print(f"{kind}: validation loss {s['final_val_loss']:.4f} nats/char after "
              f"{s['iterations']} iterations ({s['train_seconds']:.0f} s)", flush=True)
    paths = [common.save(curves_figure(summaries), out, "curves.png")]
    if "gpt" in runs:
        g = runs["gpt"]
        paths.append(common.save(attention_figure(g["model"], g["params"], data["vocab"], args,
                                                  PROMPT), out, "attention.png"))
    (out / "samples.txt").write_text(gather_samples(out, args.models))
    threads = {"blas": 1, "omp": __import__("os").environ.get("OMP_NUM_THREADS"),
               "batch_shards": 1}
    metrics = {
        "target_val_loss": TARGET, "optimizer": describe_optimizer(args),
        "settings": {k: v for k, v in common.settings_of(args).items() if k != "quick"},
        "protocol": ("Tiny Shakespeare, first 90% train / last 10% validation (nanoGPT's split); "
                     f"loss estimated every {args.eval_interval} iterations over "
                     f"{args.eval_iters} batches of {args.batch_size} random windows of "
                     f"{args.context} characters, drawn once (fixed), of each split"),
        "cpu": cpu_model(), "cores": __import__("os").cpu_count(), "threads": threads,
        "machine_shared": True, "models": summaries,
        "notes": notes(summaries, args, cpu_model()),
    }
    # the run's seconds: the models' wall time over every process that trained them (a run
    # killed and resumed, or re-run once finished, counts the time it trained), not this call's
    wall = sum(s["wall_seconds"] for s in summaries.values())
    common.write_results(NAME, out, args, metrics, rows=rows(summaries),
                         started=time.time() - wall)
    return {"out": str(out), "figures": [str(p) for p in paths], **metrics}


def rows(summaries: dict) -> list[dict]:
    """RESULTS.md rows (examples/make_results.py), every number read from ``summaries``."""
    lines = []
    for kind, s in summaries.items():
        per_it = s["train_seconds"] / max(s["iterations"], 1)
        lines.append({"what": f"{s['description']} ({s['params']:,} params): validation loss, "
                              f"nats/char, after {s['iterations']} iterations",
                      "measured": f"{s['final_val_loss']:.4f}",
                      "report": f"nanoGPT CPU: {TARGET}" if kind == "gpt" else ""})
        lines.append({"what": f"{kind}: wall time (evaluations and samples included) / "
                              "training steps alone",
                      "measured": f"{s['wall_seconds']:.0f} s / {s['train_seconds']:.0f} s "
                                  f"({per_it:.2f} s/iteration)", "report": ""})
        if kind == "gpt":
            at = s["first_iteration_at_target"]
            lines.append({"what": f"GPT: first estimate at or below {TARGET}",
                          "measured": f"iteration {at}" if at is not None else "not reached",
                          "report": "iteration 2000"})
    return lines


def notes(summaries: dict, args, cpu: str) -> str:
    """The RESULTS.md paragraph under the table, from the run's numbers."""
    curve = "; ".join(
        f"{kind}: " + ", ".join(f"{v:.3f}" for v in s["val_loss"]) for kind, s in summaries.items())
    bits = "; ".join(f"{kind} {s['final_val_loss'] / math.log(2):.3f}"
                     for kind, s in summaries.items())
    return (f"Tiny Shakespeare, first 90% train / last 10% validation, characters as tokens "
            f"(65). Both models train {args.iters} iterations of {args.batch_size} random "
            f"windows of {args.context} characters with {describe_optimizer(args)}; the loss is "
            f"estimated every {args.eval_interval} iterations over {args.eval_iters} batches of "
            f"windows drawn once from each split. The GPT differs from nanoGPT's in two "
            f"details: its output layer is not tied to the token embedding, and its linear and "
            f"layer-norm layers have biases. Validation loss at iterations 0, "
            f"{args.eval_interval}, ...: {curve} (final, in bits per character: {bits}). "
            f"One process, BLAS and OpenMP on one thread, "
            f"on {cpu}; the machine's 2 cores were shared with other jobs during the run, so the "
            f"times are upper bounds. Samples of generated text at every estimate: "
            f"[samples.txt](results/char_lm/samples.txt).")


if __name__ == "__main__":
    main()
