"""Token embeddings: integer ids ``(N, T)`` to vectors ``(N, T, D)`` (a table lookup)."""

from __future__ import annotations

import numpy as np

from fnn import initializers
from fnn.checks import LayerError
from fnn.core import Input, Layer
from fnn.layers.base import layer
from fnn.ops.embedding import gather, scatter_add
from fnn.validate import integer, positive_int


def check_ids(label: str, ids: np.ndarray, vocab_size: int) -> None:
    """A clear error when an id is outside ``[0, vocab_size)``, naming the layer.

    >>> import numpy as np
    >>> from fnn.layers.tokens import check_ids
    >>> check_ids("embedding(5, 2)", np.array([[0, 7]]), 5)
    Traceback (most recent call last):
    ...
    fnn.checks.LayerError: embedding(5, 2): ids must be in [0, 5), got 7 at (0, 1)
    """
    if ids.size == 0:
        return
    low, high = ids.min(), ids.max()
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        where = tuple(int(i) for i in np.argwhere(ids == bad)[0])
        raise LayerError(f"{label}: ids must be in [0, {vocab_size}), got {int(bad)} at {where}")


def embedding(vocab_size: int, dim: int, padding_idx: int | None = None, *,
              w_init="normal") -> Layer:
    """Rows of a learned table: integer ids ``(N, T)`` (any shape ``(N, ...)``) ->
    ``(N, T, dim)``; params ``{"table": (vocab_size, dim)}``, drawn from N(0, 1) as
    ``torch.nn.Embedding`` (whose ``weight`` is the table as is). ``padding_idx``: that row
    starts at zero and gets no gradient. Ids outside ``[0, vocab_size)`` or float ids are a
    :class:`fnn.LayerError` naming the layer. The backward adds ``dy`` rows into the table
    (:func:`fnn.ops.embedding.scatter_add`); ids get no gradient.

    >>> import numpy as np, fnn
    >>> layer = fnn.embedding(10, 4)
    >>> shape, params = layer.init(fnn.key(0), (-1, 7))
    >>> shape, params["table"].shape, layer.apply(params, np.zeros((2, 7), int)).shape
    ((-1, 7, 4), (10, 4), (2, 7, 4))
    """
    vocab_size = positive_int("embedding", "vocab_size", vocab_size)
    dim = positive_int("embedding", "dim", dim)
    label = f"embedding({vocab_size}, {dim})"
    if padding_idx is not None:
        padding_idx = integer(label, "padding_idx", padding_idx, minimum=-vocab_size,
                              maximum=vocab_size - 1) % vocab_size
    draw = initializers.get(w_init)

    def init(key, shape):
        table = draw(key, (vocab_size, dim))
        if padding_idx is not None and table.flags.writeable:  # not a shapes-only placeholder
            table[padding_idx] = 0
        return (*shape, dim), {"table": table}

    def forward(params, ids):
        check_ids(label, ids, vocab_size)
        return gather(params["table"], ids), ids

    def backward(params, ids, dy, input_grad):
        return {"table": scatter_add(ids, dy, vocab_size, padding_idx)}, None

    return layer(label, init, forward, backward, kind="embedding",
                 config={"vocab_size": vocab_size, "dim": dim, "padding_idx": padding_idx},
                 inputs=(Input("ids", "int"),))


__all__ = ["check_ids", "embedding"]
