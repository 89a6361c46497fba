"""Save and load params trees as ``.npz`` — no pickle, atomic writes, checked loads.

Keys are ``"params/" + "/".join(path)`` (``"params/00_linear/w"``); empty sub-dicts (layers
without params) are listed under ``"meta/empty"`` so the tree comes back whole.

>>> import tempfile, os, fnn
>>> _, params = fnn.serial(fnn.linear(3), fnn.relu()).init(fnn.key(0), (-1, 4))
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fnn.save(path, params)
>>> loaded = fnn.load(path, like=params)
>>> sorted(loaded), loaded["00_linear"]["w"].shape
(['00_linear', '01_relu'], (4, 3))
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fnn.tree import empty_dict_paths, flatten_with_paths, unflatten_paths

FORMAT = "fnn-params-1"
_SECTION = "params/"


class FnnFileError(ValueError):
    """A file that is not an fnn ``.npz``, is damaged, or does not match the expected tree."""


def save(path: str | os.PathLike, params: Any) -> None:
    """Write ``params`` (a nested dict of arrays) to ``path`` atomically (write, then rename)."""
    if not isinstance(params, dict):
        raise TypeError(f"save: params must be a nested dict of arrays, got {type(params).__name__}")
    flat = flatten_with_paths(params)
    arrays = {}
    for k, v in flat.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise TypeError(f"save: params/{k} is an object array; only numeric arrays are saved")
        arrays[_SECTION + k] = a
    arrays["meta/format"] = np.array(FORMAT)
    arrays["meta/empty"] = np.array(empty_dict_paths(params), dtype=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path: str | os.PathLike, like: Any = None) -> dict:
    """Read a params tree written by :func:`save`.

    With ``like`` (a params tree, e.g. from ``model.init``) the keys, shapes and dtypes must
    match; every mismatch is named in one error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise FnnFileError(f"load: {path} is a single .npy array, not an fnn .npz")
        with npz:
            names = list(npz.files)
            if "meta/format" not in names:
                raise FnnFileError(
                    f"load: {path} is not an fnn params file (no 'meta/format' entry; "
                    f"it has {names[:5]}{'...' if len(names) > 5 else ''})"
                )
            fmt = str(npz["meta/format"])
            if fmt != FORMAT:
                raise FnnFileError(f"load: {path} has format {fmt!r}, expected {FORMAT!r}")
            flat = {n[len(_SECTION):]: npz[n] for n in names if n.startswith(_SECTION)}
            empty = tuple(str(p) for p in npz["meta/empty"]) if "meta/empty" in names else ()
    except FnnFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise FnnFileError(
            f"load: {path} is damaged or truncated, or not an fnn file "
            f"({type(err).__name__}: {err})"
        ) from None
    if like is not None:
        _check_like(path, flat, empty, like)
    return unflatten_paths(flat, empty)


def _check_like(path: Path, flat: dict, empty: tuple, like: Any) -> None:
    want = {k: np.asarray(v) for k, v in flatten_with_paths(like).items()}
    problems = []
    missing = sorted(set(want) - set(flat))
    unexpected = sorted(set(flat) - set(want))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if set(empty_dict_paths(like)) != set(empty):
        problems.append(
            f"parameter-free layers differ: file {sorted(empty)}, expected {sorted(empty_dict_paths(like))}"
        )
    for k in sorted(set(want) & set(flat)):
        if flat[k].shape != want[k].shape:
            problems.append(f"{k}: shape {flat[k].shape}, expected {want[k].shape}")
        elif flat[k].dtype != want[k].dtype:
            problems.append(f"{k}: dtype {flat[k].dtype}, expected {want[k].dtype}")
    if problems:
        raise FnnFileError(f"load: {path} does not match the expected params: " + "; ".join(problems))
