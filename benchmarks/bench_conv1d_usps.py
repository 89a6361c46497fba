"""One epoch of SGD on the report's USPS network ``conv1d(32, 3) -> max_pool1d(2, 2) -> flatten
-> linear(100) -> relu -> linear(10)``, 7291 x 256 x 1 float32 signals (random data: speed does not
depend on values), batch 32, cross-entropy; fnn (both kernel backends), PyTorch CPU (same data
in its channels-first layout) and JAX CPU (one jitted SGD step) in the same run.
Targets: fnn / torch and fnn / JAX <= 1.0.

    python benchmarks/bench_conv1d_usps.py [--repeats 5]
"""

from __future__ import annotations

import numpy as np
from harness import (
    backends,
    compare,
    conv_flops,
    dense_flops,
    fnn_trainer,
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

N, L, C, BATCH, LR = 7291, 256, 10, 32, 0.05
TARGETS = {"fnn-compiled/torch": 1.0, "fnn-compiled/jax": 1.0, "fnn-numpy/torch": 1.0}


def build(torch=None):
    if torch is None:
        return fnn.serial(fnn.conv1d(32, 3), fnn.max_pool1d(2, 2), fnn.flatten(), fnn.linear(100),
                          fnn.relu(), fnn.linear(C))
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(1, 32, 3, bias=False), nn.MaxPool1d(2, 2), nn.Flatten(),
                         nn.Linear(32 * 127, 100), nn.ReLU(), nn.Linear(100, C))


def jax_predict(jax):
    jnp, lax = jax.numpy, jax.lax

    def predict(p, x):
        h = lax.conv_general_dilated(x, p["00_conv1d"]["w"], (1,), "VALID",
                                     dimension_numbers=("NWC", "WIO", "NWC"))
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 1), (1, 2, 1), "VALID")
        h = jax.nn.relu(h.reshape(len(h), -1) @ p["03_linear"]["w"] + p["03_linear"]["b"])
        return h @ p["05_linear"]["w"] + p["05_linear"]["b"]

    return predict


def main(argv=None):
    repeats = repeats_arg(__doc__, argv)
    rng = np.random.default_rng(0)
    x = rng.random((N, L, 1), dtype=np.float32)
    y = rng.integers(0, C, N)
    torch, jax = load_torch(), load_jax()
    runs = {f"fnn-{b}": fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=BATCH, lr=LR,
                                    backend=b) for b in backends()}
    runs["torch"] = torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(),
                                  x.transpose(0, 2, 1), y, batch_size=BATCH,
                                  lr=LR) if torch else None
    runs["jax"] = jax_trainer(jax, jax_predict(jax), jax_losses(jax)["cross_entropy"],
                              build().init(fnn.key(0), (-1, L, 1))[1], x, y, batch_size=BATCH,
                              lr=LR) if jax else None
    flops = conv_flops(L - 2, 3, 1, 32) + dense_flops(32 * 127, 100, C)
    return compare(
        "conv1d_usps_epoch",
        f"1 epoch SGD, conv1d(32,3)-maxpool(2)-100-10 on {N}x{L}x1 float32, batch {BATCH}",
        runs, flops=training_flops(flops, N), repeats=repeats, targets=TARGETS)


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
