"""BLAS threads chosen by the size of each matrix product: a small product runs on one thread.

OpenBLAS splits a product over all its threads once it exceeds a few hundred thousand
multiply-adds; for the small products of a small model (the MLP's ``(32, 256) @ (256, 100)``)
waking the other threads costs more than they save, and on a machine where another job holds
a core their spinning makes each product many times slower (the MLP epoch took 83 ms at two
threads against 51 ms at one). :func:`matmul` runs products below :data:`SMALL_PRODUCT`
multiply-adds on one BLAS thread (and larger ones as BLAS is set), so more cores never cost a
small model time. Where BLAS already runs one thread (``OPENBLAS_NUM_THREADS=1``, or inside
:func:`fnn.threads.sharded`'s shards) it costs one call that reads the thread count.

The thread count is set through threadpoolctl (a core dependency), imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Products with fewer multiply-adds than this run on one BLAS thread (2**22: four million;
#: on two cores two threads start to pay near there, and the gain stays small up to ten times
#: more, where a busy machine's contention costs most).
SMALL_PRODUCT = 1 << 22

#: Matrix products (2-d by 2-d, not a vector) with fewer multiply-adds than this run on one
#: thread in OpenBLAS whatever its setting (it splits a product only from 2**18 multiply-adds,
#: one more thread per 2**18 in 0.3.31): :func:`matmul` calls them without the thread switch.
OWN_ONE_THREAD = 1 << 18

_switch: list[tuple[Callable[[], int], Callable[[int], Any]]] = []  # (get, set) per library
_found: list[bool] = []


def _controls() -> list[tuple[Callable[[], int], Callable[[int], Any]]]:
    """``(get_num_threads, set_num_threads)`` of every BLAS numpy uses (OpenBLAS's own C
    functions, the cheapest to call; threadpoolctl's methods for the others)."""
    if not _found:
        from threadpoolctl import ThreadpoolController  # first use: keeps `import fnn` light

        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            symbol = getattr(lib, "_get_symbol", lambda name: None)
            get, set_ = symbol("openblas_get_num_threads"), symbol("openblas_set_num_threads")
            if get is None or set_ is None or lib.internal_api != "openblas":
                get, set_ = lib.get_num_threads, lib.set_num_threads
            _switch.append((get, set_))
        _found.append(True)
    return _switch


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a: (..., K)`` and ``b: (K, N)``, on one BLAS thread when it has fewer
    than :data:`SMALL_PRODUCT` multiply-adds (the thread count is put back after).

    >>> import numpy as np
    >>> from fnn.ops.blas import matmul
    >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    """
    macs = a.size * b.shape[-1]
    if macs >= SMALL_PRODUCT or (macs < OWN_ONE_THREAD and a.ndim == 2 and b.ndim == 2
                                 and a.shape[0] > 1 and b.shape[1] > 1):
        return a @ b  # large: as BLAS is set; tiny matrix product: BLAS's own single thread
    controls = _switch or _controls()
    lowered = []
    for get, set_ in controls:
        n = get()
        if n > 1:
            set_(1)
            lowered.append((set_, n))
    try:
        return a @ b
    finally:
        for set_, n in lowered:
            set_(n)


__all__ = ["OWN_ONE_THREAD", "SMALL_PRODUCT", "matmul"]
