"""Shared timing harness: fnn and PyTorch CPU timed in the same run, medians, ratio, JSON.

Importing it applies :func:`fnn.reuse_freed_memory` to the process, so both libraries run
under it (``FNN_BENCH_MALLOC=default`` keeps glibc's defaults; results then go to
``*_default_malloc.json``). Each benchmark builds two zero-argument callables (one epoch / N
steps of training in fnn and in torch, same model, data, batch size and optimiser;
:func:`fnn_trainer` and :func:`torch_trainer` make them), then calls :func:`compare`. Torch is
optional (``pip install torch==2.13.0``); without it only fnn's times are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def memory_setting() -> str:
    """``"reused"``: :func:`fnn.reuse_freed_memory` applied to this process (so to both
    libraries), the default; ``"default"``: glibc's own settings, when ``FNN_BENCH_MALLOC=default``
    or on a platform where the call does nothing."""
    import fnn

    if os.environ.get("FNN_BENCH_MALLOC") == "default":
        return "default"
    return "reused" if fnn.reuse_freed_memory() else "default"


MEMORY = memory_setting()


def load_torch():
    """The torch module pinned to this machine's cores, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads())
    return torch


def repeats_arg(doc: str, argv, default: int = 5) -> int:
    """The ``--repeats`` option of a benchmark script (its docstring's first line as help)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=default)
    return parser.parse_args(argv).repeats


def threads() -> int:
    """Threads for both libraries: all cores, or ``OPENBLAS_NUM_THREADS`` when set (numpy's
    BLAS reads it at import; torch is told the same number here)."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)


def fnn_trainer(model, loss, x, y, *, batch_size: int, lr: float, steps: int | None = None,
                shards: int = 1):
    """``run()`` = one epoch (or ``steps`` steps) of plain SGD on ``(x, y)`` in fnn, shuffled.

    ``shards > 1`` runs each batch as that many shards at once (``fnn.value_and_grad``'s
    ``threads``; the conv nets use one per core, as torch runs each op on every core); with 1,
    only BLAS uses the cores (faster for small nets, whose shards would be tiny)."""
    import fnn

    _, params = model.init(fnn.key(0), (-1, *x.shape[1:]))
    opt = fnn.sgd(lr)
    step = fnn.supervised_step(model, loss, opt, threads=shards)
    data = fnn.batches(x, y, batch_size=batch_size, rng=0)
    box = {"state": fnn.TrainState.create(params, opt), "epoch": 0}

    def run():
        state = box["state"]
        for i, batch in enumerate(data.epoch(box["epoch"])):
            if steps is not None and i == steps:
                break
            state, _ = step(state, batch)
        box["state"], box["epoch"] = state, box["epoch"] + 1

    run.shards = shards
    return run


def torch_trainer(torch, model, loss_fn, x, y, *, batch_size: int, lr: float,
                  steps: int | None = None):
    """The same as :func:`fnn_trainer` in PyTorch (``x`` already in torch's layout)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)

    def run():
        perm = torch.randperm(len(xt), generator=gen)
        xs, ys = xt[perm], yt[perm]
        for i, start in enumerate(range(0, len(xt), batch_size)):
            if steps is not None and i == steps:
                break
            opt.zero_grad()
            loss = loss_fn(model(xs[start:start + batch_size]), ys[start:start + batch_size])
            loss.backward()
            opt.step()

    return run


def timings(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def compare(name: str, what: str, fnn_fn: Callable, torch_fn: Callable | None, *,
            repeats: int = 5, target: float | None = None, extra: dict | None = None) -> dict:
    """Time both (interleaved per repeat, so load changes hit both), print and save the ratio."""
    fnn_fn()  # warm-up
    if torch_fn is not None:
        torch_fn()
    fnn_t, torch_t = [], []
    for _ in range(repeats):
        fnn_t += timings(fnn_fn, 1, warmup=0)
        if torch_fn is not None:
            torch_t += timings(torch_fn, 1, warmup=0)
    result = {
        "benchmark": name,
        "what": what,
        "fnn_median_s": statistics.median(fnn_t),
        "fnn_times_s": fnn_t,
        "torch_median_s": statistics.median(torch_t) if torch_t else None,
        "torch_times_s": torch_t,
        "ratio_fnn_over_torch": statistics.median(fnn_t) / statistics.median(torch_t) if torch_t else None,
        "target_ratio": target,
        "numpy": np.__version__,
        "torch": __import__("torch").__version__ if torch_t else None,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "threads": threads(),
        "freed_memory": MEMORY,
        "fnn_batch_shards": getattr(fnn_fn, "shards", 1),
        "date": time.strftime("%Y-%m-%d"),
        **(extra or {}),
    }
    ratio = result["ratio_fnn_over_torch"]
    line = f"{name}: fnn {result['fnn_median_s']*1e3:.1f} ms"
    if ratio is not None:
        met = "met" if target is not None and ratio <= target else "NOT met"
        verdict = "" if target is None else f" (target <= {target:.2f}x: {met})"
        line += f", torch {result['torch_median_s']*1e3:.1f} ms, ratio {ratio:.2f}x{verdict}"
    else:
        line += " (torch not installed: no ratio)"
    print(line, flush=True)
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if MEMORY == "reused" else "_default_malloc"
    (RESULTS / f"{name}_{threads()}t{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
