"""Report section 3.2: the 1-D convolutional net on USPS, repeated with honest early stopping.

    python examples/usps_conv1d.py [--quick] [--repeats 10] [--splits resplit,standard]
                                   [--lr 0.1] [--epochs 50] [--patience 5] [--batch-size 32]
                                   [--optimizer {sgd,adamw} [--weight-decay 0.1]
                                    [--warmup-epochs 2] [--decay-epochs 20]]

Net (the report's best): ``conv1d(32, 3) -> max_pool1d(2, 2) -> flatten -> linear(100) -> relu
-> linear(10)`` on the 256 pixels as a 1-D signal. Protocol (``conv1d_common``): plain SGD on
cross-entropy, batch 32, at most 50 epochs; a fixed stratified 10% of the training rows is held
out and early stopping watches its loss (patience 5) and restores the best epoch's params; train,
validation and test accuracy are those of the restored params. ``--repeats`` runs differ in the
init and batch-order seed only (the data split is fixed by ``--data-seed``).

Two test sets (``--splits``): ``resplit``, a random 7291/2007 re-split of the pooled 9298 images
(the level the report quotes), and ``standard``, USPS's own harder test set.

Learning rate 0.1 (``--lr``), chosen on the validation set of the re-split (3 seeds each,
this protocol): lr 0.05 restores epoch ~17 (22 run) at validation loss 0.115 / accuracy 96.6%,
0.1 epoch ~10 (15 run) at 0.113 / 96.9%, 0.2 epoch ~5 (10 run) at 0.114 / 96.8%; 0.01 and 0.03
are slower and worse (96.0% and 96.4% test, 25-44 epochs). Their test accuracies were 96.7%,
96.6% and 96.2%: with an honest hold-out none reaches the report's 97.08% on average, though
single runs touch 97% and the split-to-split spread (other re-split seeds: 95.8-97.1%) is as
large as the gap. The validation loss bottoms out several epochs before the test accuracy stops
creeping up, so stopping on it (Keras' default) trains ~15 epochs where the report counts 31.

``--optimizer adamw`` (results in ``results/usps_conv1d_adamw``, its own RESULTS.md section
beside the SGD one; same protocol, data split and seeds): ``fnn.adamw`` with decoupled weight
decay on the kernels (not the biases), its learning rate rising linearly from 0 over 2 epochs
then following a cosine to 0 at epoch 20 (about where SGD's early-stopped runs end, so the
schedule anneals before the patience runs out; ``conv1d_common.make_optimizer``). lr and weight
decay were chosen on the VALIDATION accuracy of the re-split (seeds 0-2, this protocol, test
set not looked at for the choice): lr 1e-3 with weight decay 0.01 / 0.1: 95.94 / 96.16%;
lr 3e-3 with 0.001 / 0.01 / 0.1: 96.48 / 96.76 / 96.58%; lr 1e-2 with 0.01: 96.48% (two of three
runs stopped by epoch 5). Hence lr 3e-3, weight decay 0.01 (``conv1d_common.ADAMW``).

Figures (``<split>`` = resplit / standard): ``loss_<split>.png`` (train and validation loss of
every repeat, the restored epoch marked), ``val_accuracy_<split>.png``, ``repeats_<split>.png``
(train / validation / test accuracy per repeat beside the report's), and for the repeat with the
median test accuracy: ``confusion_<split>.png`` (test set), ``filters_<split>.png`` (the 32
learned kernels), ``feature_maps_<split>.png`` (the conv layer's output for one test digit),
``misclassified_<split>.png``; its params are saved as ``params_<split>.npz``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402
import conv1d_common as cc  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import fnn  # noqa: E402

NAME = "usps_conv1d"
NEEDS_REAL_DATA = True
REPORT = {"train_accuracy": "99.36", "test_accuracy": "97.08", "epochs": "31 ± 6"}
QUICK_PANELS = 8  # filters, feature maps, misclassified digits drawn in quick mode


def median_run(runs: list[cc.Run]) -> cc.Run:
    """The repeat whose test accuracy is the median (the lower one for an even count)."""
    order = np.argsort([r.test_accuracy for r in runs], kind="stable")
    return runs[order[(len(runs) - 1) // 2]]


def repeats_figure(runs: list[cc.Run], title: str) -> Figure:
    """Train / validation / test accuracy (%) per repeat, the report's numbers as lines."""
    fig = fnn.plot.sweep([str(r.seed) for r in runs],
                         {k: [100 * getattr(r, f"{k}_accuracy") for r in runs]
                          for k in ("train", "val", "test")},
                         xlabel="repeat (seed)", ylabel="accuracy (%)", title=title)
    ax = fig.axes[0]
    for line in ax.get_lines():  # repeats are not a sequence: markers only
        line.set_linestyle("none")
    for key, color in (("train_accuracy", "C0"), ("test_accuracy", "C2")):
        ax.axhline(float(REPORT[key]), color=color, ls=":", lw=1.2,
                   label=f"report {key.split('_')[0]} {REPORT[key]}")
    ax.legend(fontsize=7, ncol=2)
    return fig


