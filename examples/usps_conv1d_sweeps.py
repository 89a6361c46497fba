"""Report sections 3.2.1-3.2.4: what the USPS Conv1D net is sensitive to, one knob at a time.

    python examples/usps_conv1d_sweeps.py [--quick] [--sweeps batch_size,kernel_size,feature_maps,depth]
                                          [--repeats 3] [--split resplit]

Starting from the report's net ``conv1d(32, 3) -> max_pool1d(2, 2) -> flatten -> linear(100) ->
relu -> linear(10)`` (batch 32, SGD lr 0.1), each sweep changes one thing:

* ``batch_size`` (3.2.1): 8, 16, 32, 64, 128, 256, at the same learning rate (so larger batches
  take fewer, equally long steps per epoch);
* ``kernel_size`` (3.2.2): 3, 5, 7, 9, 11 taps;
* ``feature_maps`` (3.2.3): 4, 8, 16, 32, 64 filters;
* ``depth`` (3.2.4): 1, 2 and 4 conv blocks ``conv1d(c, 3) -> max_pool1d(2, 2)`` before the same
  dense head. Our reading of the report's deeper nets: the filters double per block up to 64
  (1: 32; 2: 32-64; 4: 32-64-64-64), blocks without bias or activation like the report's first
  one (max-pooling is the non-linearity between them); the signal shrinks 256 -> 127 -> 62 ->
  30 -> 14 samples.

Every point is ``--repeats`` runs (seeds ``--seed``...) under the protocol of ``usps_conv1d.py``
(``conv1d_common``): a fixed stratified 10% validation hold-out, early stopping on its loss with
patience 5 restoring the best epoch, at most 50 epochs, then train / validation / test accuracy
of the restored params. The report's configuration is part of every sweep; it is run once and
shared by them (same seeds, same numbers). All the runs of all the sweeps are one ``fnn.sweep``
(``--workers``, ``--scheduler``; finished runs kept in ``<out>/trials``, see ``common.py``). The
default ``--split resplit`` is the random re-split of the 9298 images (the level the report
quotes); ``--split standard`` uses USPS's own, harder, test set.

Figures per sweep: ``<sweep>.png`` (accuracy, epochs, and training seconds per epoch, the mean
and the fastest epoch of each run, against the value; mean ± std over the repeats) and ``<sweep>_curves.png`` (validation loss of the first
seed per value). Full run: 12 minutes on 2 cores shared with two other jobs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import conv1d_common as cc  # noqa: E402
import dense_common as dc  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import fnn  # noqa: E402

NAME = "usps_conv1d_sweeps"
NEEDS_REAL_DATA = True
DEPTH_WIDTHS = {1: (32,), 2: (32, 64), 4: (32, 64, 64, 64)}


@dataclass(frozen=True)
class Config:
    """One net and batch size: ``widths`` of the conv blocks, their ``kernel_size``."""

    widths: tuple[int, ...] = (32,)
    kernel_size: int = 3
    batch_size: int = 32

    def build(self) -> fnn.Layer:
        return cc.conv_net(self.widths, self.kernel_size)


@dataclass(frozen=True)
class Sweep:
    section: str
    short: str  # what varies, in titles and legends
    xlabel: str
    values: tuple
    config: Callable[[object], Config]
    log_x: bool = False


SWEEPS = {
    "batch_size": Sweep("3.2.1", "batch size", "batch size", (8, 16, 32, 64, 128, 256),
                        lambda v: Config(batch_size=v), log_x=True),
    "kernel_size": Sweep("3.2.2", "kernel size", "kernel size (taps)", (3, 5, 7, 9, 11),
                         lambda v: Config(kernel_size=v)),
    "feature_maps": Sweep("3.2.3", "feature maps", "feature maps (filters)", (4, 8, 16, 32, 64),
                          lambda v: Config(widths=(v,)), log_x=True),
    "depth": Sweep("3.2.4", "conv blocks", "conv blocks (filters per block)", tuple(DEPTH_WIDTHS),
                   lambda v: Config(widths=DEPTH_WIDTHS[v])),
}
QUICK_VALUES = 2  # the first values of each sweep in quick mode


def values_of(name: str, quick: bool) -> tuple:
    values = SWEEPS[name].values
    return values[:QUICK_VALUES] if quick else values


def label(sweep: str, value) -> str:
    if sweep == "depth":
        return f"{value} ({'-'.join(map(str, DEPTH_WIDTHS[value]))})"
    return str(value)


def sweep_figure(name: str, sweep: Sweep, summaries: dict[str, dict], repeats: int) -> Figure:
    """Accuracy (train / validation / test), epochs (run, best) and training seconds per epoch
    against the swept value (mean ± std over the repeats), three panels in one figure."""
    labels = list(summaries)
    values = list(sweep.values[:len(labels)]) if name != "depth" else labels

    def series(fields: dict[str, str], scale: float = 1.0) -> tuple[dict, dict]:
        return ({k: [scale * summaries[v][f]["mean"] for v in labels] for k, f in fields.items()},
                {k: [scale * summaries[v][f]["std"] for v in labels] for k, f in fields.items()})

    panels = [
        ("accuracy (%)", series({"train": "train_accuracy", "validation": "val_accuracy",
                                 "test": "test_accuracy"}, 100.0)),
        ("epochs", series({"run": "epochs", "best (restored)": "best_epoch"})),
        ("training seconds per epoch", series({"fastest epoch": "fastest_epoch",
                                               "mean": "seconds_per_epoch"})),
    ]
    bounds = {"accuracy (%)": (0.0, 100.0), "epochs": (0.0, None),
              "training seconds per epoch": (0.0, None)}
    error_label = f"± 1 std over {repeats} repeat{'s' if repeats > 1 else ''}"
    figs = [fnn.plot.sweep(values, s, errors=e, xlabel=sweep.xlabel, ylabel=ylabel,
                           log_x=sweep.log_x, title=ylabel, error_label=error_label,
                           y_limits=bounds[ylabel]) for ylabel, (s, e) in panels]
    return dc.montage(figs, 3, f"{sweep.section} {sweep.short}: mean ± std of {repeats} "
                               f"repeat{'s' if repeats > 1 else ''}", dpi=130)


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = cc.add_arguments(common.parser(NAME, "Report 3.2.1-3.2.4: Conv1D sweeps on USPS."),
                         repeats=3)
    common.add_sweep_arguments(p)
    p.add_argument("--sweeps", default=",".join(SWEEPS),
                   help=f"comma-separated subset of {','.join(SWEEPS)}")
    p.add_argument("--split", choices=cc.SPLITS, default="resplit")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.sweeps.split(",") if s.strip()]
    if not names or set(names) - set(SWEEPS):
        p.error(f"--sweeps: choose from {', '.join(SWEEPS)}; got {args.sweeps!r}")
    args = cc.quick(args)
    out = common.out_dir(NAME, args)
    print(f"{NAME}: sweeps {', '.join(names)}; {args.repeats} repeats each, SGD lr {args.lr}, "
          f"<= {args.epochs} epochs, early stopping on validation {args.monitor} (patience "
          f"{args.patience})", flush=True)

    # every (sweep value, repeat) is one trial of one fnn.sweep: both cores (or a cluster) busy
    nets = {(name, label(name, v)): cc.net_config(c.widths, c.kernel_size,
                                                 batch_size=c.batch_size, split=args.split)
            for name in names for v in values_of(name, args.quick)
            for c in (SWEEPS[name].config(v),)}
    all_runs, sweep_result = cc.run_all(NAME, nets, args, out)

    results, figures = {}, []
    for name in names:
        sweep = SWEEPS[name]
        values = values_of(name, args.quick)
        runs = {label(name, v): all_runs[(name, label(name, v))] for v in values}
        summaries = {k: {**cc.summarise(r), "net": cc.describe(sweep.config(v).widths,
                                                               sweep.config(v).kernel_size),
                         "batch_size": sweep.config(v).batch_size}
                     for (k, r), v in zip(runs.items(), values)}
        results[name] = summaries
        curves = cc.overlay({f"{sweep.short} {k}": r[0] for k, r in runs.items()}, "loss",
                            title=f"{sweep.section} {sweep.short}: validation loss, seed "
                                  f"{args.seed}\n(dot: restored epoch)")
        figures += cc.save_all(out, {f"{name}.png": sweep_figure(name, sweep, summaries,
                                                                 args.repeats),
                                     f"{name}_curves.png": curves})
        for k, s in summaries.items():
            print(f"{sweep.section} {name}={k}: train {cc.fmt(s['train_accuracy'])}% test "
                  f"{cc.fmt(s['test_accuracy'])}% epochs {cc.fmt(s['epochs'], 1, 1)} "
                  f"{cc.fmt(s['seconds_per_epoch'], 1)} s/epoch (fastest "
                  f"{cc.fmt(s['fastest_epoch'], 1)})", flush=True)

    rows = [{"what": f"{SWEEPS[n].section} {SWEEPS[n].xlabel} = {k} "
                     f"({cc.SPLIT_TITLES[args.split]}): train / test accuracy %, epochs",
             "measured": f"{cc.fmt(s['train_accuracy'])} / {cc.fmt(s['test_accuracy'])}, "
                         f"{cc.fmt(s['epochs'], 1, 1)}",
             "report": ""}
            for n, by_value in results.items() for k, s in by_value.items()]
    metrics = {"settings": {**cc.settings(args), "split": args.split},
               "sweeps": {n: {"section": SWEEPS[n].section, "xlabel": SWEEPS[n].xlabel}
                          for n in names},
               "results": results}
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0, sweeps=[sweep_result])
    return {"out": str(out), "figures": [str(f) for f in figures], **metrics}


if __name__ == "__main__":
    main()
