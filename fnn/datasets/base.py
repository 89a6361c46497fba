"""The container every loader returns, the flat/image layout switch, and the data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: Environment variable naming the data folder (see :func:`data_home`).
DATA_ENV = "FNN_DATA"


class Dataset(NamedTuple):
    """Train/test arrays: images scaled to [0, 1] float32, integer labels (int64)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class DatasetError(ValueError):
    """A data file that is damaged, truncated, of the wrong format or with the wrong content.
    The message names the file."""


def layout_images(x: np.ndarray, side: tuple[int, int], layout: str) -> np.ndarray:
    """``(N, H*W)`` for ``"flat"``, ``(N, H, W, 1)`` for ``"image"``, ``(N, H*W, 1)`` for
    ``"signal"`` (a 1-D signal, as the report's Conv1D net reads USPS)."""
    n = len(x)
    if layout == "flat":
        return x.reshape(n, side[0] * side[1])
    if layout == "image":
        return x.reshape(n, side[0], side[1], 1)
    if layout == "signal":
        return x.reshape(n, side[0] * side[1], 1)
    raise ValueError(f"layout must be 'flat', 'image' or 'signal', got {layout!r}")


def check_layout(layout: str) -> None:
    """Fail before any file is read when ``layout`` is not one of the three names."""
    if layout not in ("flat", "image", "signal"):
        raise ValueError(f"layout must be 'flat', 'image' or 'signal', got {layout!r}")


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
