"""100 SGD steps of a convolutional autoencoder on 28 x 28 x 1 float32 images, batch 64:
``conv2d(16,3,same) -> relu -> max_pool2d(2) -> conv2d(8,3,same) -> relu -> max_pool2d(2)``
down to 7 x 7 x 8, then ``conv_transpose2d(16,3,stride 2) -> relu -> conv_transpose2d(1,3,
stride 2) -> sigmoid`` back up to 28 x 28 x 1, binary cross-entropy; fnn vs PyTorch CPU in the
same run. Target: ratio <= 1.5.
On several cores fnn runs each batch as one shard per core (``fnn.value_and_grad(...,
threads=n)``) while torch runs each op on every core.

    python benchmarks/bench_conv_ae.py [--repeats 5]
"""

from __future__ import annotations

import numpy as np
from harness import compare, fnn_trainer, load_torch, repeats_arg, threads, torch_trainer

import fnn

STEPS, BATCH, LR = 100, 64, 0.05
UP = dict(stride=2, padding=1, output_padding=1)


def build(torch=None):
    if torch is None:
        return fnn.serial(
            fnn.conv2d(16, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
            fnn.conv2d(8, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
            fnn.conv_transpose2d(16, 3, bias=True, **UP), fnn.relu(),
            fnn.conv_transpose2d(1, 3, bias=True, **UP), fnn.sigmoid())
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.ConvTranspose2d(8, 16, 3, **UP), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, **UP), nn.Sigmoid())


def main(argv=None):
    repeats = repeats_arg(__doc__, argv)
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 28, 28, 1), dtype=np.float32)
    torch = load_torch()
    xt = x.transpose(0, 3, 1, 2)
    return compare(
        "conv_autoencoder_100_steps",
        f"{STEPS} SGD steps, conv autoencoder 28x28x1 -> 7x7x8 -> 28x28x1 (conv, pool, "
        f"conv_transpose), batch {BATCH}",
        fnn_trainer(build(), fnn.bce, x, x, batch_size=BATCH, lr=LR, steps=STEPS,
                    shards=threads()),
        torch_trainer(torch, build(torch), torch.nn.BCELoss(), xt, xt, batch_size=BATCH, lr=LR,
                      steps=STEPS) if torch else None,
        repeats=repeats, target=1.5,
    )


if __name__ == "__main__":
    main()
