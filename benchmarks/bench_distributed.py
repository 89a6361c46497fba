"""Two cores, three ways: 2 MPI ranks (``fnn.distributed``, ``mpiexec -n 2``) vs ``threads=2``
(one process, two batch shards) vs PyTorch at 2 threads, on the conv autoencoder
(Fashion-MNIST 28 x 28 x 1, batch 64, binary cross-entropy) and LeNet (batch 64,
cross-entropy), SGD; then the MLP epoch (USPS-sized 256-100-10, batch 32) at 1 and 2 BLAS
threads, with fnn's choice of BLAS threads by product size (``fnn.ops.blas``) and without.

Each repeat runs every contender once, in turn (interleaved): the 2-rank job is a fresh
``mpiexec`` whose ranks warm up, then time ``STEPS`` steps between two barriers (start-up and
warm-up untimed) and the time spent in the gradient all-reduce. Printed: medians, the
per-repeat range of every ratio, the all-reduce's share of a step, and a **projected**
scaling table (ranks x step time) from a model fitted to measurements: compute per sample
(from the 2-rank steps without their all-reduce) and the all-reduce's latency and bandwidth
(``Allreduce`` of a tiny and of the gradient's buffer between the 2 ranks), for a ring
all-reduce ``2 (R-1) (latency + bytes / (R * bandwidth))``; with another machine's network
(the ``--latency-us``/``--gbytes-per-s`` given) for ranks on several machines.

    python benchmarks/bench_distributed.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import RESULTS, fnn_trainer, interleaved, load_torch, ratio_stats, torch_trainer

import fnn

HERE = Path(__file__).resolve()
STEPS, BATCH, LR, WARMUP = 30, 64, 0.05, 3
MLP = dict(n=7291, d=256, h=100, c=10, batch=32)


def models():
    """``{name: (fnn model builder, torch builder, loss name)}``: the two conv nets of
    bench_conv_ae.py and bench_lenet.py."""
    sys.path.insert(0, str(HERE.parent))
    import bench_conv_ae
    import bench_lenet

    return {"conv_autoencoder": (bench_conv_ae.build, "bce", bench_conv_ae.CHUNK),
            "lenet": (bench_lenet.build, "cross_entropy", bench_lenet.CHUNK)}


def images(n: int, labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's first ``n`` training images (random ones of its shape when the data
    folder is absent: speed does not depend on the values); targets: the images themselves
    (autoencoder) or the labels."""
    try:
        data = fnn.datasets.fashion_mnist(layout="image", download=False, progress=False)
        x, y = data.x_train[:n], data.y_train[:n]
    except Exception:  # noqa: BLE001  no data folder: the same shapes
        rng = np.random.default_rng(0)
        x, y = rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)
    return np.ascontiguousarray(x), (y if labels else x)


# ---------------------------------------------------------------------------- the MPI worker


def worker(name: str, steps: int) -> None:
    """One rank of the 2-rank job: warm up, time ``steps`` steps and the all-reduce in them,
    then the bare all-reduce of a tiny and of the gradient's buffer; rank 0 prints JSON."""
    from mpi4py import MPI

    from fnn import distributed
    from fnn.distributed import step as dstep

    comm = MPI.COMM_WORLD
    build, loss_name, _ = models()[name]
    model, loss = build(), getattr(fnn, loss_name)
    x, y = images((steps + WARMUP) * BATCH, labels=loss_name == "cross_entropy")
    _, params = model.init(fnn.key(0), (-1, *x.shape[1:]))
    opt = fnn.sgd(LR)
    spent = [0.0]
    plain_allreduce = dstep.allreduce_mean

    def timed_allreduce(*args, **kwargs):
        t0 = time.perf_counter()
        out = plain_allreduce(*args, **kwargs)
        spent[0] += time.perf_counter() - t0
        return out

    dstep.allreduce_mean = timed_allreduce
    step = distributed.supervised_step(model, loss, opt, comm=comm)
    # drawn inside the timed loop, as the in-process contenders draw theirs
    batches = distributed.shard(fnn.batches(x, y, batch_size=BATCH, rng=0), comm).epoch(0)
    state = distributed.broadcast(fnn.TrainState.create(params, opt), comm)
    for _, batch in zip(range(WARMUP), batches):
        state, _ = step(state, batch)
    comm.Barrier()
    spent[0], t0 = 0.0, time.perf_counter()
    for batch in batches:
        state, _ = step(state, batch)
    comm.Barrier()
    wall = time.perf_counter() - t0
    grad_floats = fnn.tree_size(params) + 1
    comm_times = {n: _allreduce_time(comm, n) for n in (1, grad_floats)}
    reduced = comm.gather((wall, spent[0]), root=0)
    if comm.Get_rank() == 0:
        print(json.dumps({"wall_s": max(w for w, _ in reduced), "steps": steps,
                          "allreduce_s": [s for _, s in reduced], "grad_floats": grad_floats,
                          "bare_allreduce_s": comm_times}))


