"""One epoch of SGD on the report's MLP ``Linear(256,100) -> TanH -> Linear(100,10)``,
7291 x 256 float32 inputs (USPS-sized, random data: speed does not depend on values),
batch 32, cross-entropy, fnn vs PyTorch CPU in the same run. Target: ratio <= 1.0.

    python benchmarks/bench_mlp.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from harness import compare, load_torch

import fnn

N, D, H, C, BATCH, LR = 7291, 256, 100, 10, 32, 0.05


def fnn_epoch_fn(x, y):
    model = fnn.serial(fnn.linear(H), fnn.tanh(), fnn.linear(C))
    _, params = model.init(fnn.key(0), (-1, D))
    opt = fnn.sgd(LR)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    data = fnn.batches(x, y, batch_size=BATCH, rng=0)
    box = {"state": fnn.TrainState.create(params, opt), "epoch": 0}

    def epoch():
        state = box["state"]
        for batch in data.epoch(box["epoch"]):
            state, _ = step(state, batch)
        box["state"], box["epoch"] = state, box["epoch"] + 1

    return epoch


def torch_epoch_fn(torch, x, y):
    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, C))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(N, generator=gen)
        xs, ys = xt[perm], yt[perm]
        for i in range(0, N, BATCH):
            opt.zero_grad()
            loss = loss_fn(model(xs[i:i + BATCH]), ys[i:i + BATCH])
            loss.backward()
            opt.step()

    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    torch = load_torch()
    return compare(
        "mlp_epoch", f"1 epoch SGD, MLP 256-100-10 tanh, {N}x{D} float32, batch {BATCH}",
        fnn_epoch_fn(x, y), torch_epoch_fn(torch, x, y) if torch else None,
        repeats=args.repeats, target=1.0,
    )


if __name__ == "__main__":
    main()
