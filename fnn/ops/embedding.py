"""Embedding lookups and their gradient: rows of a table ``(V, D)`` picked by integer ids.

The gradient adds every ``dy`` row into the table row its id picked (a scatter-add).
``np.add.at`` does it one element at a time (slow); here numpy sorts the ids (stably), sums
each run of equal ids (``sum(axis=0)`` per id when ids repeat, else one ``np.add.reduceat``)
and writes one row per distinct id; the compiled backend adds the rows in a numba loop. Both
add each table row's contributions in the order the ids come (so they agree to float
rounding; to the last bit when ids repeat).
"""

from __future__ import annotations

import numpy as np

from fnn.ops import _backend

__all__ = ["gather", "projected_gather", "projected_gather_backward", "scatter_add"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def gather(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``table[ids]``: ``table (V, D)``, ``ids (N, T)`` int -> ``(N, T, D)`` (any shape of
    ids works: the result's shape is ``ids.shape + (D,)``). Raises IndexError for an id
    outside ``[-V, V)``.

    >>> import numpy as np
    >>> from fnn.ops.embedding import gather
    >>> gather(np.arange(6.0).reshape(3, 2), np.array([[2, 0]])).tolist()
    [[[4.0, 5.0], [0.0, 1.0]]]
    """
    return np.take(table, ids, axis=0)


def scatter_add(ids: np.ndarray, dy: np.ndarray, vocab_size: int,
                padding_idx: int | None = None) -> np.ndarray:
    """The gradient of :func:`gather` for its table: ``dtable (V, D)`` with
    ``dtable[v] = sum of dy[n, t] over ids[n, t] == v``, ``dy (N, T, D)`` (any shape
    ``ids.shape + (D,)``), in ``dy``'s dtype. Rows of ``padding_idx`` (negative counts
    from the end, as in PyTorch) get no gradient.

    >>> import numpy as np
    >>> from fnn.ops.embedding import scatter_add
    >>> ids = np.array([[1, 0, 1, 2]]); dy = np.ones((1, 4, 2))
    >>> scatter_add(ids, dy, 3, padding_idx=2).tolist()
    [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
    """
    flat = _rows(ids, vocab_size)
    width = dy.shape[-1]
    rows = dy.reshape(flat.shape[0], width)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += vocab_size
    out = np.zeros((vocab_size, width), dtype=dy.dtype)
    if _backend.compiled() and dy.dtype in _FLOATS:
        from fnn.ops import sequence_kernels

        pad = -1 if padding_idx is None else int(padding_idx)
        sequence_kernels.scatter_add(flat, np.ascontiguousarray(rows), pad, out)
        return out
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, rows = flat[keep], rows[keep]
    if flat.shape[0] == 0:
        return out
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sorted_rows = rows[order]
    if starts.shape[0] * _RUN > flat.shape[0]:  # mostly distinct ids: one call
        out[ordered[starts]] = np.add.reduceat(sorted_rows, starts, axis=0)
        return out
    ends = [*starts[1:].tolist(), flat.shape[0]]
    for start, end in zip(starts.tolist(), ends):  # each id's rows, summed in order
        out[ordered[start]] = sorted_rows[start:end].sum(axis=0)
    return out


#: numpy's scatter-add sums each id's rows with ``sum(axis=0)`` (in the order the ids come:
#: the compiled loop's bits; ``np.add.reduceat`` measured 30x slower on 2048 rows of 65 ids)
#: when ids repeat this many times on average, and calls ``reduceat`` once otherwise.
_RUN = 8


def _rows(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """The ids as a flat int64 array of rows in ``[0, V)`` (negative ids count from the end,
    as in :func:`gather`); IndexError for ids outside ``[-V, V)``."""
    flat = np.asarray(ids).reshape(-1).astype(np.int64, copy=False)
    if flat.shape[0] == 0:
        return flat
    low, high = int(flat.min()), int(flat.max())
    if low < -vocab_size or high >= vocab_size:
        raise IndexError(f"scatter_add: ids must be in [-{vocab_size}, {vocab_size}), "
                         f"got {low if low < -vocab_size else high}")
    return flat if low >= 0 else np.where(flat < 0, flat + vocab_size, flat)


def projected_gather(table: np.ndarray, ids: np.ndarray, w: np.ndarray,
                     b: np.ndarray) -> np.ndarray:
    """``table[ids] @ w + b`` as ``(table @ w + b)[ids]``: one ``(V, D) @ (D, K)`` product
    instead of ``(N*T, D) @ (D, K)`` (fewer multiply-adds when the vocabulary ``V`` is smaller
    than the ``N*T`` ids), ``-> (N, T, K)``.

    >>> import numpy as np
    >>> from fnn.ops.embedding import projected_gather
    >>> table, w = np.arange(6.0).reshape(3, 2), np.array([[1.0], [10.0]])
    >>> projected_gather(table, np.array([[2, 0]]), w, np.array([0.5])).tolist()
    [[[54.5], [10.5]]]
    """
    return np.take(table @ w + b, ids, axis=0)


def projected_gather_backward(table: np.ndarray, ids: np.ndarray, w: np.ndarray,
                              dy: np.ndarray, padding_idx: int | None = None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dw (D, K), db (K,), dtable (V, D))`` of :func:`projected_gather` from
    ``dy (N, T, K)``: the rows of ``dy`` summed per id first (``s = scatter_add(ids, dy)``,
    ``(V, K)``), then ``dw = table^T s``, ``db = sum(s)``, ``dtable = s w^T`` (row
    ``padding_idx`` zero); the same sums as ``x^T dy`` and ``dy w^T`` with ``x = table[ids]``,
    grouped by id.

    >>> import numpy as np
    >>> from fnn.ops.embedding import projected_gather_backward
    >>> table, w = np.arange(6.0).reshape(3, 2), np.array([[1.0], [10.0]])
    >>> dw, db, dtable = projected_gather_backward(table, np.array([[2, 2]]), w,
    ...                                            np.ones((1, 2, 1)))
    >>> dw.tolist(), db.tolist(), dtable.tolist()
    ([[8.0], [10.0]], [2.0], [[0.0, 0.0], [0.0, 0.0], [2.0, 20.0]])
    """
    s = scatter_add(ids, dy, table.shape[0])
    dtable = s @ w.T
    if padding_idx is not None:
        dtable[padding_idx] = 0
    return table.T @ s, s.sum(axis=0), dtable
