"""The optimiser's kernel: ``p + a * u`` per leaf, the addition of a scaled update to a param
(:mod:`fnn.optim` runs it as the fused update-and-apply step of SGD-like optimisers).

On the compiled backend, float arrays of at least :data:`ADD_SCALED_COMPILED_MIN` entries take
one pass over memory instead of two (:mod:`fnn.ops.compiled`); the bits are the same either
way (``a * u`` rounded, then added: no fused multiply-add).
"""

from __future__ import annotations

import numpy as np

from fnn.ops import _backend

#: Arrays of at least this many entries take the compiled ``add_scaled`` (below it, the
#: call costs more than the pass it saves; ``benchmarks/micro.py`` times the MLP's 256 x 100
#: kernel).
ADD_SCALED_COMPILED_MIN = 1 << 13


def add_scaled(p: np.ndarray, u: np.ndarray, a: float) -> np.ndarray:
    """``p + a * u`` in ``p``'s dtype, as a new array: ``a * u`` rounded, then added (the same
    bits on both backends, and as ``apply_updates`` after a scale). For float arrays of one
    dtype and shape the compiled kernel makes one pass over memory instead of two, on large
    arrays (an optimiser's update of a large kernel: ``benchmarks/micro.py``).

    >>> import numpy as np
    >>> from fnn.ops.update import add_scaled
    >>> add_scaled(np.ones(3, np.float32), np.arange(3, dtype=np.float32), -0.5)
    array([1. , 0.5, 0. ], dtype=float32)
    """
    if not (type(p) is np.ndarray and type(u) is np.ndarray and p.dtype == u.dtype
            and p.shape == u.shape and p.dtype.kind == "f"):
        return (p + a * u).astype(p.dtype, copy=False)
    if p.size >= ADD_SCALED_COMPILED_MIN and _backend.pair_fits(p, u):
        out = np.empty(p.shape, p.dtype)
        _backend.kernels().add_scaled(p, u, p.dtype.type(a), out)
        return out
    out = a * u
    return np.add(p, out, out=out) if out.ndim else p + out  # (a 0-d array: a scalar)


__all__ = ["ADD_SCALED_COMPILED_MIN", "add_scaled"]
