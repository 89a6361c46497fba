"""Shared by the report's section 3.2 scripts (``usps_conv1d``, ``usps_conv1d_sweeps``): the data
with its validation hold-out, the Conv1D nets, one honest early-stopped training run, repeats
over seeds, their summary, and the figures both scripts draw.

* Data: USPS as 1-D signals ``(N, 256, 1)`` (the 16x16 image read row by row). ``split``
  ``"resplit"`` pools the 9298 images and draws a new 7291/2007 split (``fnn.datasets.resplit``,
  the level the report quotes); ``"standard"`` keeps USPS's own test set, written by other people
  and about 3 points harder (see ``fnn.datasets.usps``). Both are drawn once with ``--data-seed``.
* Validation: a fixed, stratified ``--val-fraction`` (10%) of the training rows is held out; early
  stopping watches it, the test set is only scored after training. "train accuracy" is measured
  on the remaining 90% the net was fitted on.
* Net (:func:`conv_net`): ``[conv1d(c, k) -> max_pool1d(2, 2)] per conv layer -> flatten ->
  linear(100) -> relu -> linear(10)``; ``widths=(32,), kernel_size=3`` is the report's net.
  The conv layers have no bias and no activation, as in the report's net (max-pooling is the
  only non-linearity between stacked conv layers; a bias before it would be absorbed by the
  next layer).
* Training: cross-entropy on logits, plain SGD (``--lr``) or, with ``--optimizer adamw``, AdamW
  with a linear warm-up then a cosine decay (:func:`make_optimizer`), batch 32 (the last partial
  batch of each epoch dropped, see :data:`DROP_LAST`), at most 50 epochs, early stopping on the
  validation loss with patience 5 that restores the best epoch's params; the epoch count is the
  number of epochs run (best epoch + patience unless the limit came first), as Keras'
  ``len(history.epoch)``.
* Runs: every (net, repeat) of a script is one trial of one ``fnn.sweep`` (:func:`run_all`,
  trial :func:`trial`), on Dask workers or in-process (``--workers``, ``--scheduler``), kept
  in ``<out>/trials`` so that a rerun only does what is missing; repeat ``i`` uses seed
  ``--seed + i`` for every net, as before.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import common
import numpy as np
from matplotlib.figure import Figure
from sklearn.model_selection import train_test_split

import fnn

LR = 0.1  # plain SGD at batch 32; chosen in usps_conv1d.py's docstring
OPTIMIZERS = ("sgd", "adamw")
# AdamW defaults (--lr, --weight-decay, --warmup-epochs, --decay-epochs), chosen on the re-split's
# validation set; see usps_conv1d.py's docstring
ADAMW = {"lr": 3e-3, "weight_decay": 0.01, "warmup_epochs": 2, "decay_epochs": 20}
SPLITS = ("resplit", "standard")
SPLIT_TITLES = {"resplit": "USPS re-split", "standard": "USPS standard split"}
QUICK_ROWS = (600, 300)  # train (before the validation hold-out) / test rows in quick mode
# Drop each epoch's last partial batch (a fresh random remainder every epoch): 6561 training
# rows at batch 32 leave a batch of ONE image, whose unaveraged gradient step at the end of the
# epoch sometimes threw the validation accuracy down to 15-50% (recovered the next epoch), which
# ate into the early-stopping patience.
DROP_LAST = True


class Data(NamedTuple):
    """Train (fitted on), validation (early stopping) and test rows; x: (N, 256, 1), y: (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    split: str


def add_arguments(p: argparse.ArgumentParser, *, repeats: int) -> argparse.ArgumentParser:
    """The options both scripts share (training protocol and data)."""
    p.add_argument("--repeats", type=int, default=repeats,
                   help="runs per configuration, seeds --seed, --seed+1, ... (init and batch order)")
    p.add_argument("--epochs", type=int, default=50, help="at most this many epochs")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience (epochs)")
    p.add_argument("--monitor", choices=("loss", "accuracy"), default="loss",
                   help="validation metric watched by early stopping")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="plain SGD, or AdamW with linear warm-up and cosine decay")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (AdamW: the peak) [sgd {LR}, adamw {ADAMW['lr']}]")
    p.add_argument("--weight-decay", type=float, default=None,
                   help=f"AdamW's decoupled weight decay, kernels only [{ADAMW['weight_decay']}]")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help=f"AdamW: linear warm-up from 0 over these epochs [{ADAMW['warmup_epochs']}]")
    p.add_argument("--decay-epochs", type=float, default=None,
                   help=f"AdamW: the cosine reaches 0 at this epoch [{ADAMW['decay_epochs']}]")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="stratified share of the training rows held out for early stopping")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the re-split and of the validation hold-out (fixed over repeats)")
    return p


