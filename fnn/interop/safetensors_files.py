"""The ``.safetensors`` format (Hugging Face's; PyTorch, JAX and TensorFlow read it) for any
fnn tree: ``fnn.save("m.safetensors", tree)`` and ``fnn.load("m.safetensors", like=)``
choose it by the extension. Written and read here with ``json`` and numpy (no extra, no
pickle, nothing executed).

A file is an 8-byte little-endian header size, a JSON header ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}`` and the tensors' bytes. fnn writes
each array leaf under its tree path (``"00_conv2d/w"``) and the tree's structure (the same
JSON manifest as in ``.npz`` files, :mod:`fnn.io`) in ``__metadata__["fnn"]``, so params, state
and optimiser states come back with their types, bit for bit. A file written elsewhere (a
PyTorch ``state_dict`` saved by ``safetensors.torch.save_file``) loads as a flat dict
``{name: array}``; ``BF16`` tensors are widened to float32 (exactly).

Reading checks the whole header before allocating anything: a header or tensor larger than
the file, a size that does not match the shape and dtype, overlapping byte ranges or an
unknown dtype is refused (:class:`fnn.FnnFileError` from :func:`fnn.load`).

>>> import os, tempfile, numpy as np, fnn
>>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
>>> fnn.save(path, {"00_linear": {"w": np.ones((2, 3), np.float32)}, "01_relu": {}})
>>> fnn.load(path)["00_linear"]["w"].shape
(2, 3)
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

#: safetensors dtype names and the numpy dtypes they are read as (all little-endian)
DTYPES: dict[str, np.dtype] = {name: np.dtype(code) for name, code in (
    ("BOOL", "?"), ("U8", "u1"), ("I8", "i1"), ("U16", "<u2"), ("I16", "<i2"),
    ("U32", "<u4"), ("I32", "<i4"), ("U64", "<u8"), ("I64", "<i8"), ("F16", "<f2"),
    ("F32", "<f4"), ("F64", "<f8"), ("BF16", "<u2"))}
_NAMES = {(dtype.kind, dtype.itemsize): name for name, dtype in DTYPES.items() if name != "BF16"}
MAX_HEADER = 100 << 20  # as the safetensors library: a header larger than this is refused
META_KEY = "fnn"  # __metadata__ entry holding fnn's JSON manifest


class SafetensorsError(ValueError):
    """A ``.safetensors`` file that is damaged, forged or not one (:func:`read`'s default
    ``error``; :func:`fnn.load` asks for :class:`fnn.FnnFileError`)."""


def dtype_name(array: np.ndarray, name: str) -> str:
    """The safetensors name of ``array``'s dtype; ``TypeError`` naming the leaf otherwise.

    >>> from fnn.interop.safetensors_files import dtype_name
    >>> dtype_name(np.zeros(2, np.float32), "w"), dtype_name(np.zeros(2, bool), "mask")
    ('F32', 'BOOL')
    """
    found = _NAMES.get((array.dtype.kind, array.dtype.itemsize))
    if found is None:
        raise TypeError(f"save: {name} has dtype {array.dtype}, which .safetensors cannot hold "
                        f"(it holds {', '.join(n for n in DTYPES if n != 'BF16')})")
    return found


def write(f: IO[bytes], manifest: dict | None, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (names to arrays) as a safetensors file to the binary file ``f``, with
    ``manifest`` (JSON-able) in ``__metadata__["fnn"]`` unless None. Tensors are laid out in
    name order, little-endian, C order; the header is padded with spaces to 8 bytes."""
    header: dict[str, Any] = {}
    if manifest is not None:
        header["__metadata__"] = {META_KEY: json.dumps(manifest, separators=(",", ":"))}
    offset, blobs = 0, []
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        kind = dtype_name(a, name)
        data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": kind, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for data in blobs:
        f.write(data)


