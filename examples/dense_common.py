"""Shared by the report's section 3.1 scripts (``init_schemes``, ``learning_rate``,
``activations``): the four data sets, the two networks, one training run, the grid of runs
(data set x variant x seed), its summary and the figures the three scripts all draw.

* Data: the toy sets ``gaussian_mixture``, ``xor``, ``chessboard`` (2-D points, 2 classes,
  seeded with ``--seed``) and USPS (flat 256 pixels, 10 classes, from ``$FNN_DATA``).
* Networks: toy ``2 -> H -> H -> K`` (``--hidden``, default 16), USPS the report's MLP
  ``256 -> 100 -> 10``; the activation and the weight initialiser are the variants' knobs.
* Training: cross-entropy, plain SGD, batch 32; one learning rate for the toy sets
  (``--toy-lr``) and one for USPS (``--usps-lr``), fixed across variants except in the sweep.
* Runs: the grid (data set x variant x seed) is one ``fnn.sweep`` (:func:`run_grid`, trial
  :func:`trial`), on Dask workers or in-process (``--workers``, ``--scheduler``), kept in
  ``<out>/trials`` so that a rerun only does what is missing; seed ``--seed + i`` for every
  variant, as before.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import fnn

TOY = ("gaussian_mixture", "xor", "chessboard")
DATASETS = (*TOY, "usps")
TITLES = {"gaussian_mixture": "Gaussian mixture", "xor": "XOR", "chessboard": "chessboard",
          "usps": "USPS"}
SHORT = {"gaussian_mixture": "GM", "xor": "XOR", "chessboard": "chess", "usps": "USPS"}
# samples per toy set (train + test, 3:1); the chessboard's 16 squares need more points
TOY_N = {"gaussian_mixture": 500, "xor": 500, "chessboard": 4000}
QUICK_TOY_N = 200
QUICK_USPS = (500, 200)  # train / test rows in quick mode


def add_arguments(p: argparse.ArgumentParser, *, lr: bool = True) -> argparse.ArgumentParser:
    """The options the three scripts share (``lr=False`` where the script sweeps the lr)."""
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated subset of {','.join(DATASETS)}")
    p.add_argument("--toy-epochs", type=int, default=100)
    p.add_argument("--usps-epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=16, help="hidden units of the toy nets (H)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3,
                   help="training seeds per variant (init and batch order; the data stay fixed)")
    if lr:
        p.add_argument("--toy-lr", type=float, default=0.3, help="SGD learning rate, toy sets")
        p.add_argument("--usps-lr", type=float, default=0.1, help="SGD learning rate, USPS")
    return p


def parse(p: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse, check ``--datasets``, and shrink everything but the variants in quick mode."""
    args = p.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown or not args.datasets:
        p.error(f"--datasets: unknown {unknown or 'empty list'}; choose from {', '.join(DATASETS)}")
    if args.quick:
        args.toy_epochs, args.usps_epochs, args.seeds = 3, 2, 1
    return args


def settings(args: argparse.Namespace) -> dict:
    """What the run used, for results.json."""
    keys = ("datasets", "toy_epochs", "usps_epochs", "hidden", "batch_size", "seeds", "toy_lr",
            "usps_lr")
    out = {k: getattr(args, k) for k in keys if hasattr(args, k)}
    out["toy_n"] = {d: QUICK_TOY_N if args.quick else TOY_N[d] for d in TOY}
    out["optimizer"] = "sgd"
    return out


def load(name: str, args: argparse.Namespace) -> fnn.datasets.Dataset:
    if name == "usps":
        d = fnn.datasets.usps()
        if args.quick:
            n_train, n_test = QUICK_USPS
            d = d._replace(x_train=d.x_train[:n_train], y_train=d.y_train[:n_train],
                           x_test=d.x_test[:n_test], y_test=d.y_test[:n_test])
        return d
    n = QUICK_TOY_N if args.quick else TOY_N[name]
    return getattr(fnn.datasets, name)(n, seed=args.seed)


@functools.lru_cache(maxsize=8)
def _data(name: str, quick: bool, seed: int) -> fnn.datasets.Dataset:
    """A trial's data set, loaded once per process (a Dask worker runs many trials)."""
    return load(name, argparse.Namespace(quick=quick, seed=seed))


