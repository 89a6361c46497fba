"""Sequence models: training steps of the nanoGPT CPU configuration (4 layers, 4 heads, width
128, context 64, batch 12, AdamW) and of a 1-layer LSTM (width 256, T 64, batch 32) on a
65-character vocabulary (random ids: speed does not depend on values), fnn (both kernel
backends) and PyTorch CPU interleaved in the same run; then fnn's generation of 500
characters with the cache (recurrent state, key/value cache: O(T) per token) vs without
(the full forward for every token). Targets: fnn / torch <= 1.0 on the training steps.

    python benchmarks/bench_sequences.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from harness import backends, compare, load_torch, pin_to_cores, threads

import fnn

V, STEPS = 65, 10
GPT = {"width": 128, "heads": 4, "blocks": 4, "context": 64, "batch": 12}
LSTM = {"width": 256, "context": 64, "batch": 32}
TARGETS = {"fnn-compiled/torch": 1.0, "fnn-numpy/torch": 1.0}


def _token_loss():
    """Cross-entropy over every token of ``(N, T, V)`` logits, mean over the N*T tokens
    (nanoGPT's ``F.cross_entropy(logits.view(-1, V), y.view(-1))``)."""
    ce = fnn.cross_entropy

    def vjp(z, y):
        value, dz = ce.vjp(z.reshape(-1, z.shape[-1]), y.reshape(-1))
        return value, dz.reshape(z.shape)

    return fnn.Loss(lambda z, y: ce.value(z.reshape(-1, z.shape[-1]), y.reshape(-1)), vjp,
                    "token_cross_entropy")


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
    opt = fnn.adamw(3e-4, weight_decay=0.0)
    step = fnn.supervised_step(model, _token_loss(), opt, threads=threads())
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
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.0)
    b = cfg["batch"]

    def run():
        for i in range(0, len(x), b):
            opt.zero_grad()
            logits = model(x[i:i + b])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y[i:i + b].reshape(-1))
            loss.backward()
            opt.step()

    return run


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
    torch = load_torch()
    results = {}
    for name, build, torch_build, cfg, in (("gpt", gpt, _torch_gpt, GPT),
                                           ("lstm", lstm, _torch_lstm, LSTM)):
        # generation: a position table long enough for every generated character
        gen = generation(gpt(max_len=chars + 1) if name == "gpt" else lstm(), chars, repeats)
        print(f"generate {chars} chars, {name}: cache {gen['cache']:.2f} s, no cache "
              f"{gen['no_cache']:.2f} s ({gen['speedup']:.1f}x)", flush=True)
        runs = {f"fnn-{b}": fnn_steps(build(), cfg, steps, b) for b in backends()}
        runs["torch"] = torch_steps(torch, torch_build(torch), cfg, steps) if torch else None
        what = f"{steps} AdamW steps, {name} {cfg}, vocabulary {V}"
        results[name] = compare(f"{name}_{steps}_steps", what, runs, flops=flops(name, steps),
                                repeats=repeats, targets=TARGETS, save=not args.quick,
                                extra={"generation": {"chars": chars, **gen}})
    return results


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
