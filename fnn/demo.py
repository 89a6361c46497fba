"""The main demo: an MLP on scikit-learn's 8x8 digits (offline), end to end.

``python -m fnn.demo [--epochs 40] [--out fnn-demo-output] [--quick]`` trains with a progress
bar, prints the test accuracy, saves the params (``.npz``), the loss/accuracy curves and the
confusion matrix (PNG), and says where it wrote them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import fnn


def build_model(hidden: int = 128) -> fnn.Layer:
    return fnn.serial(fnn.linear(hidden), fnn.tanh(), fnn.linear(10))


def run(epochs: int = 40, batch_size: int = 32, lr: float = 3e-3, hidden: int = 128,
        seed: int = 0, out: str | Path = "fnn-demo-output", progress: bool = True) -> dict:
    data = fnn.datasets.digits(seed=seed)
    model = build_model(hidden)
    _, params = model.init(fnn.key(seed), (-1, data.x_train.shape[1]))
    opt = fnn.adam(lr)
    state = fnn.TrainState.create(params, opt)
    out = Path(out)
    logger = fnn.LossLogger(out / "curves.png", metrics=("loss", "accuracy"),
                            title="MLP on 8x8 digits")
    state, history = fnn.train(
        fnn.supervised_step(model, fnn.cross_entropy, opt),
        fnn.batches(data.x_train, data.y_train, batch_size=batch_size, rng=seed),
        state,
        epochs=epochs,
        eval_fn=fnn.evaluator(model, data.x_test, data.y_test, loss=fnn.cross_entropy,
                              accuracy=True),
        callbacks=[logger],
        progress=progress,
    )
    logger.flush()  # the last epochs' picture now, not when the logger's timer fires
    pred = fnn.predict(model, state.params, data.x_test).argmax(axis=1)
    acc = float(np.mean(pred == data.y_test))
    fnn.save(out / "params.npz", state.params)
    fnn.plot.confusion_matrix(data.y_test, pred, class_names=data.class_names).savefig(
        out / "confusion_matrix.png", dpi=100
    )
    return {"test_accuracy": acc, "epochs": history.epochs, "out": out,
            "files": [out / "params.npz", out / "curves.png", out / "confusion_matrix.png"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fnn-demo-output")
    parser.add_argument("--quick", action="store_true", help="3 epochs (smoke test)")
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    print(f"fnn {fnn.__version__}: MLP 64-{args.hidden}-10 (tanh) on scikit-learn's digits, "
          f"{epochs} epochs of Adam", file=sys.stderr)
    result = run(epochs, args.batch_size, args.lr, args.hidden, args.seed, args.out)
    print(f"test accuracy: {result['test_accuracy']:.2%} after {result['epochs']} epochs")
    for f in result["files"]:
        print(f"wrote {f.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