def load_all(args: argparse.Namespace) -> dict[str, fnn.datasets.Dataset]:
    data = {name: load(name, args) for name in args.datasets}
    for name, d in data.items():
        print(f"data {TITLES[name]}: train {d.x_train.shape}, test {d.x_test.shape}, "
              f"{len(d.class_names)} classes", flush=True)
    return data


def build(name: str, data, *, hidden: int = 16, activation: str = "tanh",
          w_init: str = "xavier_uniform") -> fnn.Layer:
    """Toy: 2 -> H -> H -> K; USPS: 256 -> 100 -> 10 (the report's MLP)."""
    sizes = (100,) if name == "usps" else (hidden, hidden)
    layers = []
    for h in sizes:
        layers += [fnn.linear(h, w_init=w_init), getattr(fnn, activation)()]
    return fnn.serial(*layers, fnn.linear(len(data.class_names), w_init=w_init))


def describe(name: str, args: argparse.Namespace, activation: str = "tanh") -> str:
    net = "256-100-10" if name == "usps" else f"2-{args.hidden}-{args.hidden}-2"
    return f"{TITLES[name]}: MLP {net} ({activation})"


@dataclass
class Run:
    """One training run: the model, its final params and history, and the final test numbers."""

    model: fnn.Layer
    params: Any
    history: fnn.History
    seed: int
    lr: float
    test_accuracy: float
    train_loss: float  # last finished epoch's mean train loss (nan if none finished)
    seconds: float

    @property
    def diverged(self) -> bool:
        return self.history.stop_reason == "diverged"

    def status(self) -> str:
        if self.diverged:
            return f"diverged after {self.history.epochs} epochs"
        return self.history.stop_reason


