"""A trial's identity: its config (grids of them), the canonical JSON that hashes it, its id
(the name of its result files) and its key. Nothing here may change what it computes: the
ids name records already on disk (a rerun skips them) and the keys are the trials' draws."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fnn.keys import Key, fold_in
from fnn.keys import key as make_key
from fnn.validate import integer, one_of

__all__ = ["KEY_SCHEMES", "grid", "trial_id", "trial_key"]

#: ``"per_trial"``: a key per (config, repeat); ``"per_repeat"``: a key per repeat
KEY_SCHEMES = ("per_trial", "per_repeat")


def grid(**axes: Sequence) -> list[dict]:
    """The cartesian product of ``axes`` as a list of configs, the last axis varying fastest.

    >>> from fnn.experiments import grid
    >>> grid(lr=[0.1, 0.01], act=["tanh", "relu"])
    [{'lr': 0.1, 'act': 'tanh'}, {'lr': 0.1, 'act': 'relu'}, {'lr': 0.01, 'act': 'tanh'}, {'lr': 0.01, 'act': 'relu'}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"grid: axis {name!r} must be a list of values, got {values!r}")
    for name in axes:
        if not list(axes[name]):
            raise ValueError(f"grid: axis {name!r} is empty, so the grid has no configs; give "
                             "it at least one value")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[n]) for n in names))]


def config_list(configs: Mapping[str, Sequence] | Iterable[Mapping]) -> list[dict]:
    """``configs`` as a list of dicts: a dict of lists is a :func:`grid`."""
    if isinstance(configs, Mapping):
        return grid(**configs)
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Iterable):
        raise TypeError(f"sweep: configs must be a list of dicts or a dict of lists, got "
                        f"{type(configs).__name__}")
    out = list(configs)
    if not out:
        raise ValueError("sweep: configs is empty: there is no trial to run")
    for i, c in enumerate(out):
        if not isinstance(c, Mapping):
            raise TypeError(f"sweep: config {i} must be a dict, got {type(c).__name__}")
    return [dict(c) for c in out]


def source_hash(trial: Callable) -> str | None:
    """A SHA-256 (hex, 16 digits) of the trial function's source (its bytecode when the
    source cannot be read), stored in each record so a rerun can tell the code changed; None
    for a callable without code.

    >>> from fnn.experiments.identity import source_hash
    >>> def a(config, key): return {"x": 1}
    >>> def b(config, key): return {"x": 2}
    >>> source_hash(a) != source_hash(b), len(source_hash(a))
    (True, 16)
    """
    import inspect  # here: only sweeps need it

    fn = getattr(trial, "__wrapped__", trial)
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return None
        text = code.co_code + repr(code.co_consts).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def plain(value: Any, where: str = "value") -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python numbers/lists, tuples to lists.

    >>> import numpy as np
    >>> plain({"lr": np.float32(0.5), "sizes": (1, np.int64(2))})
    {'lr': 0.5, 'sizes': [1, 2]}
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where}: object arrays are not JSON")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: {type(value).__name__} is not JSON (numbers, strings, lists, dicts)")


def canonical(value: Any) -> str:
    """The JSON text that identifies ``value``: sorted keys, no spaces (what ids hash).

    >>> canonical({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def trial_id(name: str, config: Mapping, repeat: int, seed: int, keys: str = "per_trial") -> str:
    """The hex id of a trial (its result files are ``<id>.json`` / ``<id>.npz``): a SHA-256 of
    the trial's name, config (canonical JSON), repeat, seed and key scheme.

    >>> from fnn.experiments import trial_id
    >>> trial_id("m.trial", {"lr": 0.1}, 0, 0)
    '806e710dab539e46faf97878'
    >>> trial_id("m.trial", {"lr": 0.1}, 0, 0) != trial_id("m.trial", {"lr": 0.1}, 1, 0)
    True
    """
    text = canonical({"trial": name, "config": plain(config, "config"), "repeat": int(repeat),
                      "seed": int(seed), "keys": keys})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def trial_key(seed: int, config: Mapping, repeat: int, keys: str = "per_trial") -> Key:
    """The key a trial receives: ``fold_in(key(seed), n)`` with ``n`` a 64-bit integer read from
    the SHA-256 of ``(config, repeat)`` (``"per_trial"``), or ``key(seed + repeat)`` shared by
    every config of the repeat (``"per_repeat"``). Stable across processes and machines
    (Python's ``hash()`` is salted per process and is not used).

    >>> import numpy as np, fnn
    >>> a = fnn.trial_key(0, {"lr": 0.1}, 0)
    >>> b = fnn.trial_key(0, {"lr": 0.1}, 0)
    >>> bool((np.random.default_rng(a).random(3) == np.random.default_rng(b).random(3)).all())
    True
    >>> fnn.trial_key(5, {"lr": 0.1}, 2, "per_repeat").entropy
    7
    """
    one_of("trial_key", "keys", keys, KEY_SCHEMES)
    seed = integer("trial_key", "seed", seed, minimum=0)
    repeat = integer("trial_key", "repeat", repeat, minimum=0)
    if keys == "per_repeat":
        return make_key(seed + repeat)
    text = canonical({"config": plain(config, "config"), "repeat": repeat})
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return fold_in(make_key(seed), n)


def trial_name(trial: Callable) -> str:
    """``module.qualname`` of a trial function: the name its ids hash."""
    module = getattr(trial, "__module__", None) or "?"
    qualname = getattr(trial, "__qualname__", None) or getattr(trial, "__name__", repr(trial))
    return f"{module}.{qualname}"
