"""Stochastic layers (dropout): they act only in ``vjp`` (training) and need a key there."""

from __future__ import annotations

import numpy as np

from fnn.checks import LayerError
from fnn.core import Layer
from fnn.layers.base import parameter_free
from fnn.threads import batch_rows
from fnn.validate import fraction


def dropout(rate: float) -> Layer:
    """Inverted dropout: in ``vjp`` each entry is zeroed with probability ``rate`` and the rest
    scaled by ``1 / (1 - rate)``; ``apply`` (inference) is the identity. In a batch split
    across processes (:mod:`fnn.distributed`), each draws the whole batch's mask and keeps its
    rows, so the masks are one process's.

    >>> import numpy as np, fnn
    >>> layer = fnn.dropout(0.5)
    >>> y, _ = layer.vjp({}, np.ones((2, 4)), key=fnn.key(0))
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    """
    rate = fraction("dropout", "rate", rate, hi_open=True)  # the drop probability
    label = f"dropout({rate})"
    keep = 1.0 - rate

    def train(x, key):
        if key is None:
            raise LayerError(
                f"{label}: training (vjp) needs a random key, e.g. model.vjp(params, x, "
                "key=fnn.key(step)); use apply for inference"
            )
        rows = batch_rows(len(x)) if x.ndim else None
        if rows is None:
            draws = np.random.default_rng(key).random(x.shape, dtype=np.float32)
        else:  # this process's rows of a batch split across processes: the whole batch's draws
            offset, total = rows
            whole = np.random.default_rng(key).random((total, *x.shape[1:]), dtype=np.float32)
            draws = whole[offset:offset + len(x)]
        mask = (draws < keep) / keep
        mask = mask.astype(x.dtype, copy=False)
        return x * mask, lambda dy: dy * mask

    return parameter_free(label, lambda x: x, train=train, kind="dropout",
                          config={"rate": rate})
