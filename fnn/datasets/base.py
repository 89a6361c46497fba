"""The container every loader returns, the flat/image layout switch, and the data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fnn.validate import integer, one_of

#: the ways loaders lay images out (see :func:`layout_images`)
LAYOUTS = ("flat", "image", "signal")

#: Environment variable naming the data folder (see :func:`data_home`).
DATA_ENV = "FNN_DATA"


class Dataset(NamedTuple):
    """Train/test arrays: images scaled to [0, 1] float32, integer labels (int64).

    Fields: ``x_train (N, ...)``, ``y_train (N,)``, ``x_test (M, ...)``, ``y_test (M,)``,
    ``class_names`` (one string per class); ``num_classes`` is ``len(class_names)``. There is no
    validation split: hold one out of the training set yourself (see the README's example).

    >>> import fnn
    >>> data = fnn.datasets.xor(100)
    >>> data.x_train.shape, data.y_train.shape, data.num_classes
    ((76, 2), (76,), 2)
    >>> x_train, y_train, x_test, y_test, names = data      # a NamedTuple unpacks
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """``len(class_names)``."""
        return len(self.class_names)


def resplit(data: Dataset, *, seed: int = 0, test_size: int | None = None) -> Dataset:
    """Pool train and test and draw a new random split of the same sizes (or ``test_size``
    test rows): a plain (not stratified) permutation drawn with ``seed``.

    Why: USPS's standard test set (2007 images) was written by other people than its training
    set and is known to be harder; papers that shuffle the 9298 images together report
    accuracies about 3 points higher. Use this to compare with such numbers, and say so.

    >>> import numpy as np
    >>> d = Dataset(np.arange(6.0)[:, None], np.arange(6) % 2, np.arange(6.0, 8)[:, None],
    ...             np.array([0, 1]), ("a", "b"))
    >>> r = resplit(d, seed=1)
    >>> r.x_train.shape, r.x_test.shape
    ((6, 1), (2, 1))
    >>> np.sort(np.concatenate([r.x_train, r.x_test]).ravel()).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    n_test = len(data.x_test) if test_size is None else test_size
    n_test = integer("resplit", "test_size", n_test, minimum=1, maximum=len(x) - 1)
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[n_test:], order[:n_test]
    return Dataset(x[train], y[train], x[test], y[test], data.class_names)


class DatasetError(ValueError):
    """A data file that is damaged, truncated, of the wrong format or with the wrong content.
    The message names the file.

    >>> import fnn
    >>> try:
    ...     fnn.datasets.parse_idx(bytes(2), "broken.idx")
    ... except fnn.datasets.DatasetError as e:
    ...     print(type(e).__name__, "broken.idx" in str(e))
    DatasetError True
    """


def layout_images(x: np.ndarray, side: tuple[int, int], layout: str) -> np.ndarray:
    """``(N, H*W)`` for ``"flat"``, ``(N, H, W, 1)`` for ``"image"``, ``(N, H*W, 1)`` for
    ``"signal"`` (a 1-D signal, as the report's Conv1D net reads USPS).

    >>> import numpy as np
    >>> from fnn.datasets import layout_images
    >>> x = np.zeros((5, 256), np.float32)
    >>> [layout_images(x, (16, 16), k).shape for k in ("flat", "image", "signal")]
    [(5, 256), (5, 16, 16, 1), (5, 256, 1)]
    """
    n = len(x)
    check_layout("layout_images", layout)
    if layout == "flat":
        return x.reshape(n, side[0] * side[1])
    if layout == "image":
        return x.reshape(n, side[0], side[1], 1)
    return x.reshape(n, side[0] * side[1], 1)


def check_layout(who: str, layout: str) -> str:
    """``layout`` if it is one of :data:`LAYOUTS`: loaders check it before reading any file."""
    return one_of(who, "layout", layout, LAYOUTS)


def data_home(data_dir: str | os.PathLike | None = None) -> Path:
    """The root data folder: ``data_dir`` if given, else ``$FNN_DATA``, else ``~/.cache/fnn``.

    Each data set lives in its own subfolder of it (``usps/``, ``fashion-mnist/``, ``mnist/``).
    The folder is not created here (downloads create it).

    >>> import os
    >>> str(data_home("/tmp/my-data"))
    '/tmp/my-data'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/fnn").expanduser()
