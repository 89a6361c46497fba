"""Element-wise activation kernels and their vector-Jacobian products.

numpy spends one pass over memory per operation (``dy * (1 - y * y)`` is three, with two
temporaries); the compiled backend does each vjp in one pass. Both compute in the arrays'
dtype, so they agree to the last bit or to float rounding (``exp`` implementations differ).
The compiled kernels take C-contiguous float32/float64 arrays of one dtype; anything else
runs the numpy code.
"""

from __future__ import annotations

import numpy as np

from fnn.ops import _backend


def _compiled(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the compiled kernel takes ``a`` and ``b``: C-contiguous float32/float64 arrays
    of one dtype and shape, compiled backend."""
    return (_backend.compiled() and a.dtype == b.dtype and a.dtype in _FLOATS
            and a.shape == b.shape and a.flags.c_contiguous and b.flags.c_contiguous)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # dtypes: compared without converting


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` (one numpy pass: nothing to gain from compiling it)."""
    return np.maximum(x, 0.0)


def relu_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * (x > 0)``; numpy multiplies by a float mask (faster than a bool one:
    ``benchmarks/micro.py``)."""
    if _compiled(x, dy):
        return _backend.kernels().relu_vjp(x, dy)
    return dy * (x > 0).astype(x.dtype)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * (1 - y * y)`` from the output ``y = tanh(x)``."""
    if _compiled(y, dy):
        return _backend.kernels().tanh_vjp(y, dy)
    return dy * (1.0 - y * y)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The textbook ``1 / (1 + exp(-x))``; ``exp`` may overflow to inf for very negative ``x``
    (silenced: the limit 0 is exact). numpy on both backends (its SIMD ``exp`` is faster than
    a compiled scalar loop)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


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
    >>> from fnn.ops.elementwise import add_scaled
    >>> add_scaled(np.ones(3, np.float32), np.arange(3, dtype=np.float32), -0.5)
    array([1. , 0.5, 0. ], dtype=float32)
    """
    if not (type(p) is np.ndarray and type(u) is np.ndarray and p.dtype == u.dtype
            and p.shape == u.shape and p.dtype.kind == "f"):
        return (p + a * u).astype(p.dtype, copy=False)
    if p.size >= ADD_SCALED_COMPILED_MIN and _compiled(p, u):
        out = np.empty(p.shape, p.dtype)
        _backend.kernels().add_scaled(p, u, p.dtype.type(a), out)
        return out
    out = a * u
    return np.add(p, out, out=out) if out.ndim else p + out  # (a 0-d array: a scalar)


def sigmoid_vjp(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dy * y * (1 - y)`` from the output ``y = sigmoid(x)``."""
    if _compiled(y, dy):
        return _backend.kernels().sigmoid_vjp(y, dy)
    return dy * (y * (1.0 - y))
