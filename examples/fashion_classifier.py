"""Beyond the report: Fashion-MNIST classifiers, an MLP (target >= 90% test accuracy) and a small
2-D CNN (target >= 91.5%).

    MLP  28x28x1 -> flatten -> linear(1024) -> relu -> dropout(0.3) -> linear(512) -> relu
                 -> dropout(0.3) -> linear(10)
    CNN  28x28x1 -> conv2d(32, 3, same) -> relu -> max_pool2d(2)            14x14x32
                 -> conv2d(64, 3, same) -> relu -> max_pool2d(2)             7x7x64
                 -> flatten -> linear(128) -> relu -> dropout(0.5) -> linear(10)

Softmax cross-entropy, Adam with a cosine-decayed learning rate, He-normal initialisation.
5000 images of the training set are held out (a seeded random split) for model selection:
``fnn.EarlyStopping`` on the validation accuracy restores the best epoch's params, and only
those are scored on the test set, once, at the end. On the validation set (one seed each),
784-512-256-10 reached 90.3-90.6%, 1024-1024 with dropout 0.5 90.0%, input dropout, label
smoothing and shift/flip augmentation did not help the MLP; 1024-512 with 40 epochs: 90.9%.
(The first full run, with 784-512-256-10 for 30 epochs, scored 89.88% on the test set, below
the target; the wider MLP was then chosen on the validation set alone.)

    python examples/fashion_classifier.py [--epochs 15] [--mlp-epochs 40] [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
import common  # noqa: E402

NAME = "fashion_classifier"
NEEDS_REAL_DATA = True
TARGETS = {"mlp": 0.90, "cnn": 0.915}
LABELS = {"mlp": "MLP 784-1024-512-10", "cnn": "CNN conv32-pool-conv64-pool-128-10"}
VAL, QUICK_TRAIN, QUICK_TEST, QUICK_VAL, QUICK_EPOCHS = 5000, 1000, 300, 200, 2


def build(kind: str) -> fnn.Layer:
    """``"mlp"`` or ``"cnn"``: ``(N, 28, 28, 1)`` images -> ``(N, 10)`` logits."""
    if kind == "mlp":
        return fnn.serial(
            fnn.flatten(),
            fnn.linear(1024, w_init="he_normal"), fnn.relu(), fnn.dropout(0.3),
            fnn.linear(512, w_init="he_normal"), fnn.relu(), fnn.dropout(0.3),
            fnn.linear(10))

    def conv(c: int) -> fnn.Layer:
        return fnn.conv2d(c, 3, padding="same", bias=True, w_init="he_normal")

    return fnn.serial(
        conv(32), fnn.relu(), fnn.max_pool2d(2), conv(64), fnn.relu(), fnn.max_pool2d(2),
        fnn.flatten(), fnn.linear(128, w_init="he_normal"), fnn.relu(), fnn.dropout(0.5),
        fnn.linear(10))


def split(x: np.ndarray, y: np.ndarray, n_val: int, seed: int):
    """A seeded random ``(x_train, y_train, x_val, y_val)`` split, ``n_val`` held out."""
    perm = np.random.default_rng(fnn.fold_in(fnn.key(seed), 7)).permutation(len(x))
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


def train(kind: str, data: tuple, *, epochs: int, lr: float, batch_size: int, patience: int,
          seed: int, progress: bool) -> tuple[fnn.Layer, object, fnn.History]:
    """Adam (cosine decay over ``epochs``) on cross-entropy with early stopping on the
    validation accuracy (best epoch restored). ``data = (x_train, y_train, x_val, y_val)``."""
    x, y, x_val, y_val = data
    model = build(kind)
    steps = epochs * -(-len(x) // batch_size)

    def report(epoch: int, state, history: fnn.History) -> None:
        if not progress:
            print(f"  {kind} epoch {epoch + 1}/{epochs}: train loss {history.train['loss'][-1]:.4f}"
                  f"  val loss {history.eval['loss'][-1]:.4f}  val accuracy "
                  f"{history.eval['accuracy'][-1]:.2%}  ({history.seconds[-1]:.1f} s)", flush=True)

    params, history = fnn.fit(
        model, fnn.cross_entropy, fnn.adam(fnn.cosine_decay(lr, steps)), x, y, epochs=epochs,
        batch_size=batch_size, validation=(x_val, y_val), accuracy=True,
        early_stopping=fnn.EarlyStopping("accuracy", patience=patience, mode="max"),
        seed=seed, dropout_key=True, callbacks=[report], progress=progress)
    return model, params, history


def percent(p: float) -> str:
    """``0.734 -> "73%"``, ``0.996 -> "99.6%"``, ``0.9999 -> ">99.9%"`` (never "100%")."""
    return f"{p:.0%}" if p < 0.995 else f"{p:.1%}" if p < 0.9995 else ">99.9%"


@common.one_blas_thread
def main(argv=None) -> dict:
    t0 = time.time()
    p = common.parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="CNN epochs (at most)")
    p.add_argument("--mlp-epochs", type=int, default=40, help="MLP epochs (at most)")
    p.add_argument("--batch-size", type=int, default=64, help="CNN batch size")
    p.add_argument("--mlp-batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's initial learning rate")
    p.add_argument("--patience", type=int, default=6,
                   help="early stopping: epochs without a better validation accuracy")
    args = p.parse_args(argv)
    out = common.out_dir(NAME, args)
    d = fnn.datasets.fashion_mnist(layout="image")
    x_train, y_train, x_test, y_test = d.x_train, d.y_train, d.x_test, d.y_test
    n_val = VAL
    if args.quick:
        x_train, y_train = x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        x_test, y_test, n_val = x_test[:QUICK_TEST], y_test[:QUICK_TEST], QUICK_VAL
        args.epochs = args.mlp_epochs = QUICK_EPOCHS
    data = split(x_train, y_train, n_val, args.seed)
    print(f"{NAME}: {len(data[0])} train / {len(data[2])} validation / {len(x_test)} test images",
          flush=True)

    settings = {"mlp": (args.mlp_epochs, args.mlp_batch_size), "cnn": (args.epochs, args.batch_size)}
    metrics, rows, runs = {}, [], {}
    for kind, (epochs, batch_size) in settings.items():
        print(f"training {LABELS[kind]}: at most {epochs} epochs, batch {batch_size}", flush=True)
        model, params, history = train(kind, data, epochs=epochs, lr=args.lr,
                                       batch_size=batch_size, patience=args.patience,
                                       seed=args.seed, progress=args.progress)
        fnn.save(out / f"{kind}.npz", params)
        logits = fnn.predict(model, params, x_test)  # the test set, once, restored params
        acc = fnn.accuracy(logits, y_test)
        best = history.best_epoch
        spe = float(np.mean(history.seconds))
        runs[kind] = (history, logits)
        metrics[kind] = {
            "architecture": LABELS[kind], "params": fnn.tree_size(params),
            "test_accuracy": acc, "target": TARGETS[kind], "meets_target": acc >= TARGETS[kind],
            "val_accuracy_best": history.eval["accuracy"][best], "best_epoch": best + 1,
            "epochs_run": history.epochs, "stop_reason": history.stop_reason,
            "batch_size": batch_size, "seconds_per_epoch": spe,
            "val_accuracy_curve": history.eval["accuracy"], "val_loss_curve": history.eval["loss"],
            "train_loss_curve": history.train["loss"]}
        print(f"{LABELS[kind]}: best epoch {best + 1}/{history.epochs} (val accuracy "
              f"{history.eval['accuracy'][best]:.2%}), test accuracy {acc:.2%} (target "
              f"{TARGETS[kind]:.1%}), {fnn.tree_size(params):,} params, {spe:.1f} s/epoch",
              flush=True)
        rows += [
            {"what": f"{LABELS[kind]}: test accuracy % (best validation epoch restored)",
             "measured": f"{100 * acc:.2f}", "report": f"≥ {100 * TARGETS[kind]:g} (target)"},
            {"what": f"{LABELS[kind]}: params / epochs run (best) / batch / seconds per epoch",
             "measured": f"{fnn.tree_size(params):,} / {history.epochs} ({best + 1}) / "
                         f"{batch_size} / {spe:.1f}", "report": ""},
        ]

    # ----------------------------------------------------------------------------- figures
    for kind, (history, logits) in runs.items():
        common.save(fnn.plot.curves(history, title=f"{LABELS[kind]} (eval = validation split; "
                                                   f"dotted: best epoch, restored)"),
                    out, f"curves_{kind}.png")
        acc = metrics[kind]["test_accuracy"]
        common.save(fnn.plot.confusion_matrix(
            y_test, logits.argmax(axis=1), class_names=d.class_names,
            title=f"{LABELS[kind]}: test accuracy {acc:.2%}"), out, f"confusion_{kind}.png")
    common.save(fnn.plot.curves_overlay({LABELS[k]: h for k, (h, _) in runs.items()}, "accuracy",
                                        section="eval", title="validation accuracy per epoch"),
                out, "val_accuracy.png")
    logits = runs["cnn"][1]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    pred = logits.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_test)[:30]
    if len(wrong):
        names = d.class_names
        common.save(fnn.plot.image_grid(
            x_test[wrong], ncols=10,
            labels=[f"{names[pred[i]]} {percent(probs[i, pred[i]])}\n(true {names[y_test[i]]})"
                    for i in wrong],
            title=f"CNN: the first {len(wrong)} of {int(np.sum(pred != y_test))} misclassified test "
                  f"images (predicted, its probability; true class)"), out, "misclassified_cnn.png")

    metrics["settings"] = {"n_train": len(data[0]), "n_val": len(data[2]), "n_test": len(x_test),
                           "lr": args.lr, "schedule": "cosine decay to 0 over the max epochs",
                           "optimizer": "adam", "early_stopping": f"val accuracy, patience "
                                                                  f"{args.patience}, restore best"}
    common.write_results(NAME, out, args, metrics, rows=rows, started=t0)
    return {**metrics, "out": str(out)}


if __name__ == "__main__":
    main()
