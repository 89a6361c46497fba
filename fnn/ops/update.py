"""The optimiser's kernel: ``p + a * u`` per leaf, the addition of a scaled update to a param
(:mod:`fnn.optim` runs it as the fused update-and-apply step of SGD-like optimisers).

On the compiled backend, float arrays of at least :data:`ADD_SCALED_COMPILED_MIN` entries take
one pass over memory instead of two (:mod:`fnn.ops.compiled`); the bits are the same either
way (``a * u`` rounded, then added: no fused multiply-add).
"""

from __future__ import annotations

from typing import Any

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
    return p + a * u  # (one call fewer than adding into a * u: faster on small arrays)


def _adam_numpy(m: np.ndarray, v: np.ndarray, g: np.ndarray, b1: float, b2: float, c: float,
                eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m_new = np.multiply(g, 1.0 - b1)  # in place on fresh arrays only (fewer temporaries)
    m_new += b1 * m
    v_new = np.multiply(g, g)
    v_new *= 1.0 - b2
    v_new += b2 * v
    den = np.asarray(np.sqrt(v_new))  # an array also for 0-d leaves (out= needs one)
    den += eps
    return m_new, v_new, np.divide(c * m_new, den, out=den)


def adam(m: np.ndarray, v: np.ndarray, g: np.ndarray, b1: float, b2: float, c: float,
         eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam's moments and direction for one leaf: ``(m', v', u)`` with ``m' = b1 m +
    (1 - b1) g``, ``v' = b2 v + (1 - b2) g**2``, ``u = c m' / (sqrt(v') + eps)`` (the bias
    corrections folded into ``c`` and ``eps`` by the caller), new arrays in g's dtype. One
    compiled pass instead of three (and their temporaries) for float arrays of one dtype and
    shape on the compiled backend; the same bits either way.

    >>> import numpy as np
    >>> from fnn.ops.update import adam
    >>> m, v, u = adam(np.zeros(2), np.zeros(2), np.array([2.0, -2.0]), 0.9, 0.999, 1.0, 0.0)
    >>> m.round(6).tolist(), u.round(4).tolist()
    ([0.2, -0.2], [3.1623, -3.1623])
    """
    if (type(g) is np.ndarray and type(m) is np.ndarray and type(v) is np.ndarray
            and g.size >= ADD_SCALED_COMPILED_MIN and _backend.pair_fits(m, g)
            and _backend.pair_fits(v, g)):
        from fnn.ops import optim_kernels  # numba, on first use

        t = g.dtype.type
        m_new, v_new, u = np.empty_like(g), np.empty_like(g), np.empty_like(g)
        optim_kernels.adam(m, v, g, t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(c), t(eps),
                           m_new, v_new, u)
        return m_new, v_new, u
    return _adam_numpy(m, v, g, b1, b2, c, eps)


def add_scaled_dicts(params: dict, updates: Any, a: float) -> dict | None:
    """:func:`add_scaled` over two nested dicts of arrays with the same keys (an optimiser's
    step over params and their updates), walked once; None, having changed nothing, when
    they are not both such dicts (the caller maps them with :func:`fnn.tree.tree_map`, whose
    errors name what differs). Shapes are the caller's to check.

    >>> import numpy as np
    >>> from fnn.ops.update import add_scaled_dicts
    >>> add_scaled_dicts({"l": {"w": np.ones(2)}}, {"l": {"w": np.array([2.0, 4.0])}}, -0.5)
    {'l': {'w': array([ 0., -1.])}}
    >>> add_scaled_dicts({"w": np.ones(2)}, {"w": [2.0, 4.0]}, -0.5) is None
    True
    """
    if type(updates) is not dict or len(updates) != len(params):
        return None
    out: dict = {}
    for k, p in params.items():
        u = updates.get(k)
        if type(p) is np.ndarray and type(u) is np.ndarray:
            out[k] = add_scaled(p, u, a)
        elif type(p) is dict:
            sub = add_scaled_dicts(p, u, a)
            if sub is None:
                return None
            out[k] = sub
        else:
            return None
    return out


__all__ = ["ADD_SCALED_COMPILED_MIN", "adam", "add_scaled", "add_scaled_dicts"]
