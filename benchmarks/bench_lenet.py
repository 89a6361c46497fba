"""100 SGD steps of a LeNet-style CNN ``conv2d(32,3,same) -> relu -> max_pool2d(2) ->
conv2d(64,3,same) -> relu -> max_pool2d(2) -> flatten -> linear(128) -> relu -> linear(10)`` on
28 x 28 x 1 float32 images, batch 64, cross-entropy; fnn (both kernel backends), PyTorch CPU
(channels-first) and JAX CPU (one jitted SGD step, channels-last) in the same run.
Then the cost per sample at batch 16, 64 and 256 (the same samples each; every library at
every batch size timed in one interleaved loop).
Targets: compiled fnn / torch and / JAX <= 1.0; numpy fnn / torch <= 1.3 (1 thread).
On several cores fnn runs each batch as one shard per core (``fnn.value_and_grad(...,
threads=n)``) while torch and XLA run each op on every core; each shard runs as chunks of
at most ``CHUNK`` samples (``chunk=``), so its activations stay in cache.

    python benchmarks/bench_lenet.py [--repeats 7]
"""

from __future__ import annotations

import statistics

import numpy as np
from harness import (
    backends,
    compare,
    conv_flops,
    dense_flops,
    fnn_trainer,
    interleaved,
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

STEPS, BATCH, LR, C = 100, 64, 0.05, 10
# samples per chunk of each shard (fnn.value_and_grad's chunk): the conv layers block their
# own matmuls, so smaller chunks only add overhead here
CHUNK = 64
SWEEP_BATCHES, SWEEP_SAMPLES = (16, 64, 256), 1024
FORWARD_FLOPS = (conv_flops(28 * 28, 9, 1, 32) + conv_flops(14 * 14, 9, 32, 64)
                 + dense_flops(64 * 7 * 7, 128, C))


def targets() -> dict:
    numpy_target = 1.3 if threads() == 1 else 1.5
    return {"fnn-compiled/torch": 1.0, "fnn-compiled/jax": 1.0, "fnn-numpy/torch": numpy_target}


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


def jax_predict(jax):
    def conv_relu_pool(h, p):
        return jax_conv_relu_pool(jax, h, p)

    def predict(p, x):
        h = conv_relu_pool(conv_relu_pool(x, p["00_conv2d"]), p["03_conv2d"])
        h = jax.nn.relu(h.reshape(len(h), -1) @ p["07_linear"]["w"] + p["07_linear"]["b"])
        return h @ p["09_linear"]["w"] + p["09_linear"]["b"]

    return predict


def runs_for(x, y, batch, steps, torch, jax):
    runs = {f"fnn-{b}": fnn_trainer(build(), fnn.cross_entropy, x, y, batch_size=batch, lr=LR,
                                    steps=steps, shards=threads(), chunk=CHUNK, backend=b) for b in backends()}
    runs["torch"] = torch_trainer(torch, build(torch), torch.nn.CrossEntropyLoss(),
                                  x.transpose(0, 3, 1, 2), y, batch_size=batch, lr=LR,
                                  steps=steps) if torch else None
    runs["jax"] = jax_trainer(jax, jax_predict(jax), jax_losses(jax)["cross_entropy"],
                              build().init(fnn.key(0), (-1, 28, 28, 1))[1], x, y,
                              batch_size=batch, lr=LR, steps=steps) if jax else None
    return runs


def main(argv=None):
    repeats = repeats_arg(__doc__, argv, default=7)
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, C, len(x))
    torch, jax = load_torch(), load_jax()
    # every library at every batch size in one interleaved loop: load drifts hit all alike
    xs, ys = x[:SWEEP_SAMPLES], y[:SWEEP_SAMPLES]
    sweep_runs = {(batch, lib): fn for batch in SWEEP_BATCHES
                  for lib, fn in runs_for(xs, ys, batch, None, torch, jax).items()
                  if fn is not None}
    sweep_times = interleaved(sweep_runs, max(3, repeats // 2))
    sweep: dict = {}
    for (batch, lib), ts in sweep_times.items():
        median = statistics.median(ts)
        sweep.setdefault(batch, {})[lib] = {
            "us_per_sample": median / SWEEP_SAMPLES * 1e6, "times_s": ts,
            "gflops": training_flops(FORWARD_FLOPS, SWEEP_SAMPLES) / median / 1e9}
    for batch, libs in sweep.items():
        print(f"lenet batch {batch} ({threads()}t): " + ", ".join(
            f"{lib} {v['us_per_sample']:.0f} us/sample" for lib, v in libs.items()), flush=True)
    return compare(
        "lenet_100_steps",
        f"{STEPS} SGD steps, LeNet-style conv2d(32)-pool-conv2d(64)-pool-128-10 on 28x28x1, "
        f"batch {BATCH}",
        runs_for(x, y, BATCH, STEPS, torch, jax), flops=training_flops(FORWARD_FLOPS, STEPS * BATCH),
        repeats=repeats, targets=targets(), extra={"batch_sweep": sweep})


if __name__ == "__main__":
    pin_to_cores(threads())  # "1 thread" means one core for every library (see harness)
    main()
