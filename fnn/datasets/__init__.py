"""Datasets: every loader returns a :class:`Dataset` of float32 images in [0, 1] and int labels."""

from fnn.datasets.base import Dataset, layout_images
from fnn.datasets.digits import digits

__all__ = ["Dataset", "digits", "layout_images"]
