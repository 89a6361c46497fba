"""One epoch of SGD on the report's USPS network ``conv1d(32, 3) -> max_pool1d(2, 2) -> flatten
-> linear(100) -> relu -> linear(10)``, 7291 x 256 x 1 float32 signals (random data: speed does not
depend on values), batch 32, cross-entropy; fnn vs PyTorch CPU in the same run (torch gets the
same data in its channels-first layout). Target: ratio <= 1.0.

    python benchmarks/bench_conv1d_usps.py [--repeats 5]
"""

from __future__ import annotations

import numpy as np
from harness import compare, fnn_trainer, load_torch, repeats_arg, torch_trainer

import fnn

N, L, C, BATCH, LR = 7291, 256, 10, 32, 0.05


def build(torch=None):
    if torch is None:
        return fnn.serial(fnn.conv1d(32, 3), fnn.max_pool1d(2, 2), fnn.flatten(), fnn.linear(100),
                          fnn.relu(), fnn.linear(C))
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(1, 32, 3, bias=False), nn.MaxPool1d(2, 2), nn.Flatten(),
                         nn.Linear(32 * 127, 100), nn.ReLU(), nn.Linear(100, C))


def main(argv=None):
    repeats = repeats_arg(__doc__, argv)
    rng = np.random.default_rng(0)
    x = rng.random((N, L, 1), dtype=np.float32)
    y = rng.integers(0, C, N)
    torch = load_torch()
    return compare(
        "conv1d_usps_epoch",
        f"1 epoch SGD, conv1d(32,3)-maxpool(2)-100-10 on {N}x{L}x1 float32, batch {BATCH}",
        fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=BATCH, lr=LR),
        torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(), x.transpose(0, 2, 1), y,
                      batch_size=BATCH, lr=LR) if torch else None,
        repeats=repeats, target=1.0,
    )


if __name__ == "__main__":
    main()
