"""A trial's result files: ``<id>.json`` (the record: config, repeat, seed, status, metrics,
error and traceback, seconds, worker) and, when the trial returned arrays, ``<id>.npz``
written first, so that a trial counts as finished once its ``.json`` exists. Both are
written atomically by the calling process; reading never unpickles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fnn.io import atomic_write

__all__ = ["EMPTY", "RECORD_FORMAT", "flatten_arrays", "read_record", "unflatten",
           "write_trial"]

#: the ``format`` field of every record; records of another format are not read
RECORD_FORMAT = "fnn-trial/1"
#: npz entry listing the paths of empty dicts (layers without params)
EMPTY = ":empty"


def _check_key(k: Any) -> None:
    if not isinstance(k, str) or "/" in k or not k or k.startswith(":"):
        raise TypeError(f"arrays: keys must be non-empty strings without '/' or a "
                        f"leading ':', got {k!r}")


def flatten_arrays(tree: Mapping) -> dict[str, np.ndarray]:
    """``{"a/b": array}`` from a nested dict of arrays; empty dicts are listed under
    :data:`EMPTY` so that :func:`unflatten` gives back the same tree.

    >>> import numpy as np
    >>> flat = flatten_arrays({"dense": {"w": np.ones(2)}, "tanh": {}})
    >>> sorted(flat), unflatten(flat)["tanh"]
    ([':empty', 'dense/w'], {})
    """
    out: dict[str, np.ndarray] = {}
    empty: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, Mapping):
            raise TypeError("arrays must be a (nested) dict of arrays")
        if not node and prefix:
            empty.append(prefix[:-1])
        for k, v in node.items():
            _check_key(k)
            path = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, path + "/")
                continue
            a = np.asarray(v)
            if a.dtype == object:
                raise TypeError(f"arrays: {path} is an object array; only numeric arrays "
                                "are saved")
            out[path] = a

    walk(tree, "")
    if empty:
        out[EMPTY] = np.array(empty, dtype=str)
    return out


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    """The nested dict that :func:`flatten_arrays` flattened."""
    out: dict = {}
    paths: list[tuple[str, Any]] = [(p, {}) for p in (flat[EMPTY].tolist() if EMPTY in flat
                                                      else [])]
    for path, a in sorted([*((p, a) for p, a in flat.items() if p != EMPTY), *paths],
                          key=lambda item: item[0]):
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = a
    return out


def write_trial(folder: Path, record: dict, arrays: dict | None) -> None:
    """``<id>.npz`` (when there are arrays) then ``<id>.json`` in ``folder``, atomically."""
    if arrays:  # arrays first: a trial counts as finished once its .json exists
        atomic_write(folder / f"{record['id']}.npz", lambda f: np.savez(f, **arrays), where="sweep")
    text = json.dumps(record, indent=1, allow_nan=True) + "\n"
    atomic_write(folder / f"{record['id']}.json", lambda f: f.write(text.encode()), where="sweep")


def read_record(path: Path) -> dict | None:
    """The record in ``path``, or None when it is missing, unreadable or of another format
    (such a trial counts as not finished and runs again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None