def quick(args: argparse.Namespace, repeats: int = 1) -> argparse.Namespace:
    """Fill the optimiser's defaults (:data:`LR`, :data:`ADAMW`) where no option was given, and
    shrink the run in quick mode (smoke test): 2 epochs, ``repeats`` repeats."""
    adamw = args.optimizer == "adamw"
    if args.lr is None:
        args.lr = ADAMW["lr"] if adamw else LR
    for k in ("weight_decay", "warmup_epochs", "decay_epochs"):
        if not adamw and getattr(args, k) is not None:
            raise SystemExit(f"--{k.replace('_', '-')} is an AdamW option (--optimizer adamw)")
        if adamw and getattr(args, k) is None:
            setattr(args, k, ADAMW[k])
    if args.quick:
        args.epochs, args.repeats = 2, repeats
    return args


def make_optimizer(args: argparse.Namespace, steps_per_epoch: int) -> fnn.Optimizer:
    """``--optimizer sgd``: ``fnn.sgd(lr)``. ``adamw``: ``fnn.adamw`` (decoupled weight decay
    on the kernels, not the biases) whose learning rate rises linearly from 0 to ``lr`` over
    ``warmup_epochs``, then follows a cosine down to 0 at ``decay_epochs`` (and stays 0), the
    schedule written in epochs and fed fractional epochs (``steps / steps_per_epoch``)."""
    if args.optimizer == "sgd":
        return fnn.sgd(args.lr)
    schedule = fnn.optim.warmup_cosine_decay(args.lr, args.warmup_epochs, args.decay_epochs)
    return fnn.adamw(fnn.optim.in_epochs(schedule, steps_per_epoch),
                     weight_decay=args.weight_decay)


def describe_optimizer(args: argparse.Namespace) -> str:
    """``"SGD lr 0.1"`` or ``"AdamW lr 0.001 (...), weight decay 0.1 ..."``."""
    if args.optimizer == "sgd":
        return f"SGD lr {args.lr:g}"
    return (f"AdamW lr {args.lr:g} (linear warm-up over {args.warmup_epochs:g} epochs, cosine to 0 "
            f"at epoch {args.decay_epochs:g}), weight decay {args.weight_decay:g} on kernels")


