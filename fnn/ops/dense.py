"""Dense-layer numerics: the input gradient ``dy @ w.T`` in the layout BLAS runs fastest.

For a kernel ``w: (D_in, D_out)`` with many rows, OpenBLAS computes ``dy @ w.T`` (``w``
transposed as the second operand) markedly slower than the same product as ``(w @ dy.T).T``,
even counting the copy back to C order (``benchmarks/micro.py``: the USPS Conv1D net's
4064 -> 100 layer, batch 32); for small kernels the plain product is faster, and so it is for
many rows (the copy back grows with them: a GPT's MLP, 768 tokens, 512 -> 128, took 1.1 ms
plain against 1.7 ms transposed, OpenBLAS 0.3.31 Haswell kernels, one thread). Small
products run on one BLAS thread (:func:`fnn.ops.blas.matmul`).
"""

from __future__ import annotations

import numpy as np

from fnn.ops.blas import matmul

#: Kernels with at least this many entries take the transposed product ...
TRANSPOSED_MIN = 1 << 16
#: ... for fewer rows of ``dy`` than this.
TRANSPOSED_MAX_ROWS = 256


def input_grad(dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``dy @ w.T`` for ``dy: (..., D_out)`` and ``w: (D_in, D_out)`` → ``(..., D_in)``, C order.

    >>> import numpy as np
    >>> from fnn.ops.dense import input_grad
    >>> w = np.arange(6.0).reshape(3, 2)
    >>> input_grad(np.ones((1, 2)), w)
    array([[1., 5., 9.]])
    """
    rows = dy.reshape(-1, dy.shape[-1])
    if w.size < TRANSPOSED_MIN or rows.shape[0] >= TRANSPOSED_MAX_ROWS:
        return matmul(dy, w.T)
    return np.ascontiguousarray(matmul(w, rows.T).T).reshape(*dy.shape[:-1], w.shape[0])
