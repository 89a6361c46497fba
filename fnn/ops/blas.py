"""BLAS threads chosen by the size of each matrix product: a small product runs on one thread.

OpenBLAS splits a product over all its threads once it exceeds a few hundred thousand
multiply-adds (0.3.31: one thread per 2**18 of them); for the small products of a small model
(the MLP's ``(32, 256) @ (256, 100)``) the second thread only pays on a quiet machine, and on
a machine where another job holds a core its spinning makes each product many times slower.
:func:`matmul` runs products below :data:`SMALL_PRODUCT` multiply-adds on one BLAS thread
(and larger ones as BLAS is set), so more cores never cost a small model time. Products that
OpenBLAS runs on one thread anyway (2-d by 2-d under :data:`OWN_ONE_THREAD` multiply-adds)
are called as they are, without touching the thread count; where BLAS already runs one
thread (``OPENBLAS_NUM_THREADS=1``, or inside :func:`fnn.threads.sharded`'s shards) the
others cost one call that reads the thread count.

Why one fixed threshold and no per-shape timing (measured 2026-12-03 on the 2-core AMD EPYC
development machine, OpenBLAS 0.3.31, shared with other jobs; microseconds per product):

* the thread count changes the result's last bits for the MLP's 819200-multiply-add products
  (one and two threads do not give equal arrays), not for products OpenBLAS keeps on one
  thread; a choice made by timing would make a run's numbers depend on the machine's load,
  and a resumed run would no longer repeat the bits of one never stopped;
* two threads win on a quiet core: ``(32, 256) @ (256, 100)`` 17.3 against 27.0 at one
  thread, ``(256, 32) @ (32, 100)`` 14.1 against 25.0 (best of 7 x 3000 calls);
* but not on a busy machine: the same two products with some Python between them averaged
  468 and 3064 us per pair at two threads against 107 to 130 at one in busy moments (up to
  28x slower), 69 against 79 in quiet ones; a ``(32, 164) @ (164, 100)`` product (just past
  OpenBLAS's own split) took 58 against 16 for ``(32, 163) @ (163, 100)`` on one thread;
* switching costs little: ``openblas_set_num_threads`` down and back 0.47, reading the
  count 0.16.

So a product goes to every BLAS thread only when its work dwarfs a scheduler's delay
(:data:`SMALL_PRODUCT`); below it, the second core is left to other work. Lower
:data:`SMALL_PRODUCT` (``fnn.ops.blas.SMALL_PRODUCT = 1 << 19``) on a machine of your own to
let small models' products use every core (results then depend on the thread count, as
large products' always do).

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