def load(split: str, args: argparse.Namespace, layout: str = "signal") -> Data:
    """USPS signals (or ``layout="image"``: 16x16 images), re-split or standard, with the
    stratified validation hold-out."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    d = fnn.datasets.usps(layout=layout)
    if split == "resplit":
        d = fnn.datasets.resplit(d, seed=args.data_seed)
    x, y, x_test, y_test = d.x_train, d.y_train, d.x_test, d.y_test
    if args.quick:
        n_train, n_test = QUICK_ROWS
        x, y, x_test, y_test = x[:n_train], y[:n_train], x_test[:n_test], y_test[:n_test]
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=args.val_fraction, stratify=y, random_state=args.data_seed)
    data = Data(x_train, y_train, x_val, y_val, x_test, y_test, d.class_names, split)
    print(f"data {SPLIT_TITLES[split]}: train {x_train.shape}, validation {x_val.shape}, "
          f"test {x_test.shape}", flush=True)
    return data


def conv_net(widths: Sequence[int] = (32,), kernel_size: int = 3, *, hidden: int = 100,
             classes: int = 10) -> fnn.Layer:
    """``[conv1d(c, kernel_size) -> max_pool1d(2, 2)] for c in widths -> flatten ->
    linear(hidden) -> relu -> linear(classes)``: (N, L, 1) -> (N, classes) logits."""
    blocks = [layer for c in widths for layer in (fnn.conv1d(c, kernel_size), fnn.max_pool1d(2, 2))]
    return fnn.serial(*blocks, fnn.flatten(), fnn.linear(hidden), fnn.relu(),
                      fnn.linear(classes))


def describe(widths: Sequence[int] = (32,), kernel_size: int = 3) -> str:
    """``conv1d(32, 3) -> max_pool1d(2, 2) -> ... -> linear(10)``."""
    convs = " -> ".join(f"conv1d({c}, {kernel_size}) -> max_pool1d(2, 2)" for c in widths)
    return f"{convs} -> flatten -> linear(100) -> relu -> linear(10)"


@dataclass
class Run:
    """One early-stopped run: restored (best) params, its history and accuracies."""

    model: fnn.Layer
    params: Any
    history: fnn.History
    seed: int
    train_accuracy: float  # on the rows the net was fitted on
    val_accuracy: float
    test_accuracy: float
    seconds: float  # wall time of the run, evaluation included

    @property
    def epochs(self) -> int:
        """Epochs run (the best one plus the patience, or the limit)."""
        return self.history.epochs

    @property
    def best_epoch(self) -> int:
        """1-based epoch whose params were restored."""
        return (self.history.best_epoch or 0) + 1

    @property
    def seconds_per_epoch(self) -> float:
        """Mean training time per epoch (evaluation excluded)."""
        return float(np.mean(self.history.seconds)) if self.history.seconds else math.nan

    @property
    def fastest_epoch(self) -> float:
        """Training seconds of the fastest epoch: the speed with the least interference from
        other processes on the machine (the mean drifts with their load)."""
        return float(np.min(self.history.seconds)) if self.history.seconds else math.nan


def train_run(model: fnn.Layer, data: Data, args: argparse.Namespace, *, seed: int | fnn.Key,
              batch_size: int | None = None) -> Run:
    """SGD (or AdamW, :func:`make_optimizer`) on cross-entropy with early stopping on the validation set (best params restored);
    then the accuracy of those params on train, validation and test.

    As ``fnn.fit`` (init key ``fold_in(key(seed), 0)``, batch order ``fold_in(key(seed), 1)``;
    ``seed`` may be a key itself) but the last partial batch of every epoch is dropped (see
    :data:`DROP_LAST`)."""
    t0 = time.perf_counter()
    bs = batch_size or args.batch_size
    key = seed if isinstance(seed, np.random.SeedSequence) else fnn.key(seed)
    _, params = model.init(fnn.fold_in(key, 0), (-1, *data.x_train.shape[1:]))
    drop_last = DROP_LAST and len(data.x_train) >= bs
    opt = make_optimizer(args, len(data.x_train) // bs if drop_last else -(-len(data.x_train) // bs))
    stop = fnn.EarlyStopping(args.monitor, patience=args.patience,
                             mode="min" if args.monitor == "loss" else "max")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a diverged run says so in its status
        state, history = fnn.train(
            fnn.supervised_step(model, fnn.cross_entropy, opt),
            fnn.batches(data.x_train, data.y_train, batch_size=bs, rng=fnn.fold_in(key, 1),
                        drop_last=drop_last),
            fnn.TrainState.create(params, opt), epochs=args.epochs,
            eval_fn=fnn.evaluator(model, data.x_val, data.y_val, loss=fnn.cross_entropy,
                                  accuracy=True),
            early_stopping=stop, progress=args.progress)
        acc = [fnn.accuracy(np.nan_to_num(fnn.predict(model, state.params, x), nan=0.0), y)
               for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val),
                            (data.x_test, data.y_test))]
    return Run(model, state.params, history, seed, *acc, time.perf_counter() - t0)


NOT_SETTINGS = ("repeats", "sweeps", "splits", "split", "batch_size")  # per net, or what runs


def net_config(widths: Sequence[int] = (32,), kernel_size: int = 3, *, batch_size: int,
               split: str) -> dict:
    """One net of a script's grid (the ``config`` of :func:`trial`, less the settings)."""
    return {"widths": [int(c) for c in widths], "kernel_size": int(kernel_size),
            "batch_size": int(batch_size), "split": split}


@functools.lru_cache(maxsize=2)
def _data(split: str, data_seed: int, val_fraction: float, quick: bool) -> Data:
    """The data of a trial, loaded once per process (a Dask worker runs many trials)."""
    return load(split, argparse.Namespace(data_seed=data_seed, val_fraction=val_fraction,
                                          quick=quick))


def trial(config: dict, key: fnn.Key) -> dict:
    """One early-stopped run (:func:`train_run`) of the net ``config`` (:func:`net_config` plus
    ``"settings"``, the script's options) from ``key``: the accuracies, the history and the
    restored params (as arrays)."""
    args = argparse.Namespace(**config["settings"], progress=False)
    data = _data(config["split"], args.data_seed, args.val_fraction, args.quick)
    run = train_run(conv_net(config["widths"], config["kernel_size"]), data, args, seed=key,
                    batch_size=config["batch_size"])
    metrics = {"train_accuracy": run.train_accuracy, "val_accuracy": run.val_accuracy,
               "test_accuracy": run.test_accuracy, "epochs": run.epochs,
               "best_epoch": run.best_epoch, "seconds_per_epoch": run.seconds_per_epoch,
               "fastest_epoch": run.fastest_epoch, "seconds": run.seconds,
               "stop_reason": run.history.stop_reason,
               "history": dataclasses.asdict(run.history)}
    return {"metrics": metrics, "arrays": {"params": run.params}}


def _report(record: dict) -> str:
    m, c = record["metrics"], record["config"]
    return (f"{describe(c['widths'], c['kernel_size'])}, batch {c['batch_size']}, {c['split']}, "
            f"seed {record['seed'] + record['repeat']}: train {m['train_accuracy']:.2%} val "
            f"{m['val_accuracy']:.2%} test {m['test_accuracy']:.2%}  best epoch "
            f"{m['best_epoch']}/{m['epochs']} ({m['stop_reason']}, "
            f"{m['seconds_per_epoch']:.2f} s/epoch)")


