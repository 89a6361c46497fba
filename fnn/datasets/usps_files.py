"""USPS handwritten digits (Hull 1994): 16x16 grey images, 7291 train / 2007 test.

Three file formats are read, gzipped or not (``.gz`` is detected from the content):

* ``usps.h5`` — both splits: HDF5 groups ``train`` and ``test``, each with ``data``
  ``(N, 256)`` in [0, 1] and ``target`` ``(N,)``. Needs ``h5py``; skipped when it is missing.
* the ESL "zip.train" text (``zip.train``, ``ziptrain.dat``, ``zip.test``, ``ziptest.dat``):
  no header, rows ``label v1 .. v256`` with the label written as a float (``6.0000``) and
  values in [-1, 1]; mapped to [0, 1] by ``(v + 1) / 2``.
* the course text (``USPS_train.txt``, ``USPS_test.txt``): a header line ``10 256``, rows
  ``label v1 .. v256`` with values in [0, 2], and a final ``-1`` line; mapped by ``v / 2``.

The two text formats are told apart by their first line (2 numbers: course header; 257: ESL).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np

from fnn._extras import MissingExtraError
from fnn.datasets.base import Dataset, DatasetError, check_layout, data_home, layout_images

#: Expected number of rows per split; every loaded file is checked against it.
SIZES = {"train": 7291, "test": 2007}
SUBDIR = "usps"
H5_NAME = "usps.h5"
#: Text files tried for each split, in order (each also with ``.gz``), after ``usps.h5``.
TEXT_NAMES = {
    "train": ("zip.train", "ziptrain.dat", "USPS_train.txt"),
    "test": ("zip.test", "ziptest.dat", "USPS_test.txt"),
}
_PIXELS = 256


def _have_h5py() -> bool:
    try:
        import h5py  # noqa: F401
    except ImportError:
        return False
    return True


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise DatasetError(f"{path}: damaged or truncated gzip file ({err})") from None
    return raw


def _read_h5(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if split not in f:
                raise DatasetError(f"{path}: no group {split!r} (groups: {sorted(f)})")
            g = f[split]
            missing = [k for k in ("data", "target") if k not in g]
            if missing:
                raise DatasetError(f"{path}: group {split!r} lacks {missing} (has {sorted(g)})")
            x = np.asarray(g["data"][()], dtype=np.float32)
            y = np.asarray(g["target"][()])
    except DatasetError:
        raise
    except OSError as err:
        raise DatasetError(f"{path}: not a readable HDF5 file ({err})") from None
    if x.ndim != 2 or x.shape[1] != _PIXELS:
        raise DatasetError(f"{path}: {split}/data has shape {x.shape}, expected (N, {_PIXELS})")
    return x, _labels(path, y)


def _labels(path: Path, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    yi = np.rint(np.nan_to_num(y, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(np.int64)
    bad = np.flatnonzero((yi != y) | (yi < 0) | (yi > 9))
    if bad.size:
        raise DatasetError(
            f"{path}: labels must be integers 0..9; row {bad[0]} has label {y[bad[0]]!r}"
        )
    return yi


def _read_text(path: Path) -> tuple[np.ndarray, np.ndarray]:
    text = _read_bytes(path)
    first_end = text.find(b"\n")
    first = (text if first_end < 0 else text[:first_end]).split()
    if len(first) == 2:  # course format: header "10 256", rows in [0, 2], final "-1" line
        if first[1] != b"%d" % _PIXELS:
            raise DatasetError(f"{path}: header {b' '.join(first).decode()!r} announces "
                               f"{first[1].decode()} features, expected {_PIXELS}")
        body = text[first_end + 1:].rstrip()
        last_nl = body.rfind(b"\n")
        if body[last_nl + 1:].strip() == b"-1":
            body = body[:last_nl + 1]
        low, high, fmt = 0.0, 2.0, "course text (values in [0, 2])"
    elif len(first) == _PIXELS + 1:  # ESL zip.train format, values in [-1, 1]
        body, low, high, fmt = text, -1.0, 1.0, "ESL zip text (values in [-1, 1])"
    else:
        raise DatasetError(
            f"{path}: unknown USPS text format: the first line has {len(first)} numbers; "
            f"expected 2 (course header '10 256') or {_PIXELS + 1} (ESL 'label v1 .. v256')"
        )
    try:  # numpy >= 1.23 parses text in C: faster than split()/fromstring here
        table = np.loadtxt(io.BytesIO(body), dtype=np.float64, ndmin=2)
    except ValueError as err:
        why = str(err).split("; use `usecols`")[0]
        after = ", rows counted after the header line" if len(first) == 2 else ""
        raise DatasetError(f"{path}: cannot parse as {fmt}{after}: {why}") from None
    if table.shape[1] != _PIXELS + 1:
        raise DatasetError(f"{path}: rows have {table.shape[1]} numbers, expected "
                           f"{_PIXELS + 1} (label + {_PIXELS} values)")
    v = table[:, 1:]
    if not np.isfinite(v).all():
        raise DatasetError(f"{path}: non-finite values (nan/inf) in the {fmt}")
    if v.size and (v.min() < low - 1e-6 or v.max() > high + 1e-6):
        raise DatasetError(f"{path}: values span [{v.min():g}, {v.max():g}], outside "
                           f"[{low:g}, {high:g}] expected for the {fmt}")
    x = ((v - low) / (high - low)).astype(np.float32)
    return x, _labels(path, table[:, 0])


def read_usps(path: str | os.PathLike, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one USPS file in any accepted format: ``(x, y)`` with ``x (N, 256)`` float32 in
    [0, 1] (row by row: ``reshape(16, 16)`` is upright) and ``y (N,)`` int64 in 0..9.

    ``split`` (``"train"``/``"test"``) picks the group of an HDF5 file and is ignored for text
    files. The row count is not checked here (:func:`usps` does).

    >>> import gzip, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "USPS_test.txt.gz")
    >>> rows = ["10 256", "3 " + " ".join(["2"] * 128 + ["0"] * 128), "-1"]
    >>> with gzip.open(path, "wt") as f:
    ...     _ = f.write("\\n".join(rows) + "\\n")
    >>> x, y = read_usps(path)
    >>> x.shape, x.dtype, y.tolist(), float(x[0, 0]), float(x[0, -1])
    ((1, 256), dtype('float32'), [3], 1.0, 0.0)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_usps: no such file: {path}")
    with open(path, "rb") as f:
        is_h5 = f.read(8) == b"\x89HDF\r\n\x1a\n"
    if is_h5:
        if split not in SIZES:
            raise ValueError(f"read_usps: {path} holds both splits; pass split='train' or "
                             f"'test', got {split!r}")
        if not _have_h5py():
            raise MissingExtraError(f"read_usps: reading {path} needs h5py, which is not "
                                    "installed: pip install 'fnn[data]'")
        return _read_h5(path, split)
    return _read_text(path)


def _find(folder: Path, split: str) -> Path | None:
    if _have_h5py() and (folder / H5_NAME).is_file():
        return folder / H5_NAME
    for name in TEXT_NAMES[split]:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def usps(data_dir: str | os.PathLike | None = None, *, layout: str = "flat") -> Dataset:
    """The USPS digits, 7291 train / 2007 test, pixels in [0, 1] float32, labels int64.

    Files are looked up in ``<root>/usps/``, where ``root`` is ``data_dir`` if given, else the
    environment variable ``FNN_DATA``, else ``~/.cache/fnn`` (see :func:`data_home`). For
    each split the first present file is used, in this order: ``usps.h5`` (if ``h5py`` is
    importable), then ``zip.<split>``, ``zip<split>.dat``, ``USPS_<split>.txt``, each also
    as ``.gz`` (formats in the module docstring). USPS is never downloaded. Each split is
    checked (row count, 256 values, labels 0..9, value range); errors name the file.

    ``layout``: ``"flat"`` ``(N, 256)``, ``"image"`` ``(N, 16, 16, 1)`` or ``"signal"``
    ``(N, 256, 1)`` (a 1-D signal for Conv1D).

    The standard test set is harder than the training set (other writers): with early
    stopping on a validation hold-out the report's Conv1D net scores about 94% on it and
    about 96.5% on a random re-split of the pooled 9298 images (:func:`resplit`). State which
    split a number comes from.

    >>> import fnn
    >>> data = fnn.datasets.usps(layout="image")  # doctest: +SKIP
    >>> data.x_train.shape, data.x_test.shape, data.class_names[:3]  # doctest: +SKIP
    ((7291, 16, 16, 1), (2007, 16, 16, 1), ('0', '1', '2'))
    """
    check_layout("usps", layout)
    folder = data_home(data_dir) / SUBDIR
    arrays = []
    for split, rows in SIZES.items():
        path = _find(folder, split)
        if path is None:
            names = ", ".join(f"{n}[.gz]" for n in TEXT_NAMES[split])
            h5 = H5_NAME if _have_h5py() else f"{H5_NAME} (needs h5py, not installed)"
            raise FileNotFoundError(
                f"usps: no {split} file in {folder}: looked for {h5}, {names}. Put the USPS "
                f"files there, or pass data_dir= / set $FNN_DATA to the folder that "
                f"contains usps/ (USPS is not downloaded automatically)."
            )
        x, y = read_usps(path, split)
        if len(x) != rows:
            raise DatasetError(f"usps: {path} has {len(x)} {split} rows, expected {rows}")
        arrays += [layout_images(x, (16, 16), layout), y]
    x_train, y_train, x_test, y_test = arrays  # SIZES: train, then test
    return Dataset(x_train, y_train, x_test, y_test, tuple(str(i) for i in range(10)))
