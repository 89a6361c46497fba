"""One epoch of SGD on the report's MLP ``Linear(256,100) -> TanH -> Linear(100,10)``,
7291 x 256 float32 inputs (USPS-sized, random data: speed does not depend on values),
batch 32, cross-entropy; fnn (both kernel backends), PyTorch CPU and JAX CPU (one jitted SGD
step) in the same run. Targets: fnn / torch and fnn / JAX <= 1.0.

    python benchmarks/bench_mlp.py [--repeats 7]
"""

from __future__ import annotations

import numpy as np
from harness import (
    backends,
    compare,
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

N, D, H, C, BATCH, LR = 7291, 256, 100, 10, 32, 0.05
TARGETS = {"fnn-compiled/torch": 1.0, "fnn-compiled/jax": 1.0, "fnn-numpy/torch": 1.0}


def build(torch=None):
    if torch is None:
        return fnn.serial(fnn.linear(H), fnn.tanh(), fnn.linear(C))
    return torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, C))


def jax_predict(jax):
    jnp = jax.numpy

    def predict(p, x):
        h = jnp.tanh(x @ p["00_linear"]["w"] + p["00_linear"]["b"])
        return h @ p["02_linear"]["w"] + p["02_linear"]["b"]

    return predict


def main(argv=None):
    repeats = repeats_arg(__doc__, argv, default=7)
    rng = np.random.default_rng(0)
    x = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    torch, jax = load_torch(), load_jax()
    runs = {f"fnn-{b}": fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=BATCH, lr=LR,
                                    backend=b) for b in backends()}
    runs["torch"] = torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(), x, y,
                                  batch_size=BATCH, lr=LR) if torch else None
    runs["jax"] = jax_trainer(jax, jax_predict(jax), jax_losses(jax)["cross_entropy"],
                              build().init(fnn.key(0), (-1, D))[1], x, y, batch_size=BATCH,
                              lr=LR) if jax else None
    return compare("mlp_epoch", f"1 epoch SGD, MLP 256-100-10 tanh, {N}x{D} float32, batch {BATCH}",
                   runs, flops=training_flops(dense_flops(D, H, C), N), repeats=repeats,
                   targets=TARGETS)


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
