"""Trial functions for tests/test_sweep.py, in a module of their own so that Dask workers can
import them: embedded LocalCluster workers find it on the sys.path they inherit, separately
started ``dask worker`` processes get it shipped (``fnn.sweep(..., ship=[this file])``)."""

from __future__ import annotations

import os
import time

import numpy as np

import fnn


def blas_trial(config: dict, key) -> dict:
    """A few ms of numpy and BLAS: a random matrix product and its statistics."""
    rng = fnn.rng(key)
    a = rng.normal(size=(config["n"], config["n"])).astype(np.float32)
    b = a @ a.T * config["scale"]
    return {"mean": float(b.mean()), "norm": float(np.linalg.norm(b)),
            "first": b[0, :3], "n": config["n"]}


def digits_trial(config: dict, key) -> dict:
    """A tiny MLP trained for a few epochs on the offline digits; returns its params too."""
    data = _digits()
    model = fnn.serial(fnn.linear(config["hidden"]), getattr(fnn, config["act"])(),
                       fnn.linear(10))
    params, history = fnn.fit(model, fnn.cross_entropy, fnn.sgd(config["lr"]), data.x_train,
                              data.y_train, epochs=config["epochs"], batch_size=32,
                              validation=(data.x_test, data.y_test), accuracy=True, seed=key,
                              progress=False)
    return {"metrics": {"loss": history.train["loss"][-1],
                        "accuracy": history.eval["accuracy"][-1]},
            "arrays": {"params": params}}


_DIGITS = []


def _digits():
    if not _DIGITS:
        _DIGITS.append(fnn.datasets.digits())
    return _DIGITS[0]


def failing_trial(config: dict, key) -> dict:
    if config["x"] == 2:
        raise ValueError(f"x={config['x']} is not allowed")
    return {"x2": config["x"] ** 2}


def logged_trial(config: dict, key) -> dict:
    """Appends ``<tag> <i>`` to the file named by $SWEEP_TEST_LOG when it starts (tag:
    $SWEEP_TEST_TAG), sleeps ``config["sleep"]`` seconds, returns a number drawn from key."""
    with open(os.environ["SWEEP_TEST_LOG"], "a") as f:
        f.write(f"{os.environ.get('SWEEP_TEST_TAG', '')} {config['i']} {os.getpid()}\n")
    time.sleep(config["sleep"])
    return {"i": config["i"], "draw": float(fnn.rng(key).random()), "pid": os.getpid()}


def set_env(name: str, value: str) -> None:
    """Set an environment variable in the process this runs in (``client.run`` on workers)."""
    os.environ[name] = value