def _allreduce_time(comm, floats: int, repeats: int = 50) -> float:
    """Median seconds of one in-place float32 ``Allreduce`` of ``floats`` values."""
    from mpi4py import MPI

    buf = np.ones(floats, np.float32)
    out = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


# ---------------------------------------------------------------------------- the driver


def ranks_run(name: str, steps: int, record: list):
    """A callable that runs the 2-rank job once and returns its timed steps' seconds (the
    job's start-up is not in them): the driver times it by that, not by its wall time."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}

    def run():
        out = subprocess.run([str(mpiexec), "-n", "2", "-host", "127.0.0.1", sys.executable,
                              str(HERE), "--worker", name, "--steps", str(steps)],
                             capture_output=True, text=True, env=env, timeout=900)
        if out.returncode:
            raise RuntimeError(f"the 2-rank job failed:\n{out.stderr[-3000:]}")
        record.append(json.loads(out.stdout.strip().splitlines()[-1]))
        return record[-1]["wall_s"]

    return run


def compare_conv(name: str, steps: int, repeats: int, torch) -> dict:
    build, loss_name, chunk = models()[name]
    labels = loss_name == "cross_entropy"
    x, y = images((steps + WARMUP) * BATCH, labels)
    record: list = []
    fns = {"fnn-2-ranks": ranks_run(name, steps, record),
           "fnn-threads=2": fnn_trainer(build(), getattr(fnn, loss_name), x, y,
                                        batch_size=BATCH, lr=LR, steps=steps, shards=2,
                                        chunk=chunk)}
    if torch is not None:
        xt = x.transpose(0, 3, 1, 2).copy()
        yt = y if labels else xt
        loss = torch.nn.CrossEntropyLoss() if labels else torch.nn.BCELoss()
        fns["torch-2-threads"] = torch_trainer(torch, build(torch), loss, xt, yt,
                                               batch_size=BATCH, lr=LR, steps=steps)
    seconds: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats + 1):  # the first round warms up
        for k, fn in fns.items():
            t0 = time.perf_counter()
            inner = fn()
            seconds[k].append(inner if isinstance(inner, float) else time.perf_counter() - t0)
    seconds = {k: v[1:] for k, v in seconds.items()}
    jobs = record[1:]
    share = [statistics.mean(j["allreduce_s"]) / j["wall_s"] for j in jobs]
    out = {"ms_per_step": {k: 1e3 * statistics.median(v) / steps for k, v in seconds.items()},
           "ratios": {f"{a}/{b}": ratio_stats(seconds[a], seconds[b])
                      for a in seconds for b in seconds if a != b and not a.startswith("torch")},
           "allreduce_share": {"median": statistics.median(share), "min": min(share),
                               "max": max(share)},
           "job": jobs[-1]}
    out["projection"] = projection(jobs, steps)
    return out


def projection(jobs: list, steps: int, latency_us: float = 25.0,
               gbytes_per_s: float = 1.25) -> dict:
    """Projected step time for R ranks at a global batch of 64 (strong scaling) and at 64
    per rank (weak): compute per sample from the 2-rank steps less their all-reduce; a ring
    all-reduce ``2 (R-1) (a + bytes / (R b))`` with ``a``, ``b`` fitted on this machine (the
    bare all-reduce of 1 and of the gradient's floats between 2 ranks), and with a network of
    ``latency_us`` and ``gbytes_per_s`` (10 Gbit/s Ethernet) for ranks on separate machines."""
    job = jobs[-1]
    wall = statistics.median(j["wall_s"] for j in jobs) / steps
    reduce = statistics.median(statistics.mean(j["allreduce_s"]) for j in jobs) / steps
    per_sample = (wall - reduce) / (BATCH / 2)
    nbytes = 4 * job["grad_floats"]
    tiny, full = (job["bare_allreduce_s"][str(k)] for k in (1, job["grad_floats"]))
    a = tiny / 2  # 2 (R-1) = 2 latencies at R = 2
    b = max(nbytes / max(full - tiny, 1e-9), 1e6)  # bytes per second; 2 (R-1)/R = 1 at R = 2

    def ring(r, a, b):
        return 0.0 if r == 1 else 2 * (r - 1) * (a + nbytes / (r * b))

    rows = []
    for r in (1, 2, 4, 8, 16, 32, 64):
        rows.append({"ranks": r,
                     "strong_ms": 1e3 * (per_sample * BATCH / r + ring(r, a, b)),
                     "weak_ms": 1e3 * (per_sample * BATCH + ring(r, a, b)),
                     "network_strong_ms": 1e3 * (per_sample * BATCH / r
                                                 + ring(r, latency_us * 1e-6, gbytes_per_s * 1e9))})
    return {"per_sample_ms": 1e3 * per_sample, "latency_us": 1e6 * a,
            "gbytes_per_s": b / 1e9, "gradient_bytes": nbytes, "rows": rows}


def mlp_epoch(repeats: int, quick: bool) -> dict:
    """The MLP epoch at 1 and 2 BLAS threads, with fnn's per-size choice and without."""
    from threadpoolctl import threadpool_limits

    from fnn.ops import blas

    n = 1024 if quick else MLP["n"]
    rng = np.random.default_rng(0)
    x, y = rng.random((n, MLP["d"]), dtype=np.float32), rng.integers(0, MLP["c"], n)
    model = fnn.serial(fnn.linear(MLP["h"]), fnn.tanh(), fnn.linear(MLP["c"]))
    epoch = fnn_trainer(model, fnn.cross_entropy, x, y, batch_size=MLP["batch"], lr=LR)
    small = blas.SMALL_PRODUCT

    def setting(threads, by_size):
        def run():
            blas.SMALL_PRODUCT = small if by_size else 0
            try:
                with threadpool_limits(threads, user_api="blas"):
                    epoch()
            finally:
                blas.SMALL_PRODUCT = small
        return run

    runs = {f"{t}t{'' if by_size else ' plain BLAS'}": setting(t, by_size)
            for by_size in (True, False) for t in (1, 2)}
    times = interleaved(runs, repeats)
    return {"ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
            "2t/1t": ratio_stats(times["2t"], times["1t"]),
            "2t/1t plain BLAS": ratio_stats(times["2t plain BLAS"], times["1t plain BLAS"])}


def report(name: str, r: dict) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v:.1f} ms/step" for k, v in r["ms_per_step"].items()))
    print("    " + "; ".join(f"{k} {v['median']:.2f}x [{v['min']:.2f}-{v['max']:.2f}]"
                             for k, v in r["ratios"].items()))
    s = r["allreduce_share"]
    print(f"    all-reduce share of a 2-rank step: {100 * s['median']:.1f}% "
          f"[{100 * s['min']:.1f}-{100 * s['max']:.1f}]")
    p = r["projection"]
    print(f"    PROJECTION (not measured beyond 2 ranks): compute {p['per_sample_ms']:.3f} ms "
          f"per sample, all-reduce latency {p['latency_us']:.0f} us, {p['gbytes_per_s']:.2f} "
          f"GB/s here, gradient {p['gradient_bytes'] / 1e6:.2f} MB")
    print("    ranks | step ms, batch 64 in all | step ms, 64 per rank | batch 64, 10 GbE")
    for row in p["rows"]:
        print(f"    {row['ranks']:5d} | {row['strong_ms']:24.2f} | {row['weak_ms']:20.2f} "
              f"| {row['network_strong_ms']:.2f}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a few steps, one repeat")
    parser.add_argument("--worker")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps)
        return {}
    steps, repeats = (4, 1) if args.quick else (args.steps, args.repeats)
    torch = load_torch()
    if torch is not None:
        torch.set_num_threads(2)
    results = {name: compare_conv(name, steps, repeats, torch) for name in models()}
    for name, r in results.items():
        report(name, r)
    results["mlp_epoch"] = mlp_epoch(max(repeats, 2), args.quick)
    m = results["mlp_epoch"]
    print("mlp epoch: " + ", ".join(f"{k} {v:.1f} ms" for k, v in m["ms"].items()))
    for key in ("2t/1t", "2t/1t plain BLAS"):
        print(f"    {key} {m[key]['median']:.2f}x [{m[key]['min']:.2f}-{m[key]['max']:.2f}]")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "distributed_2t.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
