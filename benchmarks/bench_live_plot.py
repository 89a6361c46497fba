"""What the live loss plot costs: the demo's training (``fnn.demo``: an MLP 64-128-10 on the 8x8
digits, 40 epochs of Adam at batch 32) with its :class:`fnn.LossLogger` against the same
training without it, interleaved in one process (target: <= 1.3x), and the old logger's way (a
new figure, constrained layout, written every epoch) for reference.

    python benchmarks/bench_live_plot.py [--repeats 7] [--epochs 40] [--quick]

The timed runs include the logger's final render (``flush()`` after training, as the demo
does). BLAS on one thread. Each timed run starts after ``gc.collect()``: otherwise the cyclic
collector may walk the previous run's figure (thousands of matplotlib objects) inside the next
timed run, and the per-repeat ratios scatter by +-30%. On a shared (virtual) machine a
single run can still be slowed by its neighbours: the ratio of the two best runs is given
beside the median and range of the per-repeat ratios. Writes
``benchmarks/results/live_plot.json`` (not with ``--quick``, which only checks that the
script runs: 3 epochs, one repeat; its ratios mean nothing, as one render outweighs 3
epochs).
"""

from __future__ import annotations

import argparse
import gc
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
from fnn import demo

RESULTS = Path(__file__).resolve().parent / "results"


def _trainer(epochs: int):
    """``run(logger) -> seconds``: the demo's training, with ``logger`` (or none) as callback;
    ``run.history`` is the last run's history."""
    data = fnn.datasets.digits(seed=0)
    model = demo.build_model(128)
    _, params = model.init(fnn.key(0), (-1, data.x_train.shape[1]))
    opt = fnn.adam(3e-3)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    batches = fnn.batches(data.x_train, data.y_train, batch_size=32, rng=0)
    eval_fn = fnn.evaluator(model, data.x_test, data.y_test, loss=fnn.cross_entropy,
                            accuracy=True)

    def run(logger) -> float:
        gc.collect()
        t0 = time.perf_counter()
        _, run.history = fnn.train(step, batches, fnn.TrainState.create(params, opt),
                                   epochs=epochs, eval_fn=eval_fn,
                                   callbacks=[logger] if logger else [], progress=False)
        if logger:
            logger.flush()
        return time.perf_counter() - t0

    run.history = None
    return run


class _OldLogger:
    """What ``fnn.LossLogger`` did before: a new figure drawn and written after every epoch."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, epoch, state, history) -> None:
        fnn.plot.curves(history, ("loss", "accuracy"), "MLP on 8x8 digits").savefig(self.path,
                                                                                   dpi=100)

    def flush(self) -> None:
        return None


def _render_seconds(layout: str, history) -> float:
    """One new 2-panel figure of ``history`` in ``layout``, written as a PNG (in memory)."""
    import io

    gc.collect()
    t0 = time.perf_counter()
    fnn.plot.curves(history, ("loss", "accuracy"), "MLP on 8x8 digits",
                    layout=layout).savefig(io.BytesIO(), dpi=100)
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--quick", action="store_true", help="3 epochs, 1 repeat, nothing written")
    args = p.parse_args(argv)
    epochs, repeats = (3, 1) if args.quick else (args.epochs, args.repeats)
    run = _trainer(epochs)
    scratch = Path(tempfile.mkdtemp(prefix="fnn-bench-plot-"))
    plain, live, every_epoch, renders = [], [], [], []
    drawn: dict[str, list[float]] = {"fixed": [], "constrained": []}
    load_before = os.getloadavg()
    with threadpool_limits(limits=1, user_api="blas"):
        run(fnn.LossLogger(scratch / "warm.png"))  # warm-up (imports matplotlib)
        for i in range(repeats):
            plain.append(run(None))
            logger = fnn.LossLogger(scratch / f"live{i}.png", metrics=("loss", "accuracy"),
                                    title="MLP on 8x8 digits")  # as fnn.demo
            live.append(run(logger))
            renders.append(logger.renders)
            every_epoch.append(run(_OldLogger(scratch / f"old{i}.png")))
            for layout, seconds in drawn.items():
                seconds.append(_render_seconds(layout, run.history))
    shutil.rmtree(scratch)
    ratios = [t / b for t, b in zip(live, plain)]
    old = [t / b for t, b in zip(every_epoch, plain)]
    result = {
        "benchmark": "live_plot",
        "what": f"fnn.demo's training ({epochs} epochs) with fnn.LossLogger vs without",
        "epochs": epochs, "plain_s": plain, "live_plot_s": live, "every_epoch_s": every_epoch,
        "renders": renders,
        "render_ms": {k: 1e3 * statistics.median(v) for k, v in drawn.items()},
        "ratio_median": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "ratio_of_best": min(live) / min(plain),  # each at its least disturbed run
        "every_epoch_ratio_median": statistics.median(old),
        "target_ratio": 1.3, "cpu": cpu_model(), "cores": os.cpu_count(),
        "loadavg_before": load_before, "numpy": np.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "live_plot.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"live plot: {result['ratio_median']:.2f}x the training without it "
          f"[{result['ratio_range'][0]:.2f}-{result['ratio_range'][1]:.2f}], best run vs best "
          f"run {result['ratio_of_best']:.2f}x (target <= 1.3x; "
          f"{statistics.median(renders):.0f} renders), the old logger "
          f"{result['every_epoch_ratio_median']:.2f}x; a new figure's PNG "
          f"{result['render_ms']['fixed']:.0f} ms (fixed layout) vs "
          f"{result['render_ms']['constrained']:.0f} ms (constrained); {epochs} epochs on "
          f"{result['cpu']}, "
          f"load {load_before[0]:.1f}", flush=True)
    return result


if __name__ == "__main__":
    main()