def feature_maps(run: cc.Run, data: cc.Data, index: int, n: int) -> Figure:
    """The first conv layer's outputs for test digit ``index``, each put back on the 16x16 grid
    (valid output i is centred on pixel i + k // 2; the uncovered border pixels show 0);
    the first ``n`` filters."""
    w = run.params["00_conv1d"]["w"]  # (k, 1, C)
    x = data.x_test[index:index + 1]  # (1, 256, 1)
    w = w[..., :n]
    maps = fnn.conv1d(w.shape[-1], w.shape[0]).apply({"w": w}, x)[0]  # (256 - k + 1, n)
    full = np.zeros((x.shape[1], w.shape[-1]), dtype=np.float32)
    full[w.shape[0] // 2:w.shape[0] // 2 + len(maps)] = maps
    lo, hi = float(full.min()), float(full.max())
    images = np.concatenate([x.reshape(1, 16, 16),
                             ((full - lo) / max(hi - lo, 1e-12)).T.reshape(-1, 16, 16)])
    labels = ["input", *(str(j) for j in range(w.shape[-1]))]
    name = data.class_names[data.y_test[index]]
    return fnn.plot.image_grid(
        images, labels=labels, ncols=11,
        title=f"conv1d outputs (before pooling) for a test '{name}', one per filter\n"
              f"shared grey scale: {lo:.2f} black, {hi:.2f} white")


def misclassified(run: cc.Run, data: cc.Data, title: str, n: int) -> Figure:
    """The first ``n`` test digits the run gets wrong, labelled ``true -> predicted``."""
    pred = fnn.predict(run.model, run.params, data.x_test).argmax(axis=1)
    wrong = np.flatnonzero(pred != data.y_test)[:n]
    if not len(wrong):
        wrong = np.arange(min(10, len(pred)))  # none wrong (quick mode): show some right ones
    labels = [f"{data.y_test[i]} → {pred[i]}" for i in wrong]
    return fnn.plot.image_grid(data.x_test[wrong].reshape(-1, 16, 16), labels=labels, ncols=10,
                               title=title)


def split_results(out: Path, split: str, runs: list[cc.Run], data: cc.Data, quick: bool) \
        -> tuple[dict, list[Path]]:
    """Summary, figures and saved params of one split's repeats (fewer panels when ``quick``:
    drawing them is most of a smoke run's time)."""
    title = cc.SPLIT_TITLES[split]
    summary = cc.summarise(runs)
    best = median_run(runs)
    summary["median_repeat_seed"] = best.seed
    fnn.save(out / f"params_{split}.npz", best.params)
    n, panels = len(runs), QUICK_PANELS if quick else 40
    runs_by_seed = {f"seed {r.seed}": r for r in runs}
    first_digit = int(np.flatnonzero(data.y_test == 3)[0]) if (data.y_test == 3).any() else 0
    figures = {
        f"loss_{split}.png": cc.overlay(
            runs_by_seed, "loss", section="both", log_y=True,
            title=f"{title}: cross-entropy, {n} repeats\n(solid train, dashed validation; "
                  f"dot: restored epoch)"),
        f"val_accuracy_{split}.png": cc.overlay(
            runs_by_seed, "accuracy",
            title=f"{title}: validation accuracy, {n} repeats\n(dot: restored epoch)"),
        f"repeats_{split}.png": repeats_figure(
            runs, f"{title}: accuracy per repeat\n(restored params; dotted: the report)"),
        f"confusion_{split}.png": cc.confusion(
            best, data, f"{title}, median repeat (seed {best.seed})\ntest accuracy "
                        f"{best.test_accuracy:.2%}"),
        f"filters_{split}.png": fnn.plot.filters(
            best.params["00_conv1d"]["w"], max_filters=panels,
            title=f"{title}: learned conv1d kernels, seed {best.seed}"),
        f"feature_maps_{split}.png": feature_maps(best, data, first_digit, panels),
        f"misclassified_{split}.png": misclassified(
            best, data, f"{title}: misclassified test digits (true → predicted), "
                        f"seed {best.seed}", panels),
    }
    return summary, cc.save_all(out, figures)


def rows(split: str, s: dict, patience: int, args) -> list[dict]:
    """RESULTS.md rows: train / test accuracy and epochs, the report's beside the re-split's;
    the optimiser named unless it is the protocol's plain SGD."""
    where = ("random re-split of the 9298 images" if split == "resplit"
             else "standard test set (harder, other writers)")
    if args.optimizer != "sgd":
        where += f", {cc.describe_optimizer(args)}"
    report = REPORT if split == "resplit" else {}
    n = s["test_accuracy"]["n"]
    return [
        {"what": f"Conv1D net, USPS {where}: train accuracy % ({n} repeats)",
         "measured": cc.fmt(s["train_accuracy"]), "report": report.get("train_accuracy", "")},
        {"what": f"Conv1D net, USPS {where}: test accuracy %",
         "measured": cc.fmt(s["test_accuracy"]), "report": report.get("test_accuracy", "")},
        {"what": f"Conv1D net, USPS {where}: epochs run (early stopping, patience "
                 f"{patience})",
         "measured": cc.fmt(s["epochs"], scale=1, digits=1) + f" (best epoch "
                     f"{cc.fmt(s['best_epoch'], scale=1, digits=1)})",
         "report": report.get("epochs", "")},
    ]


def experiment(args) -> str:
    """``usps_conv1d`` for SGD, ``usps_conv1d_adamw`` for AdamW: its own results folder and
    RESULTS.md section, so the SGD results stay."""
    return NAME if args.optimizer == "sgd" else f"{NAME}_{args.optimizer}"


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = cc.add_arguments(common.parser(NAME, "Report 3.2: the Conv1D net on USPS, repeated."),
                         repeats=10)
    common.add_sweep_arguments(p)
    p.add_argument("--splits", default=",".join(cc.SPLITS),
                   help=f"comma-separated subset of {','.join(cc.SPLITS)}")
    args = cc.quick(p.parse_args(argv), repeats=2)  # two repeats to overlay
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits or set(splits) - set(cc.SPLITS):
        p.error(f"--splits: choose from {', '.join(cc.SPLITS)}; got {args.splits!r}")
    out = common.out_dir(experiment(args), args)
    print(f"{NAME}: {cc.describe()}, {args.repeats} repeats per split, {cc.describe_optimizer(args)}, "
          f"batch {args.batch_size}, <= {args.epochs} epochs, early stopping on validation "
          f"{args.monitor} (patience {args.patience})", flush=True)
    nets = {split: cc.net_config(batch_size=args.batch_size, split=split) for split in splits}
    all_runs, sweep_result = cc.run_all(NAME, nets, args, out)  # every repeat of every split
    results, figures, table = {}, [], []
    for split in splits:
        data = cc.load(split, args)  # for the figures
        runs = all_runs[split]
        summary, paths = split_results(out, split, runs, data, args.quick)
        results[split] = summary
        figures += paths
        table += rows(split, summary, args.patience, args)
        print(f"{cc.SPLIT_TITLES[split]}: train {cc.fmt(summary['train_accuracy'])}%, test "
              f"{cc.fmt(summary['test_accuracy'])}%, epochs "
              f"{cc.fmt(summary['epochs'], 1, 1)}, {cc.fmt(summary['seconds_per_epoch'], 1)} "
              f"s/epoch (fastest {cc.fmt(summary['fastest_epoch'], 1)})", flush=True)
    metrics = {"net": cc.describe(), "settings": cc.settings(args), "results": results}
    common.write_results(NAME, out, args, metrics, report=REPORT, rows=table, started=t0,
                         sweeps=[sweep_result], experiment=experiment(args))
    return {"out": str(out), "figures": [str(f) for f in figures], **metrics}


if __name__ == "__main__":
    main()
