"""One epoch of SGD on the report's MLP ``Linear(256,100) -> TanH -> Linear(100,10)``,
7291 x 256 float32 inputs (USPS-sized, random data: speed does not depend on values),
batch 32, cross-entropy, fnn vs PyTorch CPU in the same run. Target: ratio <= 1.0.

    python benchmarks/bench_mlp.py [--repeats 7]
"""

from __future__ import annotations

import numpy as np
from harness import compare, fnn_trainer, load_torch, repeats_arg, torch_trainer

import fnn

N, D, H, C, BATCH, LR = 7291, 256, 100, 10, 32, 0.05


def build(torch=None):
    if torch is None:
        return fnn.serial(fnn.linear(H), fnn.tanh(), fnn.linear(C))
    return torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, C))


def main(argv=None):
    repeats = repeats_arg(__doc__, argv, default=7)
    rng = np.random.default_rng(0)
    x = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    torch = load_torch()
    return compare(
        "mlp_epoch", f"1 epoch SGD, MLP 256-100-10 tanh, {N}x{D} float32, batch {BATCH}",
        fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=BATCH, lr=LR),
        torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(), x, y, batch_size=BATCH,
                      lr=LR) if torch else None,
        repeats=repeats, target=1.0,
    )


if __name__ == "__main__":
    main()
