"""The IDX format of MNIST and Fashion-MNIST (plain or gzipped).

Layout, every integer big-endian: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8,
``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions,
then one uint32 per dimension, then the data in C order. As one uint32 the first four bytes
are the "magic": 2051 (``0x00000803``) for uint8 images ``(N, rows, cols)``, 2049
(``0x00000801``) for uint8 labels ``(N,)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from fnn.datasets.base import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, name: str = "<bytes>", *, magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes (gunzipped when they start with the gzip signature) into an array in
    native byte order. ``magic`` (e.g. 2051) is checked when given; ``name`` goes into errors.

    >>> import numpy as np
    >>> raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    >>> parse_idx(raw, magic=2049)
    array([7, 8, 9], dtype=uint8)
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise DatasetError(f"{name}: truncated gzip stream (the download was cut short?)") from None
        except (OSError, zlib.error) as err:
            raise DatasetError(f"{name}: damaged gzip data ({err})") from None
    if len(data) < 4:
        raise DatasetError(f"{name}: truncated IDX file ({len(data)} bytes, no complete header)")
    found = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _TYPES or ndim == 0:
        raise DatasetError(
            f"{name}: not an IDX file (bad magic 0x{found:08x}"
            + (f"; expected 0x{magic:08x} = {magic}" if magic is not None else "") + ")"
        )
    if magic is not None and found != magic:
        raise DatasetError(
            f"{name}: bad IDX magic {found} (0x{found:08x}), expected {magic} (0x{magic:08x}: "
            f"{'images' if magic == IMAGES_MAGIC else 'labels' if magic == LABELS_MAGIC else 'data'})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[code])
    count = int(np.prod(shape, dtype=np.int64))
    need = header + count * dtype.itemsize
    if len(data) < need:
        raise DatasetError(
            f"{name}: truncated IDX data: shape {shape} needs {need} bytes, the file has {len(data)}"
        )
    if len(data) > need:
        raise DatasetError(
            f"{name}: {len(data) - need} unexpected bytes after the IDX data of shape {shape}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or not) into a numpy array; see :func:`parse_idx`.

    >>> import gzip, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1]))
    >>> read_idx(path, magic=2049)
    array([3, 1, 4, 1], dtype=uint8)
    >>> read_idx("fashion-mnist/train-images-idx3-ubyte.gz").shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    path = Path(path)
    return parse_idx(path.read_bytes(), str(path), magic=magic)
