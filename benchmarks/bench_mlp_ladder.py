"""Where the MLP epoch's time goes (``bench_mlp``: ``Linear(256,100) -> TanH -> Linear(100,10)``,
7291 x 256 float32, batch 32, SGD): the same epoch built up rung by rung, each rung adding
one part of fnn to the one before, timed interleaved in one process, with JAX's jitted step
beside them as the reference:

1. ``kernels``: the epoch written by hand on fnn's own kernels (BLAS products, ``fnn.ops``'
   tanh, softmax cross-entropy and ``add_scaled``), batches gathered by hand: what the maths
   costs on this machine without fnn's plumbing;
2. ``+ batches``: the batches from :func:`fnn.batches`;
3. ``+ value_and_grad``: the gradients from :func:`fnn.value_and_grad` (the model, its
   fused linear + tanh, the loss, their checks);
4. ``+ apply_gradients``: the update from :func:`fnn.optim.apply_gradients`;
5. ``supervised_step``: the whole step of ``bench_mlp`` (its metrics and TrainState).

Printed per rung: milliseconds per epoch (median and best), the microseconds per step it adds
to the rung before (the median over repeats of the difference between the two, which ran one
right after the other: the host's load moves whole repeats by more than a rung adds), and its
ratio to JAX (median, per-repeat range). Saved to
``results/mlp_ladder_<threads>t.json`` (``..._default_malloc.json`` with glibc's own malloc
settings, as the other benchmarks). The kernels rung's params after an epoch equal the
whole step's to float rounding (``tests/test_benchmarks.py`` checks it), so the rungs do the
same work.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_mlp_ladder.py [--repeats 9]
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from bench_mlp import BATCH, LR, C, D, N, build, jax_predict
from harness import (
    MEMORY,
    RESULTS,
    interleaved,
    jax_losses,
    jax_trainer,
    load_jax,
    machine,
    pin_to_cores,
    ratio_stats,
    repeats_arg,
    threads,
)

import fnn
from fnn.ops import activations
from fnn.ops.blas import matmul
from fnn.ops.losses import softmax_cross_entropy
from fnn.ops.update import add_scaled
from fnn.optim import apply_gradients

RUNGS = ("kernels", "+ batches", "+ value_and_grad", "+ apply_gradients", "supervised_step")


def hand_batches(x: np.ndarray, y: np.ndarray, epoch: int):
    """The batches of ``fnn.batches(x, y, batch_size=BATCH, rng=0).epoch(epoch)``, gathered
    by hand (the same permutation: checked by the tests)."""
    perm = np.random.default_rng(fnn.fold_in(np.random.SeedSequence(0), epoch)).permutation(len(x))
    for start in range(0, len(x), BATCH):
        rows = perm[start:start + BATCH]
        yield x.take(rows, 0), y.take(rows, 0)


def hand_grads(params: dict, xb: np.ndarray, yb: np.ndarray) -> tuple[float, dict]:
    """Loss and gradients of the MLP on fnn's kernels, written out (no layers, no checks)."""
    l1, l2 = params["00_linear"], params["02_linear"]
    z = matmul(xb, l1["w"])
    z += l1["b"]
    h = activations.tanh(z)
    out = matmul(h, l2["w"])
    out += l2["b"]
    value, d = softmax_cross_entropy(out, yb)
    dh = activations.tanh_vjp(z, h, matmul(d, l2["w"].T))
    return value, {"00_linear": {"w": matmul(xb.T, dh), "b": dh.sum(0)}, "01_tanh": {},
                   "02_linear": {"w": matmul(h.T, d), "b": d.sum(0)}}


def hand_update(params: dict, grads: dict) -> dict:
    """``params - LR * grads``, leaf by leaf (``fnn.ops.update.add_scaled``)."""
    return {name: {k: add_scaled(p, grads[name][k], -LR) for k, p in layer.items()}
            for name, layer in params.items()}


