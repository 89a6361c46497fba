"""100 SGD steps of a LeNet-style CNN ``conv2d(32,3,same) -> relu -> max_pool2d(2) ->
conv2d(64,3,same) -> relu -> max_pool2d(2) -> flatten -> linear(128) -> relu -> linear(10)`` on
28 x 28 x 1 float32 images, batch 64, cross-entropy; fnn vs PyTorch CPU in the same run
(channels-last in fnn, channels-first in torch). Target: ratio <= 1.5.
On several cores fnn runs each batch as one shard per core (``fnn.value_and_grad(...,
threads=n)``) while torch runs each op on every core.

    python benchmarks/bench_lenet.py [--repeats 5]
"""

from __future__ import annotations

import numpy as np
from harness import compare, fnn_trainer, load_torch, repeats_arg, threads, torch_trainer

import fnn

STEPS, BATCH, LR, C = 100, 64, 0.05, 10


def build(torch=None):
    if torch is None:
        return fnn.serial(
            fnn.conv2d(32, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
            fnn.conv2d(64, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
            fnn.flatten(), fnn.linear(128), fnn.relu(), fnn.linear(C))
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, C))


def main(argv=None):
    repeats = repeats_arg(__doc__, argv)
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, C, len(x))
    torch = load_torch()
    return compare(
        "lenet_100_steps",
        f"{STEPS} SGD steps, LeNet-style conv2d(32)-pool-conv2d(64)-pool-128-10 on 28x28x1, "
        f"batch {BATCH}",
        fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=BATCH, lr=LR, steps=STEPS,
                    shards=threads()),
        torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(), x.transpose(0, 3, 1, 2),
                      y, batch_size=BATCH, lr=LR, steps=STEPS) if torch else None,
        repeats=repeats, target=1.5,
    )


if __name__ == "__main__":
    main()
