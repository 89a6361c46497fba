"""Sequence models: training steps of the nanoGPT CPU configuration (4 layers, 4 heads, width
128, context 64, batch 12, AdamW) and of a 1-layer LSTM (width 256, T 64, batch 32) on a
65-character vocabulary (random ids: speed does not depend on values), fnn (both kernel
backends), PyTorch CPU and JAX CPU interleaved in the same run; then fnn's generation of 500
characters with the cache (recurrent state, key/value cache: O(T) per token) vs without
(the full forward for every token). Targets: fnn / torch <= 1.0 on the training steps.

JAX (optional: skipped with a note when not installed) runs one jitted step (forward,
backward and a hand-written AdamW, as ``torch.optim.AdamW``, in one XLA program) on fnn's
initial params; its compile time is measured apart. Before timing, each model's float64
losses after 0, 1 and 2 AdamW steps are checked to be the same in fnn and JAX (same work).

    python benchmarks/bench_sequences.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from harness import backends, compare, load_jax, load_torch, pin_to_cores, threads

import fnn
from fnn.tree import tree_map

V, STEPS, LR = 65, 10, 3e-4
GPT = {"width": 128, "heads": 4, "blocks": 4, "context": 64, "batch": 12}
LSTM = {"width": 256, "context": 64, "batch": 32}
TARGETS = {"fnn-compiled/torch": 1.0, "fnn-numpy/torch": 1.0}


def gpt(max_len: int = GPT["context"]):
    w = GPT["width"]
    return fnn.serial(fnn.embedding(V, w), fnn.positional_embedding(max_len),
                      *[fnn.transformer_block(GPT["heads"], w) for _ in range(GPT["blocks"])],
                      fnn.layer_norm(), fnn.linear(V))


def lstm():
    return fnn.serial(fnn.embedding(V, LSTM["width"]), fnn.lstm(LSTM["width"]), fnn.linear(V))


def _data(cfg, steps, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(cfg["batch"] * steps, cfg["context"] + 1))
    return ids[:, :-1], ids[:, 1:]


def fnn_steps(model, cfg, steps, backend):
    x, y = _data(cfg, steps)
    _, params = model.init(fnn.key(0), (-1, cfg["context"]))
    opt = fnn.adamw(LR, weight_decay=0.0)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt, threads=threads())
    data = fnn.batches(x, y, batch_size=cfg["batch"], shuffle=False)
    box = {"state": fnn.TrainState.create(params, opt)}

    def run():
        with fnn.ops.using(backend):
            state = box["state"]
            for batch in data.epoch(0):
                state, _ = step(state, batch)
            box["state"] = state

    run.shards = threads()
    return run


def _torch_gpt(torch):
    nn, w = torch.nn, GPT["width"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(w), nn.LayerNorm(w)
            self.attn = nn.MultiheadAttention(w, GPT["heads"], batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(w, 4 * w), nn.GELU("tanh"), nn.Linear(4 * w, w))

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class GPTModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(V, w), nn.Parameter(torch.zeros(GPT["context"], w))
            self.blocks = nn.ModuleList(Block() for _ in range(GPT["blocks"]))
            self.ln, self.head = nn.LayerNorm(w), nn.Linear(w, V)

        def forward(self, ids):
            t = ids.shape[1]
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            x = self.tok(ids) + self.pos[:t]
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.ln(x))

    return GPTModel()


def _torch_lstm(torch):
    nn = torch.nn

    class LSTMModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(V, LSTM["width"])
            self.lstm = nn.LSTM(LSTM["width"], LSTM["width"], batch_first=True)
            self.head = nn.Linear(LSTM["width"], V)

        def forward(self, ids):
            return self.head(self.lstm(self.tok(ids))[0])

    return LSTMModel()


def torch_steps(torch, model, cfg, steps):
    x, y = (torch.from_numpy(a) for a in _data(cfg, steps))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    b = cfg["batch"]

    def run():
        for i in range(0, len(x), b):
            opt.zero_grad()
            logits = model(x[i:i + b])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y[i:i + b].reshape(-1))
            loss.backward()
            opt.step()

    return run


# --- JAX: the same models on fnn's params tree (so from the same initial weights) -----------

def _jax_layer_norm(jax, x, p, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def _jax_attention(jax, x, p, heads):
    """Causal multi-head self-attention, fnn's ``multi_head_attention`` params."""
    jnp = jax.numpy
    n, t, w = x.shape
    qkv = (x @ p["w_qkv"] + p["b_qkv"]).reshape(n, t, 3, heads, w // heads)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (N, h, T, d)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(w // heads)
    scores = jnp.where(jnp.tril(jnp.ones((t, t), bool)), scores, -jnp.inf)
    out = (jax.nn.softmax(scores, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(n, t, w)
    return out @ p["w_o"] + p["b_o"]


def jax_gpt(jax):
    """``predict(params, ids) -> logits`` of :func:`gpt` in JAX on its params tree."""

    def predict(p, ids):
        keys = sorted(p)
        x = p[keys[0]]["table"][ids] + p[keys[1]]["table"][:ids.shape[1]]
        for name in keys[2:-2]:  # the transformer blocks
            att, mlp = p[name]["00_residual"], p[name]["01_residual"]
            x = x + _jax_attention(jax, _jax_layer_norm(jax, x, att["00_layer_norm"]),
                                   att["01_multi_head_attention"], GPT["heads"])
            h = _jax_layer_norm(jax, x, mlp["00_layer_norm"])
            h = jax.nn.gelu(h @ mlp["01_linear"]["w"] + mlp["01_linear"]["b"], approximate=True)
            x = x + h @ mlp["03_linear"]["w"] + mlp["03_linear"]["b"]
        head = p[keys[-1]]
        return _jax_layer_norm(jax, x, p[keys[-2]]) @ head["w"] + head["b"]

    return predict


def jax_lstm(jax):
    """``predict(params, ids) -> logits`` of :func:`lstm` in JAX on its params tree: the
    input projection for every step at once, then ``lax.scan`` over time (gates i, f, g, o)."""
    jnp, sigmoid = jax.numpy, jax.nn.sigmoid

    def predict(p, ids):
        cell, head = p["01_lstm"], p["02_linear"]
        xw = p["00_embedding"]["table"][ids] @ cell["w_ih"] + (cell["b_ih"] + cell["b_hh"])

        def step(carry, xw_t):
            h, c = carry
            i, f, g, o = jnp.split(xw_t + h @ cell["w_hh"], 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * jnp.tanh(g)
            h = sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((ids.shape[0], cell["w_hh"].shape[0]), xw.dtype)
        _, hs = jax.lax.scan(step, (zeros, zeros), xw.transpose(1, 0, 2))
        return hs.transpose(1, 0, 2) @ head["w"] + head["b"]

    return predict


def jax_token_loss(jax):
    """Cross-entropy of ``(N, T, V)`` logits with ``(N, T)`` ids, mean over the N*T tokens."""

    def loss(logits, ids):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jax.numpy.take_along_axis(logp, ids[..., None], axis=-1).mean()

    return loss


def jax_adamw_step(jax, predict, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """``step(params, (m, v, t), x, y) -> (params, (m, v, t), loss)`` (to ``jax.jit``): value
    and gradient of the token loss, then AdamW as ``torch.optim.AdamW`` / ``fnn.adamw`` (bias-
    corrected moments, decoupled decay on every leaf: none here); and ``init(params)``, in the
    params' dtype."""
    jnp, tree = jax.numpy, jax.tree_util
    loss = jax_token_loss(jax)

    def objective(p, xb, yb):
        return loss(predict(p, xb), yb)

    def step(p, opt, xb, yb):
        value, g = jax.value_and_grad(objective)(p, xb, yb)
        m, v, t = opt
        t = t + 1
        m = tree.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        p = tree.tree_map(lambda p, m, v: p - LR * ((m / c1) / (jnp.sqrt(v / c2) + eps)
                                                    + weight_decay * p), p, m, v)
        return p, (m, v, t), value

    def init(params):
        params = tree.tree_map(jnp.asarray, params)
        zeros = tree.tree_map(jnp.zeros_like, params)
        return params, (zeros, zeros, jnp.zeros((), tree.tree_leaves(params)[0].dtype))

    return step, init


def _jax_batches(jax, cfg, steps):
    x, y = _data(cfg, steps)
    b, jnp = cfg["batch"], jax.numpy
    return [(jnp.asarray(x[i:i + b], jnp.int32), jnp.asarray(y[i:i + b], jnp.int32))
            for i in range(0, len(x), b)]


def jax_steps(jax, model, predict, cfg, steps):
    """``run()`` = ``steps`` AdamW steps in JAX, one jitted :func:`jax_adamw_step` each, from
    fnn's initial params of ``model``, on the same batches as :func:`fnn_steps`;
    ``run.compile_s``: the first step's compile time."""
    step, init = jax_adamw_step(jax, predict)
    step = jax.jit(step)
    batches = _jax_batches(jax, cfg, steps)
    params, opt = init(model.init(fnn.key(0), (-1, cfg["context"]))[1])
    t0 = time.perf_counter()
    jax.block_until_ready(step(params, opt, *batches[0]))
    compile_s = time.perf_counter() - t0
    box = {"state": (params, opt)}

    def run():
        params, opt = box["state"]
        for xb, yb in batches:
            params, opt, _ = step(params, opt, xb, yb)
        box["state"] = jax.block_until_ready((params, opt))

    run.compile_s = compile_s
    return run


def same_work(jax, model, predict, cfg, rtol: float = 1e-8) -> dict:
    """fnn and JAX (``predict``: :func:`jax_gpt` or :func:`jax_lstm`) in float64 from the same
    initial params on the same batches: the loss of batch ``i`` after ``i`` AdamW steps on
    the batches before it, ``i = 0, 1, 2`` (two steps: Adam's first step does not depend on
    its betas). A RuntimeError if they differ by more than ``rtol`` (float64: GELU's tanh
    approximation vs the exact one differs by 2e-6). Batches of 4 sequences (quicker)."""
    cfg = {**cfg, "batch": 4}
    x, y = _data(cfg, 3)
    b = cfg["batch"]
    batches = [(x[i:i + b], y[i:i + b]) for i in range(0, len(x), b)]
    params = tree_map(lambda a: a.astype(np.float64),
                      model.init(fnn.key(0), (-1, cfg["context"]))[1])
    opt = fnn.adamw(LR, weight_decay=0.0)
    state, step = fnn.TrainState.create(params, opt), fnn.supervised_step(
        model, fnn.cross_entropy, opt)
    ours = []
    for batch in batches:  # the loss of each batch before the step on it
        state, metrics = step(state, batch)
        ours.append(float(metrics["loss"]))
    jstep, init = jax_adamw_step(jax, predict)
    jstep = jax.jit(jstep)  # compiled: quicker than op by op
    theirs = []
    with jax.enable_x64(True):
        jparams, jopt = init(params)
        for xb, yb in batches:
            jparams, jopt, value = jstep(jparams, jopt, xb, yb)
            theirs.append(float(value))
    if not np.allclose(ours, theirs, rtol=rtol, atol=0):
        raise RuntimeError(f"fnn and JAX do not compute the same thing: float64 losses "
                           f"{ours} (fnn) vs {theirs} (JAX)")
    return {"dtype": "float64", "losses_fnn": ours, "losses_jax": theirs}


def flops(name: str, steps: int) -> int:
    """Multiply-add FLOPs of ``steps`` training steps (forward + 2x backward), counted from
    the matmuls: per token, the dense weights (and attention over T/2 keys on average)."""
    if name == "gpt":
        w, t = GPT["width"], GPT["context"]
        per_token = 2 * (GPT["blocks"] * (12 * w * w + 2 * t * w) + w * V)
        tokens = GPT["batch"] * t
    else:
        w = LSTM["width"]
        per_token = 2 * (8 * w * w + w * V)
        tokens = LSTM["batch"] * LSTM["context"]
    return 3 * per_token * tokens * steps


def generation(model, chars: int, repeats: int) -> dict:
    """Seconds to generate ``chars`` characters from one, with and without the cache."""
    _, params = model.init(fnn.key(0), (-1, 8))
    prompt = np.zeros((1, 1), np.int64)
    out = {}
    for cache in (True, False):
        fnn.generate(model, params, prompt, 4, fnn.key(1), cache=cache)  # warm-up (numba)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fnn.generate(model, params, prompt, chars, fnn.key(1), cache=cache)
            times.append(time.perf_counter() - t0)
        out["cache" if cache else "no_cache"] = min(times)
    out["speedup"] = out["no_cache"] / out["cache"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny runs, nothing saved")
    args = parser.parse_args(argv)
    steps, chars, repeats = (2, 40, 1) if args.quick else (STEPS, 500, args.repeats)
    torch, jax = load_torch(), load_jax()
    if jax is None:
        print("JAX is not installed (pip install jax jaxlib): its column is skipped", flush=True)
    results = {}
    for name, build, torch_build, jax_build, cfg in (
            ("gpt", gpt, _torch_gpt, jax_gpt, GPT), ("lstm", lstm, _torch_lstm, jax_lstm, LSTM)):
        # generation: a position table long enough for every generated character
        gen = generation(gpt(max_len=chars + 1) if name == "gpt" else lstm(), chars, repeats)
        print(f"generate {chars} chars, {name}: cache {gen['cache']:.2f} s, no cache "
              f"{gen['no_cache']:.2f} s ({gen['speedup']:.1f}x)", flush=True)
        extra: dict = {"generation": {"chars": chars, **gen}}
        runs = {f"fnn-{b}": fnn_steps(build(), cfg, steps, b) for b in backends()}
        runs["torch"] = torch_steps(torch, torch_build(torch), cfg, steps) if torch else None
        if jax:
            check = extra["same_work"] = same_work(jax, build(), jax_build(jax), cfg)
            print(f"same work, {name}: float64 losses after 0, 1, 2 AdamW steps, fnn "
                  + " / ".join(f"{v:.10f}" for v in check["losses_fnn"]) + ", JAX "
                  + " / ".join(f"{v:.10f}" for v in check["losses_jax"]), flush=True)
            runs["jax"] = jax_steps(jax, build(), jax_build(jax), cfg, steps)
        what = f"{steps} AdamW steps, {name} {cfg}, vocabulary {V}"
        results[name] = compare(f"{name}_{steps}_steps", what, runs, flops=flops(name, steps),
                                repeats=repeats, targets=TARGETS, save=not args.quick,
                                extra=extra)
    return results


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
