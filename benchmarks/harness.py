"""Shared timing harness: fnn (both kernel backends), PyTorch CPU and JAX CPU timed in the same
process, interleaved per repeat; medians, per-repeat ratio ranges, GFLOP/s, JSON.

Importing it applies :func:`fnn.perf.reuse_freed_memory` to the process, so every library runs
under it (``FNN_BENCH_MALLOC=default`` keeps glibc's defaults; results then go to
``*_default_malloc.json``). Each benchmark builds zero-argument callables (one epoch / N steps
of training, same model, data, batch size and optimiser in every library; :func:`fnn_trainer`,
:func:`torch_trainer` and :func:`jax_trainer` make them), then calls :func:`compare`.
torch (``pip install torch==2.13.0``) and JAX (``pip install jax jaxlib``) are optional:
without them their columns are empty. JAX runs one jitted SGD step (forward, backward and the
update in one XLA program); its compile time is measured apart and never in the timings.

Each result also records the machine: CPU model, the BLAS numpy uses (threadpoolctl's
``internal_api`` / ``architecture``), and the GEMM peak measured in the same process (a
2048² float32 ``numpy`` matmul at the benchmark's thread count), against which every
library's GFLOP/s (the model's multiply-add FLOPs per step, counted analytically) is given.

With fewer threads than cores, a benchmark run (``run_all.py``, or a ``bench_*.py`` script
run directly) pins its process to that many cores (:func:`pin_to_cores`), so "1 thread"
means one core for every library: JAX's runtime otherwise runs its dispatch on a second core
beside the compute thread.
Each library's CPU-seconds per wall-second is recorded beside its times (``cpu_per_wall``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
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
    """``"reused"``: :func:`fnn.perf.reuse_freed_memory` applied to this process (so to every
    library), the default; ``"default"``: glibc's own settings, when
    ``FNN_BENCH_MALLOC=default`` or on a platform where the call does nothing."""
    import fnn

    if os.environ.get("FNN_BENCH_MALLOC") == "default":
        return "default"
    return "reused" if fnn.perf.reuse_freed_memory() else "default"


MEMORY = memory_setting()


def threads() -> int:
    """Threads for every library: all cores, or ``OPENBLAS_NUM_THREADS`` when set (numpy's
    BLAS reads it at import; torch and XLA are told the same number here)."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)


def pin_to_cores(n: int) -> list[int]:
    """Pin every thread of this process, and so every thread it starts later, to the first
    ``n`` of its cores when it has more (Linux; elsewhere nothing changes); call it before
    torch or JAX starts its threads. The cores in use."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cores = sorted(os.sched_getaffinity(0))
    if n < len(cores):
        cores = cores[:n]
        tasks = Path("/proc/self/task")
        for tid in ([int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]):
            with contextlib.suppress(OSError):  # a thread that has just ended
                os.sched_setaffinity(tid, cores)
    return cores


def load_torch():
    """The torch module pinned to this machine's cores, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads())
    return torch


def load_jax():
    """The jax module on the CPU, held to :func:`threads` threads, or None if not installed.
    XLA reads its thread settings when jax is first imported."""
    if threads() == 1 and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
    except ImportError:
        return None
    return jax


def repeats_arg(doc: str, argv, default: int = 5) -> int:
    """The ``--repeats`` option of a benchmark script (its docstring's first line as help)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=default)
    return parser.parse_args(argv).repeats


def backends() -> list[str]:
    """fnn's kernel backends to time: numpy, and compiled when numba is installed."""
    import fnn

    return ["numpy", "compiled"] if fnn.ops.available() else ["numpy"]


# --- FLOPs ---------------------------------------------------------------------------------------

def dense_flops(*sizes: int) -> int:
    """Forward FLOPs per sample of a chain of dense layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(2 * a * b for a, b in zip(sizes, sizes[1:]))


def conv_flops(positions: int, kernel: int, c_in: int, c_out: int) -> int:
    """Forward FLOPs per sample of a convolution with ``positions`` output positions (for a
    transposed one: input positions) and ``kernel`` taps."""
    return 2 * positions * kernel * c_in * c_out


def training_flops(forward_per_sample: int, samples: int) -> int:
    """FLOPs of training on ``samples``: forward + input gradient + weight gradient, each as
    many multiply-adds as the forward pass (the usual 3x; the first layer's input gradient,
    which no library computes, is counted too, as are no element-wise ops)."""
    return 3 * forward_per_sample * samples


# --- the machine ---------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> dict:
    """The BLAS numpy calls: library, kernel (``internal_api``), ``architecture``, threads."""
    from threadpoolctl import threadpool_info

    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    blas.sort(key=lambda info: "numpy" not in (info.get("filepath") or ""))  # numpy's first
    keys = ("internal_api", "architecture", "version", "num_threads", "filepath")
    return {k: blas[0].get(k) for k in keys} if blas else {}


_PEAK: dict = {}


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The best GFLOP/s of an ``n × n`` float32 numpy matmul in this process (BLAS at this
    process's thread count): the peak every library's GFLOP/s is compared with."""
    if "gflops" not in _PEAK:
        rng = np.random.default_rng(0)
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
        best = min(timings(lambda: a @ b, repeats, warmup=1))
        _PEAK["gflops"] = 2 * n ** 3 / best / 1e9
    return _PEAK["gflops"]


