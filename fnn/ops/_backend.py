"""Which implementation of the array kernels runs: ``"numpy"`` (the reference) or
``"compiled"`` (numba, loaded on first use so ``import fnn`` never pays for it)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from types import ModuleType

import numpy as np

BACKENDS = ("numpy", "compiled")
ENV = "FNN_BACKEND"
_state: dict = {"name": None, "kernels": None}


def available() -> bool:
    """Whether the compiled kernels can run here (numba is importable; not imported here).

    >>> import fnn
    >>> fnn.ops.available() in (True, False)
    True
    """
    return importlib.util.find_spec("numba") is not None


def _check(name: str, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{source}: backend must be one of {BACKENDS}, got {name!r}")
    if name == "compiled" and not available():
        raise ImportError(f"{source}: the compiled backend needs numba "
                          "(pip install 'fnn[fast]'), which is not installed")
    return name


def backend() -> str:
    """The backend in use: set by :func:`use`, else the environment variable ``FNN_BACKEND``
    (``numpy`` | ``compiled``), else ``"compiled"`` when numba is installed, else ``"numpy"``.

    >>> import fnn
    >>> fnn.ops.backend() in ("numpy", "compiled")
    True
    """
    name = _state["name"]
    if name is None:
        env = os.environ.get(ENV, "").strip().lower()
        name = _check(env, f"{ENV}={env}") if env else ("compiled" if available() else "numpy")
        _state["name"] = name
    return name


def use(name: str) -> str:
    """Switch every kernel to ``name`` (``"numpy"`` | ``"compiled"``) for the whole process;
    returns the previous backend. Raises ImportError for ``"compiled"`` without numba.

    >>> import fnn
    >>> previous = fnn.ops.use("numpy")
    >>> fnn.ops.backend()
    'numpy'
    >>> _ = fnn.ops.use(previous)
    """
    previous = backend()
    _state["name"] = _check(name, "fnn.ops.use")
    return previous


@contextlib.contextmanager
def using(name: str) -> Iterator[str]:
    """``with fnn.ops.using("numpy"): ...``: :func:`use` for a block, restored after it.

    >>> import numpy as np, fnn
    >>> with fnn.ops.using("numpy"):
    ...     y = fnn.relu().apply({}, np.array([[-1.0, 2.0]]))
    >>> y
    array([[0., 2.]])
    """
    previous = use(name)
    try:
        yield name
    finally:
        _state["name"] = previous


def compiled() -> bool:
    """True when the compiled kernels are to run (the hot-path check of every dispatch)."""
    name = _state["name"]
    return (name or backend()) == "compiled"


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # dtypes: compared without converting


def pair_fits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether an element-wise compiled kernel takes ``a`` and ``b``: the compiled backend
    chosen, C-contiguous float32/float64 arrays of one dtype and shape (else the numpy code
    runs)."""
    return (compiled() and a.dtype == b.dtype and a.dtype in _FLOATS and a.shape == b.shape
            and a.flags.c_contiguous and b.flags.c_contiguous)


def kernels() -> ModuleType:
    """:mod:`fnn.ops.compiled`, imported (with numba) on the first call."""
    module = _state["kernels"]
    if module is None:
        from fnn.ops import compiled as module

        _state["kernels"] = module
    return module


def describe() -> dict:
    """What runs the kernels: backend, and numba's version when it is loaded or chosen.

    >>> import fnn
    >>> sorted(fnn.ops.describe())
    ['backend', 'numba']
    """
    info = {"backend": backend(), "numba": None}
    if info["backend"] == "compiled":
        import numba

        info["numba"] = numba.__version__
    return info
