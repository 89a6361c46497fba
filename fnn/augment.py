"""Data augmentation for image batches ``(N, H, W, C)``: pure functions of a key.

Every function takes a random key first and returns new arrays (inputs are never changed), so an
augmented run is as reproducible — and as exactly resumable from a checkpoint — as a plain one.
:func:`augmented` wraps :func:`fnn.batches` so each batch is transformed with a key derived from
the epoch and the batch's position (``fold_in(fold_in(key, epoch), batch)``):

>>> import numpy as np, fnn
>>> x, y = np.random.default_rng(0).random((64, 16, 16, 1), np.float32), np.arange(64) % 10
>>> data = fnn.augment.augmented(fnn.batches(x, y, batch_size=32), fnn.key(0),
...                              shift=2, degrees=10)
>>> xb, yb = next(iter(data.epoch(0)))
>>> xb.shape, xb.dtype, len(data)
((32, 16, 16, 1), dtype('float32'), 2)

Shifts move each image by whole pixels (``-max .. max`` on each axis, filled with ``fill``);
rotations turn each image about its centre by an angle drawn uniformly in
``[-degrees, degrees]``, with bilinear interpolation and ``fill`` outside the image.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fnn.keys import Key, fold_in, rng
from fnn.validate import integer, real

__all__ = ["augmented", "random_rotations", "random_shifts", "rotate", "shift"]


def _images(where: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ValueError(f"{where}: expects float images (N, H, W, C), got {x.dtype} {x.shape}")
    return x


def shift(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Move image ``i`` of ``x: (N, H, W, C)`` by ``dy[i]`` rows down and ``dx[i]`` columns
    right (integers; uncovered pixels get ``fill``).

    >>> import numpy as np, fnn
    >>> img = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> fnn.augment.shift(img, np.array([1]), np.array([-1]))[0, :, :, 0]
    array([[0., 0., 0.],
           [1., 2., 0.],
           [4., 5., 0.]])
    """
    x = _images("shift", x)
    n, h, w, _ = x.shape
    dy, dx = np.broadcast_to(np.asarray(dy, int), (n,)), np.broadcast_to(np.asarray(dx, int), (n,))
    rows = np.arange(h)[None, :] - dy[:, None]  # source row of every target row, per image
    cols = np.arange(w)[None, :] - dx[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    out = x[np.arange(n)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
            np.clip(cols, 0, w - 1)[:, None, :]]
    out[~inside] = fill
    return out


def random_shifts(key: Key, x: np.ndarray, max_shift: int = 2, fill: float = 0.0) -> np.ndarray:
    """Each image shifted by whole pixels drawn uniformly in ``[-max_shift, max_shift]`` on
    each axis (see :func:`shift`).

    >>> import numpy as np, fnn
    >>> x = np.ones((4, 8, 8, 1), np.float32)
    >>> fnn.augment.random_shifts(fnn.key(0), x, 2).shape
    (4, 8, 8, 1)
    """
    x = _images("random_shifts", x)
    max_shift = integer("random_shifts", "max_shift", max_shift, minimum=0)
    offsets = rng(key).integers(-max_shift, max_shift + 1, size=(2, len(x)))
    return shift(x, offsets[0], offsets[1], fill)


def rotate(x: np.ndarray, degrees, fill: float = 0.0) -> np.ndarray:
    """Rotate image ``i`` of ``x: (N, H, W, C)`` counter-clockwise by ``degrees[i]`` about its
    centre, bilinear; points that come from outside the image get ``fill``.

    >>> import numpy as np, fnn
    >>> img = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> np.allclose(fnn.augment.rotate(img, [90.0]), np.rot90(img, axes=(1, 2)))
    True
    """
    x = _images("rotate", x)
    n, h, w, c = x.shape
    theta = np.deg2rad(np.broadcast_to(np.asarray(degrees, dtype=float), (n,)))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    # the source of each target pixel: rotate the target grid back (rows grow downwards)
    src_y = cos * yy + sin * xx + cy
    src_x = -sin * yy + cos * xx + cx
    y0, x0 = np.floor(src_y).astype(int), np.floor(src_x).astype(int)
    fy, fx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    batch = np.arange(n)[:, None, None]
    out = np.zeros_like(x)
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        r, q = y0 + oy, x0 + ox
        ok = ((r >= 0) & (r < h) & (q >= 0) & (q < w))[..., None]
        pixel = x[batch, np.clip(r, 0, h - 1), np.clip(q, 0, w - 1)]
        out += (weight * np.where(ok, pixel, fill)).astype(x.dtype, copy=False)
    return out


def _degrees(who: str, degrees: float) -> float:
    return real(who, "degrees", degrees, lo=0.0, hi=180.0, expected="a number in [0, 180]")


def random_rotations(key: Key, x: np.ndarray, degrees: float = 10.0,
                     fill: float = 0.0) -> np.ndarray:
    """Each image rotated by an angle drawn uniformly in ``[-degrees, degrees]`` (see
    :func:`rotate`).

    >>> import numpy as np, fnn
    >>> fnn.augment.random_rotations(fnn.key(0), np.ones((2, 8, 8, 1), np.float32), 15).shape
    (2, 8, 8, 1)
    """
    x = _images("random_rotations", x)
    degrees = _degrees("random_rotations", degrees)
    return rotate(x, rng(key).uniform(-degrees, degrees, len(x)), fill)


class Augmented:
    """:func:`fnn.batches` whose images are transformed afresh in every epoch (see
    :func:`augmented`); a drop-in ``data`` for :func:`fnn.train`, checkpoints included."""

    def __init__(self, data, key: Key, shift: int, degrees: float, fill: float):
        if not hasattr(data, "epoch"):
            raise TypeError("augmented: data must be fnn.batches(...) (it needs epoch(i))")
        self.data, self.key, self.shift, self.degrees, self.fill = data, key, shift, degrees, fill

    def __len__(self) -> int:
        return len(self.data)

    def transform(self, key: Key, x: np.ndarray) -> np.ndarray:
        k_shift, k_rotate = fold_in(key, 0), fold_in(key, 1)
        if self.degrees:
            x = random_rotations(k_rotate, x, self.degrees, self.fill)
        if self.shift:
            x = random_shifts(k_shift, x, self.shift, self.fill)
        return x

    def epoch(self, i: int, start: int = 0) -> Iterable[tuple]:
        epoch_key = fold_in(self.key, i)
        for b, (x, *rest) in enumerate(self.data.epoch(i, start), start):
            yield (self.transform(fold_in(epoch_key, b), x), *rest)

    def __iter__(self):
        raise TypeError("augmented data is iterated by epoch: data.epoch(i) (fnn.train does so)")

    def describe(self) -> dict:
        entropy = self.key.entropy
        key = [entropy if isinstance(entropy, int) or entropy is None else list(entropy),
               list(self.key.spawn_key)]
        return {**self.data.describe(), "augment": {"shift": self.shift,
                                                    "degrees": self.degrees, "fill": self.fill,
                                                    "key": key}}


def augmented(data, key: Key, *, shift: int = 2, degrees: float = 10.0,
              fill: float = 0.0) -> Augmented:
    """Wrap ``data = fnn.batches(x, y, ...)`` (``x`` images ``(N, H, W, C)``) so every batch's
    images are rotated by up to ``degrees`` and shifted by up to ``shift`` pixels, with keys
    derived from ``key``, the epoch and the batch position: the same run every time, resumable
    mid-epoch. Other arrays of the batch (labels) pass unchanged.

    >>> import numpy as np, fnn
    >>> x = np.zeros((8, 6, 6, 1), np.float32)
    >>> data = fnn.augment.augmented(fnn.batches(x, np.arange(8), batch_size=4), fnn.key(0))
    >>> [xb.shape for xb, yb in data.epoch(0)]
    [(4, 6, 6, 1), (4, 6, 6, 1)]
    """
    if not isinstance(key, np.random.SeedSequence):
        raise TypeError(f"augmented: key must be an fnn key (fnn.key(seed)), got {key!r}")
    return Augmented(data, key, integer("augmented", "shift", shift, minimum=0),
                     _degrees("augmented", degrees), real("augmented", "fill", fill))
