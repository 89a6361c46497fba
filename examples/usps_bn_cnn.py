"""Beyond the report: a 2-D CNN with batch-norm on USPS's standard split (target >= 97.0% test).

    python examples/usps_bn_cnn.py [--quick] [--repeats 5] [--epochs 30] [--patience 10]
                                   [--lr 3e-3] [--weight-decay 1e-4] [--batch-size 64]
                                   [--no-augment] [--shift 1] [--degrees 10]

Net (16x16x1 images, :func:`build`)::

    conv2d(32, 3, same) -> batch_norm -> relu -> max_pool2d(2)         8x8x32
    conv2d(64, 3, same) -> batch_norm -> relu -> max_pool2d(2)         4x4x64
    flatten -> linear(128) -> batch_norm -> relu -> dropout(0.3) -> linear(10)

(no bias before a batch-norm: its shift replaces it; He-normal kernels).

Protocol (honest): USPS's own 7291/2007 split, whose test digits come from other writers and
are harder than a random re-split of the 9298 images (the report's 97.08% was on such a
re-split; see ``examples/usps_conv1d.py``). A fixed, stratified 10% of the training rows is
held out for validation (``--data-seed``; the same rows as ``usps_conv1d``'s standard split).
Training: cross-entropy, ``fnn.adamw`` (decay on the kernels only) whose learning rate rises
linearly over 2 epochs and then follows a cosine to 0 at ``--epochs``, batch 64 split over two
threads (``threads=2``: the batch-norm statistics are those of the whole batch). Every batch is
augmented afresh by ``fnn.augment.augmented`` (rotation by up to ``--degrees`` then a shift by
up to ``--shift`` whole pixels, keyed by seed, epoch and batch; ``--no-augment`` turns it off and
writes to ``results/usps_bn_cnn_noaug``). Early stopping watches the validation loss (patience
``--patience``) and restores the best epoch's params and batch-norm running statistics; train
(the 90% fitted on, un-augmented), validation and test accuracy are those of the restored
model, the test set scored once per run after training. ``--repeats`` runs use seeds
``--seed, --seed + 1, ...`` (init, batch order, augmentation and dropout keys; the data split
is fixed).

Hyper-parameters were chosen on the validation set only (seed 0, 30 epochs; the test set was
not scored while choosing). Best-epoch validation loss / accuracy: shift 2 and rotation 10°
0.0198 / 99.45%; shift 1 and rotation 10° 0.0117 / 99.73% (chosen); no augmentation 0.0188 /
99.59%; shift 1 with lr 1e-3 0.0143 / 99.73%, with weight decay 5e-4 0.0133 / 99.73%. USPS
digits fill their 16x16 frame, so a 2-pixel shift cuts strokes off. (The validation digits
come from the training set's writers: 730 of them separate the settings by a few errors only.)
Each of these is one run of this script, e.g. ``--repeats 1 --shift 2`` or ``--repeats 1
--lr 1e-3``, reading the best epoch's validation numbers from its ``results.json`` histories.

Figures: ``curves.png`` (loss and accuracy, train and validation, of the median run),
``val_accuracy.png`` (validation accuracy of every run), ``repeats.png`` (train / validation
/ test accuracy per seed), ``confusion.png`` and ``misclassified.png`` (the median run's test
errors), ``augmentation.png`` (training digits and their augmented versions).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import conv1d_common  # noqa: E402
from conv1d_common import Data  # noqa: E402  (train / validation / test rows; images here)

NAME = "usps_bn_cnn"
NEEDS_REAL_DATA = True
REPORT = {"test_accuracy": "97.08 (random re-split, easier)"}
TARGET = 0.970
QUICK_EPOCHS = 2


class Run(NamedTuple):
    """One early-stopped run: the restored params and batch-norm state, its history and the
    accuracies of the restored model."""

    seed: int
    params: Any
    model_state: Any
    history: fnn.History
    accuracy: dict  # {"train", "val", "test"}
    seconds: float


def build(dropout: float = 0.3) -> fnn.Layer:
    """The CNN: ``(N, 16, 16, 1)`` images -> ``(N, 10)`` logits."""

    def conv(c: int) -> list[fnn.Layer]:
        return [fnn.conv2d(c, 3, padding="same", bias=False, w_init="he_normal"),
                fnn.batch_norm(), fnn.relu(), fnn.max_pool2d(2)]

    return fnn.serial(*conv(32), *conv(64), fnn.flatten(),
                      fnn.linear(128, bias=False, w_init="he_normal"), fnn.batch_norm(),
                      fnn.relu(), fnn.dropout(dropout), fnn.linear(10))


def describe(args) -> str:
    return ("conv2d(32, 3, same) -> batch_norm -> relu -> max_pool2d(2) -> conv2d(64, 3, same) "
            "-> batch_norm -> relu -> max_pool2d(2) -> flatten -> linear(128) -> batch_norm -> "
            f"relu -> dropout({args.dropout:g}) -> linear(10)")


def load(args) -> Data:
    """USPS's standard split as images ``(N, 16, 16, 1)``, with the stratified validation
    hold-out (the rows ``usps_conv1d`` holds out)."""
    return conv1d_common.load("standard", args, layout="image")


def make_optimizer(args, steps_per_epoch: int) -> fnn.Optimizer:
    """AdamW, linear warm-up over ``--warmup-epochs`` then a cosine to 0 at ``--epochs``."""
    schedule = fnn.optim.warmup_cosine_decay(args.lr, args.warmup_epochs, args.epochs)
    return fnn.adamw(fnn.optim.in_epochs(schedule, steps_per_epoch),
                     weight_decay=args.weight_decay)


def describe_optimizer(args) -> str:
    return (f"AdamW lr {args.lr:g} (linear warm-up over {args.warmup_epochs:g} epochs, cosine "
            f"to 0 at epoch {args.epochs}), weight decay {args.weight_decay:g} on kernels")


def training_data(data: Data, args, key: fnn.Key):
    """Shuffled batches (last partial batch dropped), augmented unless ``--no-augment``."""
    batches = fnn.batches(data.x_train, data.y_train, batch_size=args.batch_size,
                          rng=fnn.fold_in(key, 1), drop_last=True)
    if not args.augment:
        return batches
    return fnn.augment.augmented(batches, fnn.fold_in(key, 2), shift=args.shift,
                                 degrees=args.degrees)


def train_run(data: Data, args, seed: int) -> tuple[fnn.TrainState, fnn.History]:
    """One run from ``fnn.key(seed)``: init ``fold_in(key, 0)``, batch order 1, augmentation
    2, dropout 3; early stopping on the validation set, best epoch restored. The test set is
    not touched here."""
    key = fnn.key(seed)
    model = build(args.dropout)
    _, params, model_state = fnn.init(model, fnn.fold_in(key, 0), (-1, *data.x_train.shape[1:]))
    batches = training_data(data, args, key)
    opt = make_optimizer(args, len(batches))

    def report(epoch: int, state, history: fnn.History) -> None:
        if not args.progress:
            print(f"  seed {seed} epoch {epoch + 1}/{args.epochs}: train loss "
                  f"{history.train['loss'][-1]:.4f}  val loss {history.eval['loss'][-1]:.4f}  "
                  f"val accuracy {history.eval['accuracy'][-1]:.2%}  "
                  f"({history.seconds[-1]:.1f} s)", flush=True)

    return fnn.train(
        fnn.supervised_step(model, fnn.cross_entropy, opt, threads=args.threads), batches,
        fnn.TrainState.create(params, opt, key=fnn.fold_in(key, 3), model_state=model_state),
        epochs=args.epochs,
        eval_fn=fnn.evaluator(model, data.x_val, data.y_val, loss=fnn.cross_entropy,
                              accuracy=True),
        early_stopping=fnn.EarlyStopping(args.monitor, patience=args.patience,
                                         mode="min" if args.monitor == "loss" else "max"),
        callbacks=[report], progress=args.progress)


def scored(data: Data, args, seed: int) -> Run:
    """:func:`train_run`, then the restored model's accuracy on train, validation and test
    (the only time this run sees the test set)."""
    t0 = time.perf_counter()
    state, history = train_run(data, args, seed)
    model = build(args.dropout)
    acc = {k: fnn.accuracy(fnn.predict(model, state.params, x, state=state.model_state), y)
           for k, (x, y) in {"train": (data.x_train, data.y_train),
                             "val": (data.x_val, data.y_val),
                             "test": (data.x_test, data.y_test)}.items()}
    return Run(seed, state.params, state.model_state, history, acc, time.perf_counter() - t0)


def summarise(runs: list[Run]) -> dict:
    """JSON-ready mean/std/values per seed."""
    best = [(r.history.best_epoch or 0) + 1 for r in runs]
    return {
        "seeds": [r.seed for r in runs],
        **{f"{k}_accuracy": common.mean_std([r.accuracy[k] for r in runs])
           for k in ("train", "val", "test")},
        "epochs": common.mean_std([r.history.epochs for r in runs]),
        "best_epoch": common.mean_std(best),
        "seconds_per_epoch": common.mean_std([np.mean(r.history.seconds) for r in runs]),
        "fastest_epoch": common.mean_std([np.min(r.history.seconds) for r in runs]),
        "stop_reason": [r.history.stop_reason for r in runs],
        "meets_target": [r.accuracy["test"] >= TARGET for r in runs],
        "seconds": round(sum(r.seconds for r in runs), 1),
        "histories": {str(r.seed): r.history.to_dict() for r in runs},
    }


def fmt(stat: dict, scale: float = 100.0, digits: int = 2) -> str:
    """``"97.31 ± 0.12"`` (``scale`` 100: percent)."""
    text = f"{stat['mean'] * scale:.{digits}f}"
    return text + (f" ± {stat['std'] * scale:.{digits}f}" if stat["n"] > 1 else "")


def rows(s: dict, args) -> list[dict]:
    """RESULTS.md rows, the report's (easier split) beside the test accuracy."""
    n = s["test_accuracy"]["n"]
    each = ", ".join(f"{100 * v:.2f}" for v in s["test_accuracy"]["values"])
    aug = (f"augmented (shift {args.shift}, rotation {args.degrees:g}°)" if args.augment
           else "no augmentation")
    what = f"BN-CNN, USPS standard split, {aug}"
    return [
        {"what": f"{what}: test accuracy % ({n} seeds: {each})",
         "measured": fmt(s["test_accuracy"]), "report": REPORT["test_accuracy"]},
        {"what": f"{what}: runs reaching the {100 * TARGET:.1f}% target",
         "measured": f"{sum(s['meets_target'])} of {n}", "report": ""},
        {"what": f"{what}: train / validation accuracy %",
         "measured": f"{fmt(s['train_accuracy'])} / {fmt(s['val_accuracy'])}", "report": ""},
        {"what": f"{what}: epochs run (best epoch) / seconds per epoch",
         "measured": f"{fmt(s['epochs'], 1, 1)} ({fmt(s['best_epoch'], 1, 1)}) / "
                     f"{fmt(s['seconds_per_epoch'], 1, 1)}", "report": ""},
    ]


