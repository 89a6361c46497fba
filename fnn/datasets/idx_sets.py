"""Fashion-MNIST and MNIST: 28x28 grey images, 60000 train / 10000 test, from the four
upstream IDX ``.gz`` files, SHA-256 checked, downloaded once into the data folder if missing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from fnn.datasets.base import (
    DATA_ENV,
    Dataset,
    DatasetError,
    check_layout,
    data_home,
    layout_images,
)
from fnn.datasets.downloader import ChecksumError, DownloadError
from fnn.datasets.downloader import download as _download
from fnn.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx

#: Where missing files are fetched from (``BASE_URLS[name] + file name``); change it to use a
#: mirror.
BASE_URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}

#: The four files of each data set and their published SHA-256 (of the ``.gz`` bytes).
CHECKSUMS = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
}

#: Expected number of images per split.
SIZES = {"train": 60000, "test": 10000}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

_PREFIX = {"train": "train", "test": "t10k"}


def _fetch(fn: str, name: str, folder: Path, fname: str, download: bool, progress: bool) -> bytes:
    """The verified bytes of one file, downloading it first if allowed and missing."""
    path = folder / fname
    sha = CHECKSUMS[name][fname]
    files = ", ".join(CHECKSUMS[name])
    if not path.is_file():
        if not download:
            raise FileNotFoundError(
                f"{fn}: {path} not found (download=False). Put the four files ({files}) in "
                f"{folder}, or pass data_dir= / set ${DATA_ENV} to a folder that contains "
                f"{name}/, or call with download=True."
            )
        url = BASE_URLS[name] + fname
        try:
            _download(url, path, sha, progress=progress)
        except DownloadError as err:
            raise DownloadError(
                f"{fn}: could not download {url} into {folder}: {err}. If this machine is "
                f"offline, copy the four files ({files}) into {folder} by hand, or set "
                f"${DATA_ENV} (or pass data_dir=) to a folder that contains {name}/ with them."
            ) from err
        except ChecksumError:
            raise
        except OSError as err:  # e.g. the folder is not writable
            raise OSError(
                f"{fn}: cannot save {fname} into {folder} ({err}); pass data_dir= or set "
                f"${DATA_ENV} to a writable folder"
            ) from err
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        raise ChecksumError(
            f"{fn}: {path} has SHA-256 {digest}, expected the published {sha}: the file is "
            f"damaged or not the official one; delete it"
            + (" and it will be downloaded again" if download else " and put the right file there")
        )
    return data


def _load(fn: str, name: str, data_dir, layout: str, download: bool, progress: bool,
          class_names: tuple[str, ...]) -> Dataset:
    check_layout(fn, layout)
    folder = data_home(data_dir) / name
    arrays = []
    for split, n in SIZES.items():
        img_name = f"{_PREFIX[split]}-images-idx3-ubyte.gz"
        lab_name = f"{_PREFIX[split]}-labels-idx1-ubyte.gz"
        images = parse_idx(_fetch(fn, name, folder, img_name, download, progress),
                           str(folder / img_name), magic=IMAGES_MAGIC)
        labels = parse_idx(_fetch(fn, name, folder, lab_name, download, progress),
                           str(folder / lab_name), magic=LABELS_MAGIC)
        if images.shape != (n, 28, 28):
            raise DatasetError(f"{fn}: {folder / img_name} holds images of shape "
                               f"{images.shape}, expected {(n, 28, 28)}")
        if labels.shape != (n,) or labels.max(initial=0) >= len(class_names):
            raise DatasetError(f"{fn}: {folder / lab_name} holds labels of shape {labels.shape} "
                               f"(max {labels.max(initial=0)}), expected {(n,)} in 0..9")
        x = np.divide(images, np.float32(255.0), dtype=np.float32)  # one pass, no temp
        arrays += [layout_images(x, (28, 28), layout), labels.astype(np.int64)]
    x_train, y_train, x_test, y_test = arrays  # SIZES: train, then test
    return Dataset(x_train, y_train, x_test, y_test, class_names)


def fashion_mnist(data_dir: str | os.PathLike | None = None, *, layout: str = "flat",
                  download: bool = True, progress: bool = True) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017): 60000 train / 10000 test 28x28 clothing images.

    Pixels are scaled to [0, 1] float32 (0 is the black background), labels are int64 0..9,
    ``class_names`` are the ten clothing names (``FASHION_CLASSES``). ``layout``: ``"flat"``
    ``(N, 784)``, ``"image"`` ``(N, 28, 28, 1)`` or ``"signal"`` ``(N, 784, 1)``.

    The four upstream files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``) are read from
    ``<root>/fashion-mnist/``, where ``root`` is ``data_dir`` if given, else the environment
    variable ``FNN_DATA``, else ``~/.cache/fnn``. Their SHA-256 is checked on every load.
    Missing files are downloaded from ``BASE_URLS["fashion-mnist"]`` when ``download`` (a
    tqdm bar on stderr when ``progress``); offline, the error names the URL and the folder.

    >>> import fnn
    >>> data = fnn.datasets.fashion_mnist(layout="image")  # doctest: +SKIP
    >>> data.x_train.shape, data.x_test.shape, data.class_names[0]  # doctest: +SKIP
    ((60000, 28, 28, 1), (10000, 28, 28, 1), 'T-shirt/top')
    """
    return _load("fashion_mnist", "fashion-mnist", data_dir, layout, download, progress,
                 FASHION_CLASSES)


def mnist(data_dir: str | os.PathLike | None = None, *, layout: str = "flat",
          download: bool = True, progress: bool = True) -> Dataset:
    """MNIST (LeCun et al. 1998): 60000 train / 10000 test 28x28 handwritten digits.

    Same as :func:`fashion_mnist` (scaling, layouts, checksums, download), with the files in
    ``<root>/mnist/`` (``root``: ``data_dir``, else ``$FNN_DATA``, else ``~/.cache/fnn``),
    fetched from ``BASE_URLS["mnist"]``; ``class_names`` are ``"0"`` .. ``"9"``.

    >>> import fnn
    >>> data = fnn.datasets.mnist()  # doctest: +SKIP
    >>> data.x_train.shape, data.y_test[:5].tolist()  # doctest: +SKIP
    ((60000, 784), [7, 2, 1, 0, 4])
    """
    return _load("mnist", "mnist", data_dir, layout, download, progress,
                 tuple(str(i) for i in range(10)))
