"""100 SGD steps of a convolutional autoencoder on 28 x 28 x 1 float32 images, batch 64:
``conv2d(16,3,same) -> relu -> max_pool2d(2) -> conv2d(8,3,same) -> relu -> max_pool2d(2)``
down to 7 x 7 x 8, then ``conv_transpose2d(16,3,stride 2) -> relu -> conv_transpose2d(1,3,
stride 2) -> sigmoid`` back up to 28 x 28 x 1, binary cross-entropy; fnn (both kernel
backends), PyTorch CPU and JAX CPU (one jitted SGD step) in the same run.
Targets: compiled fnn / torch and / JAX <= 1.0; numpy fnn / torch <= 1.15 (1 thread).
On several cores fnn runs each batch as one shard per core (``fnn.value_and_grad(...,
threads=n)``) while torch and XLA run each op on every core; each shard runs as chunks of
at most ``CHUNK`` samples (``chunk=``), so its activations stay in cache.

    python benchmarks/bench_conv_ae.py [--repeats 9]
"""

from __future__ import annotations

import numpy as np
from harness import (
    backends,
    compare,
    conv_flops,
    fnn_trainer,
    jax_conv_relu_pool,
    jax_losses,
    jax_trainer,
    load_jax,
    load_torch,
    pin_to_cores,
    repeats_arg,
    threads,
    torch_trainer,
    training_flops,
)

import fnn

STEPS, BATCH, LR = 100, 64, 0.05
CHUNK = 32  # samples per chunk of each shard (fnn.value_and_grad's chunk)
UP = dict(stride=2, padding=1, output_padding=1)
FORWARD_FLOPS = (conv_flops(28 * 28, 9, 1, 16) + conv_flops(14 * 14, 9, 16, 8)
                 + conv_flops(7 * 7, 9, 8, 16) + conv_flops(14 * 14, 9, 16, 1))


def targets() -> dict:
    numpy_target = 1.15 if threads() == 1 else 1.5
    return {"fnn-compiled/torch": 1.0, "fnn-compiled/jax": 1.0, "fnn-numpy/torch": numpy_target}


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


def jax_predict(jax):
    """fnn's transposed-conv kernel ``(kh, kw, C_out, C_in)`` is the HWIO kernel of the
    convolution it adjoins: ``lax.conv_transpose(..., transpose_kernel=True)`` takes it as is;
    padding ``(k - 1 - p, k - 1 - p + output_padding)`` on the dilated input is PyTorch's
    ``padding=p, output_padding``."""
    lax = jax.lax
    dims = ("NHWC", "HWIO", "NHWC")

    def conv_relu_pool(h, p):
        return jax_conv_relu_pool(jax, h, p)

    def up(h, p):
        return lax.conv_transpose(h, p["w"], (2, 2), ((1, 2), (1, 2)), dimension_numbers=dims,
                                  transpose_kernel=True) + p["b"]

    def predict(p, x):
        h = conv_relu_pool(conv_relu_pool(x, p["00_conv2d"]), p["03_conv2d"])
        return jax.nn.sigmoid(up(jax.nn.relu(up(h, p["06_conv_transpose2d"])),
                                 p["08_conv_transpose2d"]))

    return predict


def main(argv=None):
    repeats = repeats_arg(__doc__, argv, default=9)  # its 2-thread timings spread widest
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 28, 28, 1), dtype=np.float32)
    torch, jax = load_torch(), load_jax()
    xt = x.transpose(0, 3, 1, 2)
    runs = {f"fnn-{b}": fnn_trainer(build(), fnn.bce, x, x, batch_size=BATCH, lr=LR, steps=STEPS,
                                    shards=threads(), chunk=CHUNK, backend=b) for b in backends()}
    runs["torch"] = torch_trainer(torch, build(torch), torch.nn.BCELoss(), xt, xt,
                                  batch_size=BATCH, lr=LR, steps=STEPS) if torch else None
    runs["jax"] = jax_trainer(jax, jax_predict(jax), jax_losses(jax)["bce"],
                              build().init(fnn.key(0), (-1, 28, 28, 1))[1], x, x,
                              batch_size=BATCH, lr=LR, steps=STEPS) if jax else None
    return compare(
        "conv_autoencoder_100_steps",
        f"{STEPS} SGD steps, conv autoencoder 28x28x1 -> 7x7x8 -> 28x28x1 (conv, pool, "
        f"conv_transpose), batch {BATCH}",
        runs, flops=training_flops(FORWARD_FLOPS, STEPS * BATCH), repeats=repeats,
        targets=targets())


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
