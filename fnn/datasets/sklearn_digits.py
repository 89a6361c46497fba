"""scikit-learn's 8x8 handwritten digits: ships with scikit-learn, so it works offline."""

from __future__ import annotations

import numpy as np

from fnn._extras import require
from fnn.datasets.base import Dataset, check_layout, layout_images


def digits(*, test_size: float = 0.25, seed: int = 0, layout: str = "flat") -> Dataset:
    """1797 digits (8x8, values 0..16 scaled to [0, 1]), stratified train/test split.

    >>> import fnn
    >>> data = fnn.datasets.digits()
    >>> data.x_train.shape, data.x_test.shape, data.x_train.dtype, data.num_classes
    ((1347, 64), (450, 64), dtype('float32'), 10)
    """
    check_layout("digits", layout)
    load_digits = require("sklearn.datasets", "fnn.datasets.digits").load_digits
    train_test_split = require("sklearn.model_selection", "fnn.datasets.digits").train_test_split

    raw = load_digits()
    x = (raw.data / 16.0).astype(np.float32)
    y = raw.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return Dataset(
        layout_images(x_tr, (8, 8), layout), y_tr,
        layout_images(x_te, (8, 8), layout), y_te,
        tuple(str(i) for i in range(10)),
    )