def _entries(header: dict, data_size: int, where: str,
             error: type[Exception]) -> dict[str, tuple[str, tuple, int]]:
    """``{name: (dtype, shape, begin)}`` of a parsed header, every entry checked against the
    ``data_size`` bytes that follow the header (nothing is allocated here)."""
    entries, ranges = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            kind, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise error(f"{where}: tensor {name!r} has a damaged header entry "
                                   f"{info!r:.200}") from None
        if kind not in DTYPES:
            raise error(f"{where}: tensor {name!r} has dtype {kind!r}, which fnn "
                                   f"does not read (it reads {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) \
                or not all(type(o) is int for o in (begin, end)):
            raise error(f"{where}: tensor {name!r} has a damaged shape or offsets "
                                   f"({shape!r:.100}, {info['data_offsets']!r:.100})")
        nbytes = math.prod(shape) * DTYPES[kind].itemsize
        if not 0 <= begin <= end <= data_size:
            raise error(
                f"{where}: tensor {name!r} declares bytes [{begin}, {end}) but the file holds "
                f"{data_size} bytes of data; refusing to allocate it (damaged or forged file)")
        if end - begin != nbytes:
            raise error(
                f"{where}: tensor {name!r} declares shape {tuple(shape)} of {kind} ({nbytes} "
                f"bytes) in a range of {end - begin} bytes (damaged or forged file)")
        entries[name] = (kind, tuple(shape), begin)
        ranges.append((begin, end, name))
    ranges.sort()
    for (_, end, first), (begin, _, second) in zip(ranges, ranges[1:]):
        if begin < end:
            raise error(f"{where}: tensors {first!r} and {second!r} overlap in the "
                                   "file (damaged or forged file)")
    return entries


def _header(f: IO[bytes], size: int, where: str, error: type[Exception]) -> dict:
    """The parsed JSON header of a file of ``size`` bytes, its declared size checked first."""
    if size < 8:
        raise error(f"{where}: {size} bytes are too few for a .safetensors file")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > min(size - 8, MAX_HEADER):
        raise error(f"{where}: the header declares {n} bytes in a {size}-byte file; "
                               "refusing to allocate it (damaged, truncated or not a "
                               ".safetensors file)")
    try:
        header = json.loads(f.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{where}: the header is not JSON ({err}): damaged or not a "
                               ".safetensors file") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise error(f"{where}: the header is not a safetensors header (a JSON "
                               "object of tensors, with string metadata)")
    return header


def read(path: str | os.PathLike, *, fmt: str, where: str = "load",
         error: type[Exception] = SafetensorsError) -> tuple[dict, dict[str, np.ndarray]]:
    """``(manifest, arrays)`` of a ``.safetensors`` file: fnn's manifest when fnn wrote it,
    else a manifest of format ``fmt`` describing a flat dict of every tensor by name. Every
    header entry is checked before any tensor is allocated; a bad file raises ``error``."""
    path = Path(path).expanduser()
    where = f"{where}: {path}"
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header = _header(f, size, where, error)
        start = f.tell()
        entries = _entries(header, size - start, where, error)
        arrays = {}
        for name, (kind, shape, begin) in entries.items():
            out = np.empty(shape, DTYPES[kind])
            f.seek(start + begin)
            if f.readinto(out.reshape(-1).view(np.uint8).data) != out.nbytes:
                raise error(f"{where}: tensor {name!r} is truncated")
            if kind == "BF16":  # the upper half of a float32: widened exactly
                out = (out.astype(np.uint32) << 16).view(np.float32)
            arrays[name] = out.astype(out.dtype.newbyteorder("="), copy=False)
    meta = header.get("__metadata__", {})
    if META_KEY in meta:
        try:
            return json.loads(meta[META_KEY]), arrays
        except json.JSONDecodeError as err:
            raise error(f"{where}: has a damaged fnn manifest ({err})") from None
    return {"format": fmt, "tree": {"dict": {k: {"array": k} for k in sorted(arrays)}}}, arrays


__all__ = ["DTYPES", "SafetensorsError", "dtype_name", "read", "write"]
