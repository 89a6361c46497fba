"""The container every loader returns, and the flat/image layout switch."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


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