def ladder(x: np.ndarray, y: np.ndarray, params: dict) -> dict:
    """``{rung: run}``: each ``run(epoch)`` trains one epoch from ``params`` and returns the
    params after it (every rung starts from the same params, so each repeat does the same
    work)."""
    model, opt = build(), fnn.sgd(LR)
    data = fnn.batches(x, y, batch_size=BATCH, rng=0)
    grads_of = fnn.value_and_grad(model, fnn.cross_entropy).fn
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)

    def kernels(epoch):
        p = params
        for xb, yb in hand_batches(x, y, epoch):
            p = hand_update(p, hand_grads(p, xb, yb)[1])
        return p

    def with_batches(epoch):
        p = params
        for xb, yb in data.epoch(epoch):
            p = hand_update(p, hand_grads(p, xb, yb)[1])
        return p

    def with_value_and_grad(epoch):
        p = params
        for xb, yb in data.epoch(epoch):
            p = hand_update(p, grads_of(p, xb, yb)[1])
        return p

    def with_apply_gradients(epoch):
        p, s = params, opt.init(params)
        for xb, yb in data.epoch(epoch):
            p, s = apply_gradients(opt, grads_of(p, xb, yb)[1], s, p)
        return p

    def whole_step(epoch):
        state = fnn.TrainState.create(params, opt)
        for batch in data.epoch(epoch):
            state, _ = step(state, batch)
        return state.params

    return dict(zip(RUNGS, (kernels, with_batches, with_value_and_grad, with_apply_gradients,
                            whole_step)))


def main(argv=None) -> dict:
    repeats = repeats_arg(__doc__, argv, default=9)
    rng = np.random.default_rng(0)
    x = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    params = build().init(fnn.key(0), (-1, D))[1]
    runs = {name: (lambda run=run: run(0)) for name, run in ladder(x, y, params).items()}
    jax = load_jax()
    if jax is not None:
        runs["jax"] = jax_trainer(jax, jax_predict(jax), jax_losses(jax)["cross_entropy"],
                                  params, x, y, batch_size=BATCH, lr=LR)
    times = interleaved(runs, repeats)
    steps = -(-N // BATCH)
    rows, before = {}, None
    for name, ts in times.items():
        row: dict = {"median_s": statistics.median(ts), "best_s": min(ts), "times_s": ts}
        if name != "jax" and before is not None:  # paired: the two ran one after the other
            row["adds_us_per_step"] = 1e6 * statistics.median(
                t - b for t, b in zip(ts, before)) / steps
        if name != "jax":
            before = ts
        if "jax" in times and name != "jax":
            row["over_jax"] = ratio_stats(ts, times["jax"])
        rows[name] = row
    print(f"mlp_ladder ({threads()}t), ms per epoch of {steps} steps (median, best), on "
          f"fnn's {fnn.ops.backend()} kernels:")
    for name, row in rows.items():
        adds = f"  adds {row['adds_us_per_step']:+6.1f} us/step" if "adds_us_per_step" in row \
            else " " * 24
        vs = row.get("over_jax")
        ratio = f"  / jax {vs['median']:.2f}x [{vs['min']:.2f}-{vs['max']:.2f}]" if vs else ""
        print(f"    {name:18s} {row['median_s'] * 1e3:6.1f} {row['best_s'] * 1e3:6.1f}"
              f"{adds}{ratio}")
    result = {"benchmark": "mlp_ladder", "threads": threads(), "freed_memory": MEMORY,
              "backend": fnn.ops.backend(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "repeats": repeats,
              "steps_per_epoch": steps, "rungs": rows, "machine": machine()}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if MEMORY == "reused" else "_default_malloc"
    (RESULTS / f"mlp_ladder_{threads()}t{suffix}.json").write_text(json.dumps(result, indent=2)
                                                                   + "\n")
    return result


if __name__ == "__main__":
    pin_to_cores(threads())
    main()