def machine() -> dict:
    import fnn

    versions = {"numpy": np.__version__, "fnn_backend_default": fnn.ops.backend()}
    for name in ("numba", "torch", "jax"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cores_used": _cores(),
            "platform": platform.platform(),
            "blas": blas_info(), "gemm_peak_gflops": gemm_peak_gflops(), "versions": versions,
            "loadavg_before": _loadavg()}


def _cores() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# --- trainers ------------------------------------------------------------------------------------

def fnn_trainer(model, loss, x, y, *, batch_size: int, lr: float, steps: int | None = None,
                shards: int = 1, chunk: int | None = None, backend: str | None = None):
    """``run()`` = one epoch (or ``steps`` steps) of plain SGD on ``(x, y)`` in fnn, shuffled,
    on the kernel ``backend`` (``fnn.ops.using``; None: the default).

    ``shards > 1`` runs each batch as that many shards at once (``fnn.value_and_grad``'s
    ``threads``; the conv nets use one per core, as torch runs each op on every core); with 1,
    only BLAS uses the cores (faster for small nets, whose shards would be tiny). ``chunk``:
    each shard runs as chunks of at most that many samples (``fnn.value_and_grad``'s
    ``chunk``: a conv net's activations stay in cache)."""
    import fnn

    _, params = model.init(fnn.key(0), (-1, *x.shape[1:]))
    opt = fnn.sgd(lr)
    step = fnn.supervised_step(model, loss, opt, threads=shards, chunk=chunk)
    data = fnn.batches(x, y, batch_size=batch_size, rng=0)
    box = {"state": fnn.TrainState.create(params, opt), "epoch": 0}

    def run():
        with fnn.ops.using(backend) if backend else contextlib.nullcontext():
            state = box["state"]
            for i, batch in enumerate(data.epoch(box["epoch"])):
                if steps is not None and i == steps:
                    break
                state, _ = step(state, batch)
        box["state"], box["epoch"] = state, box["epoch"] + 1

    run.shards, run.chunk = shards, chunk
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


def jax_trainer(jax, predict: Callable, loss: Callable, params, x, y, *, batch_size: int,
                lr: float, steps: int | None = None):
    """The same as :func:`fnn_trainer` in JAX: ``predict(params, x)`` and
    ``loss(prediction, y)`` are jax functions; one ``jax.jit``-ed SGD step (value, gradient
    and update in one XLA program). A trailing partial batch is dropped (a second shape would
    compile a second program); ``run.compile_s`` is the first step's compile time."""
    jnp = jax.numpy
    params = jax.tree_util.tree_map(jnp.asarray, params)

    def objective(p, xb, yb):
        return loss(predict(p, xb), yb)

    @jax.jit
    def step(p, xb, yb):
        value, grads = jax.value_and_grad(objective)(p, xb, yb)
        return jax.tree_util.tree_map(lambda a, g: a - lr * g, p, grads), value

    rng = np.random.default_rng(0)
    box = {"params": params}
    t0 = time.perf_counter()
    jax.block_until_ready(step(params, x[:batch_size], y[:batch_size]))
    compile_s = time.perf_counter() - t0

    def run():
        perm = rng.permutation(len(x))
        xs, ys = x[perm], y[perm]
        p = box["params"]
        for i, start in enumerate(range(0, len(x) - batch_size + 1, batch_size)):
            if steps is not None and i == steps:
                break
            p, _ = step(p, xs[start:start + batch_size], ys[start:start + batch_size])
        box["params"] = jax.block_until_ready(p)

    run.compile_s = compile_s
    return run


def jax_losses(jax) -> dict:
    """Cross-entropy from logits with integer labels, and binary cross-entropy on
    probabilities clipped like fnn's (eps = 1e-7): batch means, as fnn's and torch's."""
    jnp = jax.numpy

    def cross_entropy(logits, labels):
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    def bce(p, target):
        q = jnp.clip(p, 1e-7, 1 - 1e-7)
        return -jnp.mean(jnp.sum((target * jnp.log(q) + (1 - target) * jnp.log1p(-q))
                                 .reshape(len(p), -1), axis=1))

    return {"cross_entropy": cross_entropy, "bce": bce}