def run_all(name: str, nets: dict, args: argparse.Namespace, out: Path):
    """Every net of ``nets`` (any label -> :func:`net_config`) x ``args.repeats`` as one
    ``fnn.sweep``: ``({label: [Run per repeat]}, sweep_result)``. Nets that are the same
    config (the report's net in every sweep of usps_conv1d_sweeps) run once and are shared."""
    settings = common.settings_of(args, exclude=NOT_SETTINGS)
    configs = {k: {**net, "settings": settings} for k, net in nets.items()}
    unique = list({json.dumps(c, sort_keys=True): c for c in configs.values()}.values())
    result = common.sweep(name, trial, unique, args, out, repeats=args.repeats, report=_report)
    groups = {json.dumps(c, sort_keys=True): records for c, records in result.by_config()}
    runs = {}
    for k, config in configs.items():
        records = groups[json.dumps(config, sort_keys=True)]
        runs[k] = [run_from(r, result) for r in records]
    return runs, result


def run_from(record: dict, result: fnn.SweepResult) -> Run:
    """The :class:`Run` of a finished trial: its net rebuilt, params read back."""
    c, m = record["config"], record["metrics"]
    return Run(conv_net(c["widths"], c["kernel_size"]), result.arrays(record)["params"],
               fnn.History(**m["history"]), record["seed"] + record["repeat"],
               m["train_accuracy"], m["val_accuracy"], m["test_accuracy"], m["seconds"])


# ----------------------------------------------------------------------------- summaries

FIELDS = ("train_accuracy", "val_accuracy", "test_accuracy", "epochs", "best_epoch",
          "seconds_per_epoch", "fastest_epoch")


def summarise(runs: Sequence[Run]) -> dict:
    """JSON-ready mean/std/values of every field of :data:`FIELDS`, plus stop reasons."""
    out = {f: common.mean_std([getattr(r, f) for r in runs]) for f in FIELDS}
    out["seeds"] = [r.seed for r in runs]
    out["stop_reason"] = [r.history.stop_reason for r in runs]
    out["seconds"] = round(sum(r.seconds for r in runs), 1)
    return out


def fmt(stat: dict, scale: float = 100.0, digits: int = 2) -> str:
    """``"97.08 ± 0.12"`` from a :func:`common.mean_std` dict (``scale`` 100: percent)."""
    text = f"{stat['mean'] * scale:.{digits}f}"
    return text + (f" ± {stat['std'] * scale:.{digits}f}" if stat["n"] > 1 else "")


def settings(args: argparse.Namespace) -> dict:
    """What the runs used, for results.json."""
    keys = ("repeats", "epochs", "patience", "monitor", "lr", "batch_size", "val_fraction",
            "data_seed")
    adamw = {k: getattr(args, k) for k in ("weight_decay", "warmup_epochs", "decay_epochs")
             if args.optimizer == "adamw"}
    return {**{k: getattr(args, k) for k in keys}, "optimizer": args.optimizer, **adamw,
            "optimizer_description": describe_optimizer(args), "loss": "cross_entropy",
            "early_stopping": f"validation {args.monitor}, restore best"}


# ----------------------------------------------------------------------------- figures

def overlay(runs: dict[str, Run], metric: str, *, section: str = "eval", log_y: bool = False,
            title: str | None = None) -> Figure:
    """fnn.plot.curves_overlay of the runs' ``metric``, the restored (best) epoch of each run
    marked with a dot on its validation curve."""
    fig = fnn.plot.curves_overlay({k: r.history for k, r in runs.items()}, metric,
                                  section=section, log_y=log_y, title=title)
    ax = fig.axes[0]
    colors = [line.get_color() for line in ax.get_lines()][:: 2 if section == "both" else 1]
    for color, run in zip(colors, runs.values()):
        values = run.history.eval.get(metric)
        if values:
            ax.plot(run.best_epoch, values[run.best_epoch - 1], "o", color=color, ms=5,
                    mec="black", mew=0.6, zorder=3)
    ax.set_ylabel(f"{'validation' if section == 'eval' else ''} {metric}".strip())
    return fig


def confusion(run: Run, data: Data, title: str) -> Figure:
    """Test-set confusion matrix of one run."""
    pred = fnn.predict(run.model, run.params, data.x_test).argmax(axis=1)
    return fnn.plot.confusion_matrix(data.y_test, pred, class_names=data.class_names, title=title)


def save_all(out: Path, figures: dict[str, Figure]) -> list[Path]:
    return [common.save(fig, out, name) for name, fig in figures.items()]
