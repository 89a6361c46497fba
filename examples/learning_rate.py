"""Report section 3.1.2: the learning rate of plain SGD for dense networks.

    python examples/learning_rate.py [--quick] [--rates 1e-4,1e-3,...] [--seeds 3]

Trains the same networks (toy sets: 2-16-16-2 tanh, USPS: 256-100-10 tanh; Xavier-uniform init,
SGD, batch 32) at every learning rate of the sweep, with the same seeds for every rate. A run
that blows up is stopped by fnn.train's divergence guard (``history.stop_reason ==
"diverged"``); it keeps its last finite params, is marked with a red cross in the sweep and
recorded in results.json. Figures: final test accuracy vs learning rate
(``accuracy_vs_lr.png``), final train loss vs learning rate (``train_loss_vs_lr.png``), train
loss per epoch for every rate (``loss_<dataset>.png``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import dense_common as dc  # noqa: E402

NAME = "learning_rate"
NEEDS_REAL_DATA = True
RATES = (1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0)


def label(lr: float) -> str:
    return f"lr={lr:g}"


def sweep_figure(grid: dict, rates: list[float], value, ylabel: str, title: str,
                 y_limits=None, log_y: bool = False):
    """fnn.plot.sweep of ``value(runs) -> (mean, std)`` over the rates, one line per data set;
    red crosses where a run diverged."""
    series, errors = {}, {}
    for name, by_rate in grid.items():
        stats = [value(by_rate[label(lr)]) for lr in rates]
        series[dc.TITLES[name]] = [m for m, _ in stats]
        errors[dc.TITLES[name]] = [s for _, s in stats]
    seeds = len(grid[next(iter(grid))][label(rates[0])])
    fig = fnn.plot.sweep(rates, series, errors=errors if seeds > 1 else None, log_x=True,
                         xlabel="learning rate (SGD)", ylabel=ylabel, title=title,
                         error_label=f"± 1 std over {seeds} seeds", y_limits=y_limits,
                         log_y=log_y)
    ax = fig.axes[0]
    crosses = [(lr, series[dc.TITLES[name]][i]) for name, by_rate in grid.items()
               for i, lr in enumerate(rates)
               if any(r.diverged for r in by_rate[label(lr)])]
    if crosses:
        xs, ys = zip(*crosses)
        ax.plot(xs, np.nan_to_num(ys, nan=ax.get_ylim()[0]), "x", color="red", ms=10, mew=2,
                label="diverged (some seed)", zorder=5)
        ax.legend(fontsize=8)
    return fig


def accuracy_stats(runs) -> tuple[float, float]:
    a = dc.accuracies(runs)
    return float(a.mean()), float(a.std())


def loss_stats(runs) -> tuple[float, float]:
    losses = np.array([r.train_loss for r in runs if not r.diverged])
    return (float(losses.mean()), float(losses.std())) if len(losses) else (np.nan, 0.0)


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = dc.add_arguments(common.parser(NAME, "Report 3.1.2: SGD learning-rate sweep (dense)."),
                         lr=False)
    p.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES),
                   help="comma-separated learning rates")
    common.add_sweep_arguments(p)
    args = dc.parse(p, argv)
    rates = [float(r) for r in args.rates.split(",")]
    out = common.out_dir(NAME, args)
    print(f"{NAME}: {len(rates)} learning rates x {len(args.datasets)} data sets x {args.seeds} "
          f"seeds, tanh, Xavier-uniform init, SGD", flush=True)
    data = dc.load_all(args)
    grid, sweep_result = dc.run_grid(NAME, args, data, {label(lr): {"lr": lr} for lr in rates},
                                     out)

    figures = [
        common.save(sweep_figure(grid, rates, accuracy_stats, "final test accuracy",
                                 "test accuracy vs SGD learning rate", y_limits=(0.0, 1.0)),
                    out, "accuracy_vs_lr.png"),
    ]
    fig = sweep_figure(grid, rates, loss_stats, "final train loss (finished runs)",
                       "train loss vs SGD learning rate", log_y=True)
    figures.append(common.save(fig, out, "train_loss_vs_lr.png"))
    figures += dc.loss_overlays(out, grid, "learning rate")

    diverged = [{"dataset": name, "lr": r.lr, "seed": r.seed, "epochs": r.history.epochs,
                 "message": r.history.message}
                for name, by_rate in grid.items() for runs in by_rate.values() for r in runs
                if r.diverged]
    for d in diverged:
        print(f"diverged: {dc.TITLES[d['dataset']]} lr={d['lr']:g} seed {d['seed']}: "
              f"{d['message']}")
    metrics = {"settings": dc.settings(args), "rates": rates, "results": dc.summarise(grid),
               "best_lr": {n: grid[n][dc.best_variant(by)][0].lr for n, by in grid.items()},
               "diverged": diverged}
    common.write_results(NAME, out, args, metrics, rows=dc.rows(grid, "SGD"), started=t0,
                         sweeps=[sweep_result])
    return {"out": str(out), "figures": [str(f) for f in figures], **metrics}


if __name__ == "__main__":
    main()