def jax_conv_relu_pool(jax, h, p):
    """JAX's equivalent of fnn's ``conv2d(..., padding="same", bias=True), relu(),
    max_pool2d(2)`` on NHWC images with an HWIO kernel (shared by the conv benchmarks)."""
    jnp, lax = jax.numpy, jax.lax
    h = lax.conv_general_dilated(h, p["w"], (1, 1), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"]
    return lax.reduce_window(jax.nn.relu(h), -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                             "VALID")


# --- timing --------------------------------------------------------------------------------------

def timings(fn: Callable[[], object], repeats: int, warmup: int = 1,
            cpu: list[float] | None = None) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones;
    ``cpu``, when given, gets each call's CPU-seconds per wall-second (every thread of the
    process: 2.0 = two cores busy throughout)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        out.append(wall)
        if cpu is not None:
            cpu.append((time.process_time() - c0) / wall)
    return out


def interleaved(runs: dict[str, Callable], repeats: int,
                cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Every callable once untimed (warm-up: JIT compilation, caches), then ``repeats``
    rounds in which each runs once, in turn, so load changes hit them all alike. ``cpu``, when
    given, gets each one's CPU-seconds per wall-second per repeat (see :func:`timings`)."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            times[name] += timings(fn, 1, warmup=0,
                                   cpu=None if cpu is None else cpu.setdefault(name, []))
    return times


def ratio_stats(a: list[float], b: list[float]) -> dict:
    """The ratio of medians, and the range of the per-repeat ratios ``a[i] / b[i]``."""
    per = [x / y for x, y in zip(a, b)]
    return {"median": statistics.median(a) / statistics.median(b), "min": min(per),
            "max": max(per)}


def compare(name: str, what: str, runs: dict[str, Callable | None], *, flops: int,
            repeats: int = 5, targets: dict | None = None, extra: dict | None = None,
            save: bool = True) -> dict:
    """Time ``runs`` (``{"fnn-numpy": ..., "fnn-compiled": ..., "torch": ..., "jax": ...}``,
    None for a library that is not installed) interleaved, print and save medians, GFLOP/s
    (``flops`` per call), % of the GEMM peak and every fnn / anchor ratio with its per-repeat
    range. ``targets``: ``{"fnn-compiled/torch": 1.0, ...}``."""
    runs = {k: v for k, v in runs.items() if v is not None}
    mach = machine()
    peak = mach["gemm_peak_gflops"]
    cpu: dict[str, list[float]] = {}
    times = interleaved(runs, repeats, cpu)
    libs = {}
    for lib, ts in times.items():
        median = statistics.median(ts)
        libs[lib] = {"median_s": median, "times_s": ts, "gflops": flops / median / 1e9,
                     "pct_of_gemm_peak": 100 * flops / median / 1e9 / peak,
                     "cpu_per_wall": statistics.median(cpu[lib])}
        if hasattr(runs[lib], "compile_s"):
            libs[lib]["compile_s"] = runs[lib].compile_s
    ratios = {f"{a}/{b}": ratio_stats(times[a], times[b])
              for a in times if a.startswith("fnn") for b in times if not b.startswith("fnn")}
    result = {
        "benchmark": name, "what": what, "threads": threads(), "freed_memory": MEMORY,
        "fnn_batch_shards": max((getattr(f, "shards", 1) for f in runs.values()), default=1),
        "fnn_chunk": next((f.chunk for f in runs.values() if getattr(f, "chunk", None)), None),
        "date": time.strftime("%Y-%m-%d %H:%M"), "flops_per_run": flops, "repeats": repeats,
        "libraries": libs, "ratios": ratios, "targets": targets or {},
        "machine": mach, "loadavg_after": _loadavg(), **(extra or {}),
    }
    parts = [f"{lib} {v['median_s'] * 1e3:.1f} ms ({v['gflops']:.1f} GFLOP/s, "
             f"{v['cpu_per_wall']:.1f} cores busy)" for lib, v in libs.items()]
    verdicts = []
    for key, r in ratios.items():
        target = (targets or {}).get(key)
        met = "" if target is None else (" met" if r["median"] <= target else " NOT met")
        verdicts.append(f"{key} {r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]{met}")
    print(f"{name} ({threads()}t): " + ", ".join(parts), flush=True)
    if verdicts:
        print("    " + "; ".join(verdicts), flush=True)
    if save:
        RESULTS.mkdir(exist_ok=True)
        suffix = "" if MEMORY == "reused" else "_default_malloc"
        (RESULTS / f"{name}_{threads()}t{suffix}.json").write_text(json.dumps(result, indent=2)
                                                                    + "\n")
    return result
