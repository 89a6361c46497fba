"""What checkpointing costs: the report's USPS Conv1D net trained for 10 epochs (its runs last
10-50) with ``checkpoint_every="epoch"`` against no checkpoints, interleaved in one process
(target: <= 3% overhead), and a checkpoint's size against the params' size.

    python benchmarks/bench_checkpoint.py [--repeats 3] [--epochs 10]

Checkpoints are written by a background thread while training goes on (the state is immutable,
so nothing is copied), and the last one synchronously when the run ends; the timed runs
include both. Data are random (speed does not depend on values), 7291 x 256 x 1 float32,
batch 32, plain SGD, BLAS on one thread. Writes ``benchmarks/results/checkpoint_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import cpu_model
from threadpoolctl import threadpool_limits

import fnn

RESULTS = Path(__file__).resolve().parent / "results"
N, L, C, BATCH, LR = 7291, 256, 10, 32, 0.05


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((N, L, 1), dtype=np.float32)
    y = rng.integers(0, C, N)
    model = fnn.serial(fnn.conv1d(32, 3), fnn.max_pool1d(2, 2), fnn.flatten(), fnn.linear(100),
                       fnn.relu(), fnn.linear(C))
    _, params = model.init(fnn.key(0), (-1, L, 1))
    opt = fnn.sgd(LR)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    data = fnn.batches(x, y, batch_size=BATCH, rng=0)
    scratch = Path(tempfile.mkdtemp(prefix="fnn-bench-ckpt-"))

    def run(folder):
        state = fnn.TrainState.create(params, opt)
        t0 = time.perf_counter()
        fnn.train(step, data, state, epochs=args.epochs, progress=False, checkpoint=folder)
        return time.perf_counter() - t0

    plain, with_ckpt = [], []
    load_before = os.getloadavg()
    with threadpool_limits(limits=1, user_api="blas"):
        run(None)  # warm-up
        for i in range(args.repeats):
            plain.append(run(None))
            folder = scratch / f"run{i}"
            with_ckpt.append(run(folder))
    files = fnn.checkpoint.checkpoints(scratch / "run0")
    ckpt_bytes = files[-1].stat().st_size
    params_bytes = sum(a.nbytes for a in fnn.tree.tree_leaves(params))
    shutil.rmtree(scratch)
    ratios = [c / p for c, p in zip(with_ckpt, plain)]
    result = {
        "benchmark": "checkpoint_overhead",
        "what": f"USPS Conv1D net, {args.epochs} epochs of SGD at batch {BATCH}, "
                "checkpoint every epoch vs none",
        "epochs": args.epochs,
        "plain_s": plain, "checkpoint_s": with_ckpt,
        "overhead_median": statistics.median(ratios) - 1,
        "overhead_range": [min(ratios) - 1, max(ratios) - 1],
        "target_overhead": 0.03,
        "checkpoint_bytes": ckpt_bytes, "params_bytes": params_bytes,
        "checkpoint_over_params": ckpt_bytes / params_bytes,
        "cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_before": load_before,
        "numpy": np.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkpoint_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"checkpoint every epoch: {100 * result['overhead_median']:+.1f}% per run "
          f"(per-repeat {100 * result['overhead_range'][0]:+.1f}% to "
          f"{100 * result['overhead_range'][1]:+.1f}%; target <= +3%); a checkpoint is "
          f"{ckpt_bytes / 1e6:.2f} MB for {params_bytes / 1e6:.2f} MB of params "
          f"({result['checkpoint_over_params']:.2f}x) on {result['cpu']}, load {load_before[0]:.1f}",
          flush=True)
    return result


if __name__ == "__main__":
    main()