def train_one(model: fnn.Layer, data, *, lr: float, epochs: int, batch_size: int,
              seed: int | fnn.Key, progress: bool) -> Run:
    """Plain SGD on cross-entropy; a diverging run is stopped by fnn.train's guard (its
    ``history.stop_reason == "diverged"``) and keeps the last finite params."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # the status line says it instead
        params, history = fnn.fit(model, fnn.cross_entropy, fnn.sgd(lr), data.x_train,
                                  data.y_train, epochs=epochs, batch_size=batch_size,
                                  validation=(data.x_test, data.y_test), accuracy=True,
                                  seed=seed, progress=progress)
        logits = fnn.predict(model, params, data.x_test)
    acc = fnn.accuracy(np.nan_to_num(logits, nan=0.0), data.y_test)
    loss = history.train["loss"][-1] if history.train.get("loss") else math.nan
    return Run(model, params, history, seed, lr, acc, loss, time.perf_counter() - t0)


def trial(config: dict, key: fnn.Key) -> dict:
    """One training run (:func:`train_one`) of the variant ``config["spec"]`` (keyword
    arguments of :func:`build`) on ``config["dataset"]`` from ``key``: test accuracy, last
    train loss, the history, and the final params (as arrays)."""
    name, spec = config["dataset"], config["spec"]
    d = _data(name, config["quick"], config["data_seed"])
    model = build(name, d, hidden=config["hidden"], **spec)
    run = train_one(model, d, lr=config["lr"], epochs=config["epochs"],
                    batch_size=config["batch_size"], seed=key, progress=False)
    return {"metrics": {"test_accuracy": run.test_accuracy, "train_loss": run.train_loss,
                        "seconds": run.seconds, "status": run.status(),
                        "history": dataclasses.asdict(run.history)},
            "arrays": {"params": run.params}}


def _report(record: dict) -> str:
    c, m = record["config"], record["metrics"]
    return (f"{TITLES[c['dataset']]:<16} {c['variant']:<14} seed "
            f"{record['seed'] + record['repeat']}: test acc {m['test_accuracy']:6.2%}  train "
            f"loss {m['train_loss']:.4g}  ({m['status']})")


def run_grid(tag: str, args: argparse.Namespace, data: dict, variants: dict[str, dict],
             out: Path) -> tuple[dict[str, dict[str, list[Run]]], fnn.SweepResult]:
    """Train every ``variant`` (keyword arguments of :func:`build`, plus an optional ``lr``) on
    every data set, ``args.seeds`` seeds each, as one ``fnn.sweep`` kept in ``out/trials``;
    ``(grid, sweep_result)`` with ``grid[dataset][variant] -> [Run per seed]``."""
    configs = {}
    for name in data:
        usps = name == "usps"
        for label, spec in variants.items():
            spec = dict(spec)
            lr = spec.pop("lr", None) or (args.usps_lr if usps else args.toy_lr)
            configs[name, label] = {
                "dataset": name, "variant": label, "spec": spec, "lr": lr,
                "epochs": args.usps_epochs if usps else args.toy_epochs,
                "batch_size": args.batch_size, "hidden": args.hidden, "quick": bool(args.quick),
                "data_seed": args.seed}
    result = common.sweep(tag, trial, list(configs.values()), args, out, repeats=args.seeds,
                          report=_report)
    by_config = iter(result.by_config())  # grid order: the order of ``configs``
    grid: dict[str, dict[str, list[Run]]] = {}
    for (name, label), config in configs.items():
        _, records = next(by_config)
        model = build(name, data[name], hidden=args.hidden, **config["spec"])
        grid.setdefault(name, {})[label] = [
            Run(model, result.arrays(r)["params"], fnn.History(**r["metrics"]["history"]),
                r["seed"] + r["repeat"], config["lr"], r["metrics"]["test_accuracy"],
                math.nan if r["metrics"]["train_loss"] is None else r["metrics"]["train_loss"],
                r["metrics"]["seconds"])
            for r in records]
    return grid, result


# ----------------------------------------------------------------------------- summaries

def accuracies(runs: Sequence[Run]) -> np.ndarray:
    return np.array([r.test_accuracy for r in runs])


def summarise(grid: dict) -> dict:
    """JSON-ready ``{dataset: {variant: {test_accuracy: mean/std/values, train_loss, ...}}}``."""
    out = {}
    for name, by_variant in grid.items():
        out[name] = {}
        for label, runs in by_variant.items():
            losses = [r.train_loss for r in runs]
            out[name][label] = {
                "test_accuracy": common.mean_std(accuracies(runs)),
                "train_loss": float(np.mean(losses)) if not np.isnan(losses).all() else None,
                "train_loss_values": [None if math.isnan(v) else v for v in losses],
                "epochs": [r.history.epochs for r in runs],
                "stop_reason": [r.history.stop_reason for r in runs],
                "lr": runs[0].lr,
                "seconds": round(sum(r.seconds for r in runs), 2),
            }
    return out


def best_variant(by_variant: dict[str, list[Run]]) -> str:
    return max(by_variant, key=lambda v: accuracies(by_variant[v]).mean())


def fmt_acc(runs: Sequence[Run]) -> str:
    a = accuracies(runs) * 100
    text = f"{a.mean():.1f}" + (f" ± {a.std(ddof=1):.1f}" if len(a) > 1 else "")
    diverged = sum(r.diverged for r in runs)
    return text + (f" (diverged {diverged}/{len(runs)})" if diverged else "")


def rows(grid: dict, what: str) -> list[dict]:
    """One RESULTS.md row per variant: test accuracy on every data set."""
    names = list(grid)
    variants = list(next(iter(grid.values())))
    sets = " / ".join(SHORT[n] for n in names)
    return [{"what": f"{what} {v}: test accuracy % ({sets})",
             "measured": " / ".join(fmt_acc(grid[n][v]) for n in names),
             "report": ""} for v in variants]


# ----------------------------------------------------------------------------- figures

def loss_overlays(out: Path, grid: dict, what: str) -> list[Path]:
    """``loss_<dataset>.png``: train loss per epoch of every variant (first seed), log scale;
    runs that diverged in their first epoch have no curve and are named in the title."""
    paths = []
    for name, by_variant in grid.items():
        histories, missing = {}, []
        for label, runs in by_variant.items():
            h = runs[0].history
            if not h.train.get("loss"):
                missing.append(label)
                continue
            histories[label + (" (diverged)" if h.stop_reason == "diverged" else "")] = h
        title = f"{TITLES[name]}: train loss per {what}"
        if missing:
            title += f"\nno finished epoch: {', '.join(missing)}"
        if histories:
            fig = fnn.plot.curves_overlay(histories, "loss", section="train", log_y=True,
                                          title=title)
            paths.append(common.save(fig, out, f"loss_{name}.png"))
    return paths


def accuracy_bars(out: Path, grid: dict, what: str) -> Path:
    """``test_accuracy.png``: groups = variants, one bar per data set (mean over seeds)."""
    variants = list(next(iter(grid.values())))
    series = {TITLES[n]: [accuracies(grid[n][v]).mean() for v in variants] for n in grid}
    errors = {TITLES[n]: [accuracies(grid[n][v]).std() for v in variants] for n in grid}
    seeds = len(next(iter(next(iter(grid.values())).values())))
    fig = fnn.plot.grouped_bars(variants, series, errors=errors if seeds > 1 else None,
                                ylabel="test accuracy", fmt="{:.2f}",
                                title=f"final test accuracy per {what}"
                                      + (f" (mean ± std of {seeds} seeds)" if seeds > 1 else ""))
    fig.set_size_inches(max(7.0, 1.25 * len(variants) + 2), 4.2)
    ax = fig.axes[0]
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for text in ax.texts:  # the values on the bars: small, they sit side by side
        text.set_fontsize(6)
    for label in ax.get_xticklabels():
        label.set_rotation(25)
        label.set_horizontalalignment("right")
    return common.save(fig, out, "test_accuracy.png")


def _pixels(fig: Figure, dpi: float) -> np.ndarray:
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def montage(figs: Sequence[Figure], ncols: int, title: str | None = None,
            dpi: float = 100) -> Figure:
    """Tile figures (e.g. one decision boundary per run), rendered at ``dpi``, into one."""
    images = [_pixels(f, dpi) for f in figs]
    nrows = math.ceil(len(images) / ncols)
    h, w = images[0].shape[:2]
    inch = 3.2 / w  # 3.2 inch wide panels
    big = Figure(figsize=(ncols * w * inch, nrows * h * inch + (0.4 if title else 0)),
                 layout="constrained")
    axes = big.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, img in zip(axes, images):
        ax.imshow(img, interpolation="antialiased")
    if title:
        big.suptitle(title)
    return big


def boundary(run: Run, d, title: str, resolution: int) -> Figure:
    """fnn.plot.decision_boundary of one run on its test points."""
    return fnn.plot.decision_boundary(lambda g: fnn.predict(run.model, run.params, g),
                                      d.x_test, d.y_test, resolution=resolution, title=title)


def boundary_grid(out: Path, grid: dict, data: dict, datasets: Sequence[str],
                  variants: Sequence[str], filename: str, title: str, quick: bool) -> Path | None:
    """Decision boundaries (first seed, test points): one row per data set, one column per
    variant, one PNG."""
    datasets = [n for n in datasets if n in grid]
    if not datasets:
        return None
    res = 60 if quick else 200
    figs = [boundary(grid[n][v][0], data[n],
                     f"{TITLES[n]}, {v}: {grid[n][v][0].test_accuracy:.1%}", res)
            for n in datasets for v in variants]
    ncols = len(variants) if len(datasets) > 1 else min(len(variants), 3)
    return common.save(montage(figs, ncols, title, dpi=50 if quick else 100), out, filename)


def usps_figures(out: Path, grid: dict, data: dict, what: str, quick: bool) -> list[Path]:
    """For the best USPS variant: first-layer weights as 16x16 images (all 100 units; 16 in
    quick mode, where drawing 100 panels would take most of the time), confusion matrix."""
    if "usps" not in grid:
        return []
    best = best_variant(grid["usps"])
    run = grid["usps"][best][0]
    w = run.params["00_linear"]["w"]
    paths = [common.save(fnn.plot.weights(w, image_shape=(16, 16), max_units=16 if quick else 100,
                                          title=f"USPS first-layer weights, best {what}: {best}"),
                         out, "usps_weights.png")]
    pred = fnn.predict(run.model, run.params, data["usps"].x_test).argmax(axis=1)
    fig = fnn.plot.confusion_matrix(data["usps"].y_test, pred,
                                    class_names=data["usps"].class_names,
                                    title=f"USPS, {what} {best}: test accuracy "
                                          f"{run.test_accuracy:.2%}")
    paths.append(common.save(fig, out, "usps_confusion.png"))
    return paths
