"""What a run's fingerprint records of an optimiser (or any function built by closures):
its hyper-parameters, read from the closures that hold them, so that resuming with another
learning rate, betas or weight decay is refused without the user declaring anything.

>>> import fnn
>>> from fnn.training.hyperparameters import hyperparameters
>>> a, b = hyperparameters(fnn.adam(1e-3)), hyperparameters(fnn.adam(1e-4))
>>> a == hyperparameters(fnn.adam(1e-3)), a == b
(True, False)
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import numpy as np

__all__ = ["hyperparameters"]

_DEPTH = 12


def hyperparameters(obj: Any) -> Any:
    """A JSON-like description of ``obj``: numbers and strings as they are, arrays by dtype,
    shape and CRC-32, functions by name and the values their closures hold (an optimiser by its
    ``update``'s), containers entry by entry (as dicts, so differences are named by path)."""
    return _walk(obj, 0, set())


def _walk(obj: Any, depth: int, seen: set[int]) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        if data.dtype.hasobject:
            return f"{obj.dtype}{obj.shape}"
        return f"{obj.dtype}{obj.shape} crc32={zlib.crc32(data.data)}"
    if depth > _DEPTH or id(obj) in seen:
        return "..."
    seen = seen | {id(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "update") and hasattr(obj, "init"):
        return {"update": _walk(obj.update, depth + 1, seen)}  # an Optimizer: its update rule
    if isinstance(obj, (list, tuple)):
        return {str(i): _walk(v, depth + 1, seen) for i, v in enumerate(obj)}
    if isinstance(obj, dict):
        return {str(k): _walk(v, depth + 1, seen) for k, v in obj.items()}
    if isinstance(obj, functools.partial):
        return {"partial": _walk(obj.func, depth + 1, seen),
                "args": _walk(obj.args, depth + 1, seen),
                "keywords": _walk(obj.keywords, depth + 1, seen)}
    if callable(obj) and hasattr(obj, "__code__"):
        out: dict[str, Any] = {"fn": f"{obj.__module__}.{obj.__qualname__}"}
        cells = obj.__closure__ or ()
        for name, cell in zip(obj.__code__.co_freevars, cells):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if not isinstance(value, type) and not hasattr(value, "__path__"):
                out[name] = _walk(value, depth + 1, seen)
        return out
    return type(obj).__name__
