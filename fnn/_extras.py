"""Optional dependencies: imported only when a feature needs them, with an error naming the extra.

The core install (``pip install fnn``) has what the layers, training, files and threads need.
Plots need matplotlib (``fnn[plot]``); scikit-learn-backed parts (``fnn.datasets.digits``,
t-SNE and PCA in :func:`fnn.plot.embed_2d`) and reading ``usps.h5`` need ``fnn[data]``;
``fnn[all]`` has both. Exchanging models (:mod:`fnn.interop`): ``fnn[onnx]`` exports ONNX,
``fnn[torch]`` reads and writes PyTorch tensors and ``torch.save`` files;
``fnn.distributed`` needs mpi4py (``fnn[mpi]``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: the extra that provides each optional top-level package
EXTRAS = {"matplotlib": "plot", "sklearn": "data", "h5py": "data", "mpi4py": "mpi",
          "onnx": "onnx", "onnxruntime": "onnx", "torch": "torch", "safetensors": "safetensors",
          "sacrebleu": "text"}
#: the name pip knows a package by, where it differs from the import name
PIP_NAMES = {"sklearn": "scikit-learn"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` line."""


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtraError` naming the extra.

    >>> require("numpy", "fnn.layers").__name__
    'numpy'
    >>> require("no_such_module_xyz", "fnn.something")
    Traceback (most recent call last):
    ...
    fnn._extras.MissingExtraError: fnn.something needs no_such_module_xyz, which is not installed: pip install 'fnn[all]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        extra = EXTRAS.get(top, "all")
        raise MissingExtraError(
            f"{feature} needs {PIP_NAMES.get(top, top)}, which is not installed: "
            f"pip install 'fnn[{extra}]'"
        ) from e