# ----------------------------------------------------------------------------- figures

def median_run(runs: list[Run]) -> Run:
    """The run whose test accuracy is the median (the lower one for an even count)."""
    order = np.argsort([r.accuracy["test"] for r in runs], kind="stable")
    return runs[order[(len(runs) - 1) // 2]]


def figures(out: Path, runs: list[Run], data: Data, args) -> list[Path]:
    best = median_run(runs)
    model = build(args.dropout)
    pred = fnn.predict(model, best.params, data.x_test, state=best.model_state).argmax(axis=1)
    wrong = np.flatnonzero(pred != data.y_test)
    shown = wrong[:40] if len(wrong) else np.arange(min(10, len(pred)))
    figs = {
        "curves.png": fnn.plot.curves(
            best.history, ["loss", "accuracy"], title=f"seed {best.seed} (median test accuracy); eval = validation, "
                                f"dotted: restored epoch"),
        "val_accuracy.png": fnn.plot.curves_overlay(
            {f"seed {r.seed}": r.history for r in runs}, "accuracy", section="eval",
            title="validation accuracy per epoch, every seed"),
        "repeats.png": fnn.plot.sweep(
            [str(r.seed) for r in runs],
            {k: [100 * r.accuracy[k] for r in runs] for k in ("train", "val", "test")},
            xlabel="seed", ylabel="accuracy (%)",
            title="accuracy per seed (restored model)"),
        "confusion.png": fnn.plot.confusion_matrix(
            data.y_test, pred, class_names=data.class_names,
            title=f"test set, seed {best.seed}: accuracy {best.accuracy['test']:.2%}"),
        "misclassified.png": fnn.plot.image_grid(
            data.x_test[shown], ncols=10,
            labels=[f"{data.y_test[i]} → {pred[i]}" for i in shown],
            title=f"seed {best.seed}: the first {len(shown)} of {len(wrong)} misclassified test "
                  f"digits (true → predicted)"),
    }
    ax = figs["repeats.png"].axes[0]
    for line in ax.get_lines():  # seeds are not a sequence: markers only
        line.set_linestyle("none")
    ax.axhline(100 * TARGET, color="C2", ls=":", lw=1.2, label=f"target {100 * TARGET:.1f}% (test)")
    ax.legend(fontsize=7)
    if args.augment:
        figs["augmentation.png"] = augmentation_figure(data, args)
    return [common.save(fig, out, name) for name, fig in figs.items()]


def augmentation_figure(data: Data, args):
    """Ten training digits and what ``fnn.augment.augmented`` makes of them in three epochs."""
    sample = data.x_train[:10]
    aug = fnn.augment.augmented(fnn.batches(sample, batch_size=len(sample), shuffle=False),
                                fnn.fold_in(fnn.key(args.seed), 2), shift=args.shift,
                                degrees=args.degrees)
    rows_ = {"original": sample, **{f"epoch {e}": next(iter(aug.epoch(e)))[0] for e in range(3)}}
    return fnn.plot.image_rows(
        rows_, title=f"fnn.augment.augmented: ten training digits in three epochs "
                     f"(shift <= {args.shift} px, rotation <= {args.degrees:g} degrees)")


# ----------------------------------------------------------------------------- main

def arguments(argv=None):
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="seeds --seed, --seed + 1, ...")
    p.add_argument("--epochs", type=int, default=30, help="at most; the cosine ends here")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--monitor", choices=("loss", "accuracy"), default="loss",
                   help="validation metric watched by early stopping")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW's peak learning rate")
    p.add_argument("--warmup-epochs", type=float, default=2)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--shift", type=int, default=1, help="augmentation: at most this many pixels")
    p.add_argument("--degrees", type=float, default=10.0, help="augmentation: rotation range")
    p.add_argument("--threads", type=int, default=2, help="batch shards trained at once")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the validation hold-out")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.warmup_epochs = QUICK_EPOCHS, 2, 1
    return args


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    args = arguments(argv)
    experiment = NAME if args.augment else f"{NAME}_noaug"
    out = common.out_dir(experiment, args)
    data = load(args)
    print(f"{NAME}: {len(data.x_train)} train / {len(data.x_val)} validation / "
          f"{len(data.x_test)} test images; {describe(args)}; {describe_optimizer(args)}, batch "
          f"{args.batch_size}, <= {args.epochs} epochs, early stopping on validation "
          f"{args.monitor} (patience {args.patience}); augmentation "
          f"{'on' if args.augment else 'off'}", flush=True)
    runs = []
    for seed in range(args.seed, args.seed + args.repeats):
        run = scored(data, args, seed)
        runs.append(run)
        h = run.history
        print(f"seed {seed}: train {run.accuracy['train']:.2%} val {run.accuracy['val']:.2%} "
              f"test {run.accuracy['test']:.2%}  best epoch {(h.best_epoch or 0) + 1}/"
              f"{h.epochs} ({h.stop_reason}, {np.mean(h.seconds):.1f} s/epoch)", flush=True)
    summary = summarise(runs)
    print(f"{experiment}: test {fmt(summary['test_accuracy'])}% over {len(runs)} seeds "
          f"(target {100 * TARGET:.1f}%, reached by {sum(summary['meets_target'])})", flush=True)
    best = median_run(runs)
    fnn.save(out / "params.npz", {"params": best.params, "state": best.model_state})
    paths = figures(out, runs, data, args)
    settings = {k: v for k, v in common.settings_of(args).items() if k != "quick"}
    metrics = {
        "net": describe(args), "params": fnn.tree_size(best.params),
        "optimizer": describe_optimizer(args), "settings": settings,
        "protocol": ("USPS standard 7291/2007 split; stratified "
                     f"{args.val_fraction:.0%} of the training rows held out (data seed "
                     f"{args.data_seed}); early stopping on validation {args.monitor} "
                     f"(patience {args.patience}), best epoch's params and batch-norm "
                     "statistics restored; test set scored once per run, after training; "
                     "hyper-parameters chosen on the validation set only"),
        "n_train": len(data.x_train), "n_val": len(data.x_val), "n_test": len(data.x_test),
        "target": TARGET, "median_seed": best.seed, "results": summary,
    }
    common.write_results(NAME, out, args, metrics, report=REPORT, rows=rows(summary, args),
                         started=t0, experiment=experiment)
    return {"out": str(out), "figures": [str(f) for f in paths], **metrics}


if __name__ == "__main__":
    main()
