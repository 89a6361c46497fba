"""Save and load pytrees as ``.npz`` — no pickle, atomic writes, checked loads.

A file holds one pytree: nested dicts (string keys without ``/``), lists, tuples and
NamedTuples (an optimiser state, a :class:`fnn.TrainState`) whose leaves are numpy arrays,
numpy or Python scalars and random keys. Arrays are members ``"tree/<path>.npy"``
(``"tree/00_linear/w"``); a small JSON manifest (member ``"meta/manifest"``) records the
structure, so the tree comes back whole: empty dicts (layers without params), Python ints,
keys, the order of tuples. ``load(path, like=template)`` rebuilds the template's own types
(``ScaleByAdamState``, ``TrainState``) and names every key, shape and dtype that differs; without a
template NamedTuples come back as look-alike namedtuples of the same name and fields.

>>> import tempfile, os, fnn
>>> _, params = fnn.serial(fnn.linear(3), fnn.relu()).init(fnn.key(0), (-1, 4))
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fnn.save(path, params)
>>> loaded = fnn.load(path, like=params)
>>> sorted(loaded), loaded["00_linear"]["w"].shape
(['00_linear', '01_relu'], (4, 3))

Writes go to a temporary file in the same folder (mode 0644 under the usual umask), are
flushed and fsync'ed, renamed over the target and the folder is fsync'ed: a crash leaves the old
file or the new one, never half of one. Reads check every member before allocating it: a
member whose declared size does not fit the file (a zip bomb, a forged ``.npy`` header) or that
holds Python objects is refused with :class:`FnnFileError`.
"""

from __future__ import annotations

import collections
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnn.atomic import atomic_write as atomic_write  # re-exported: writers import it from here
from fnn.atomic import remove_orphans as remove_orphans

if TYPE_CHECKING:  # zipfile is imported where files are read: `import fnn` stays light
    import zipfile

FORMAT = "fnn-tree-2"
_OLD_FORMAT = "fnn-params-1"  # params-only files written before the manifest (still read)
_SECTION = "tree/"
_MANIFEST = "meta/manifest"
_MAX_RATIO = 64  # a member may declare at most this many times its compressed size ...
_SMALL = 16 << 20  # ... unless it is smaller than 16 MiB

__all__ = ["FnnFileError", "load", "save"]

#: NamedTuple fields renamed since files were written: ``(type name, old field) -> new
#: field``. :func:`decode` reads an old file's fields under their new names, so the file loads
#: into today's template (and without one comes back with today's field names).
RENAMED_FIELDS: dict[tuple[str, str], str] = {
    # optimiser states' update counter, `count` until it was seen to shadow tuple.count
    ("ScaleByLearningRateState", "count"): "steps",
    ("TraceState", "count"): "steps",
    ("ScaleByAdamState", "count"): "steps",
}


class FnnFileError(ValueError):
    """A file that is not an fnn ``.npz``, is damaged, or does not match the expected tree.

    >>> import os, tempfile, numpy as np, fnn
    >>> path = os.path.join(tempfile.mkdtemp(), "plain.npz")
    >>> np.savez(path, w=np.ones(2))
    >>> try:
    ...     fnn.load(path)
    ... except fnn.FnnFileError as err:
    ...     print(str(err).split(" (")[0].endswith("is not an fnn file"))
    True
    """


class TreeMismatch(FnnFileError):
    """A readable file whose tree differs from the template it is loaded into."""


# --------------------------------------------------------------------------- encoding


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _is_key(x) -> bool:
    return isinstance(x, np.random.SeedSequence)


def encode(tree: Any, where: str = "save") -> tuple[dict, dict[str, np.ndarray]]:
    """``(spec, arrays)``: a JSON-able description of ``tree``'s structure and its array leaves
    keyed by path. Raises ``TypeError`` naming the path of anything that cannot be stored."""
    arrays: dict[str, np.ndarray] = {}

    def walk(node, path: tuple[str, ...], in_fields: bool):
        name = "/".join(path) or "<root>"
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if not isinstance(k, str):
                    raise TypeError(f"{where}: dict keys must be strings, got {k!r} at {name}")
                if "/" in k or not k:
                    raise TypeError(f"{where}: key {k!r} at {name} is empty or contains '/', "
                                    "which separates the levels of a path")
                out[k] = walk(v, (*path, k), False)
            return {"dict": out}
        if _is_namedtuple(node):
            fields = {f: walk(v, (*path, f), True) for f, v in zip(node._fields, node)}
            return {"namedtuple": type(node).__name__, "fields": fields}
        if isinstance(node, (list, tuple)):
            kind = "list" if isinstance(node, list) else "tuple"
            return {kind: [walk(v, (*path, str(i)), False) for i, v in enumerate(node)]}
        if node is None:
            if in_fields:  # an optional field left unset, e.g. TrainState.key
                return {"none": True}
            raise TypeError(f"{where}: {name} is None; only arrays, numbers and keys can be "
                            "stored (a None would silently vanish from the tree)")
        if isinstance(node, bool):
            return {"bool": node}
        if isinstance(node, int):
            return {"int": node}
        if isinstance(node, float):
            return {"float": node}
        if isinstance(node, str):
            return {"str": node}
        if _is_key(node):
            entropy = node.entropy
            return {"key": {"entropy": entropy if isinstance(entropy, int) else list(entropy),
                            "spawn_key": list(node.spawn_key), "pool_size": node.pool_size}}
        if isinstance(node, (np.ndarray, np.generic)):
            a = np.asarray(node)
            if a.dtype.hasobject or a.dtype.kind not in "biufc":
                raise TypeError(f"{where}: {name} is an array of dtype {a.dtype}; only numeric "
                                "arrays are stored (fnn never pickles)")
            arrays[name] = a
            return {"scalar" if isinstance(node, np.generic) else "array": name}
        raise TypeError(f"{where}: {name} is a {type(node).__name__}; only dicts, lists, tuples, "
                        "NamedTuples, arrays, numbers and fnn keys can be stored")

    return walk(tree, (), False), arrays


def decode(spec: dict, arrays: dict[str, np.ndarray], like: Any = None, *,
           where: str = "load") -> Any:
    """Rebuild a tree from :func:`encode`'s output; with ``like``, in the template's types,
    raising :class:`TreeMismatch` (an :class:`FnnFileError`) that names every difference."""
    problems: list[str] = []

    def build(s: dict, t: Any, path: tuple[str, ...]):
        name = "/".join(path) or "<root>"
        kind = next(iter(s))
        has_t = t is not _NO_TEMPLATE
        if kind == "dict":
            items = s["dict"]
            if has_t:
                if not isinstance(t, dict):
                    problems.append(f"{name}: a dict in the file, {type(t).__name__} expected")
                    return None
                missing = [k for k in t if k not in items]
                unexpected = [k for k in items if k not in t]
                if missing:
                    problems.append(f"{name}: missing keys {sorted(missing)}")
                if unexpected:
                    problems.append(f"{name}: unexpected keys {sorted(unexpected)}")
            return {k: build(v, t.get(k, _NO_TEMPLATE) if has_t and isinstance(t, dict)
                             else _NO_TEMPLATE, (*path, k)) for k, v in items.items()}
        if kind == "namedtuple":
            fields = renamed_fields(s["namedtuple"], s["fields"], t if has_t else None)
            if has_t:
                if not _is_namedtuple(t) or tuple(t._fields) != tuple(fields):
                    problems.append(f"{name}: {s['namedtuple']}{tuple(fields)} in the file, "
                                    f"{type(t).__name__}{getattr(t, '_fields', '')} expected")
                    return None
                return type(t)(*(build(v, tv, (*path, f))
                                 for (f, v), tv in zip(fields.items(), t)))
            # the file's type name, known only at run time (mypy wants a literal)
            cls = collections.namedtuple(s["namedtuple"], list(fields))  # type: ignore[misc]
            return cls(*(build(v, _NO_TEMPLATE, (*path, f)) for f, v in fields.items()))
        if kind in ("list", "tuple"):
            items = s[kind]
            if has_t:
                if type(t) is not (list if kind == "list" else tuple) or len(t) != len(items):
                    problems.append(f"{name}: a {kind} of {len(items)} in the file, "
                                    f"{type(t).__name__} of {len(t) if isinstance(t, (list, tuple)) else '?'} expected")
                    return None
            out = [build(v, t[i] if has_t else _NO_TEMPLATE, (*path, str(i)))
                   for i, v in enumerate(items)]
            return out if kind == "list" else tuple(out)
        if kind == "none":
            if has_t and t is not None:
                problems.append(f"{name}: None in the file, {type(t).__name__} expected")
            return None
        if kind == "key":
            k = s["key"]
            return np.random.SeedSequence(k["entropy"], spawn_key=tuple(k["spawn_key"]),
                                          pool_size=k["pool_size"])
        if kind in ("bool", "int", "float", "str"):
            value = s[kind]
            if has_t and not isinstance(t, (bool, int, float, str, np.generic, np.ndarray)):
                problems.append(f"{name}: a {kind} in the file, {type(t).__name__} expected")
            return value
        member = s[kind]
        if member not in arrays:
            problems.append(f"{name}: its array is missing from the file")
            return None
        a = arrays[member]
        if has_t:
            want = np.asarray(t)
            if t is None or want.dtype.hasobject:
                problems.append(f"{name}: an array in the file, {type(t).__name__} expected")
            elif a.shape != want.shape:
                problems.append(f"{name}: shape {a.shape}, expected {want.shape}")
            elif a.dtype != want.dtype:
                problems.append(f"{name}: dtype {a.dtype}, expected {want.dtype}")
        return a[()] if kind == "scalar" else a

    out = build(spec, like if like is not None else _NO_TEMPLATE, ())
    if problems:
        raise TreeMismatch(f"{where}: does not match the expected tree: " + "; ".join(problems))
    return out


def renamed_fields(type_name: str, fields: dict, like: Any = None) -> dict:
    """A NamedTuple's ``{field: spec}`` from a file, with the fields :data:`RENAMED_FIELDS`
    renames under their new names (in their order); the same dict when none is renamed, or
    when the fields already are those of the template NamedTuple ``like``.

    >>> from fnn.io import renamed_fields
    >>> list(renamed_fields("TraceState", {"count": {"int": 3}, "trace": {"dict": {}}}))
    ['steps', 'trace']
    """
    if getattr(like, "_fields", None) == tuple(fields) or not any(
            (type_name, f) in RENAMED_FIELDS for f in fields):
        return fields
    return {RENAMED_FIELDS.get((type_name, f), f): v for f, v in fields.items()}


class _NoTemplate:
    def __repr__(self):
        return "<no template>"


_NO_TEMPLATE = _NoTemplate()


# --------------------------------------------------------------------------- files


def write_npz(path: str | os.PathLike, manifest: dict, arrays: dict[str, np.ndarray], *,
              where: str = "save") -> Path:
    """An uncompressed ``.npz`` of ``arrays`` (members ``tree/<name>``) plus the JSON
    ``manifest``, written with :func:`atomic_write`."""
    members: dict[str, Any] = {_SECTION + k: v for k, v in arrays.items()}  # savez's **kwds
    members[_MANIFEST] = np.array(json.dumps(manifest))

    def write(f):
        np.savez(f, **members)

    return atomic_write(path, write, where=where)


def _check_names(path: Path, names: list[str]) -> None:
    """Member names must be unique and no array path may be a folder of another (a crafted
    file: reading it would silently drop one of them)."""
    paths = sorted(n[:-4] if n.endswith(".npy") else n for n in names)
    clash = next(((a, b) for a, b in zip(paths, paths[1:])
                  if a == b or b.startswith(a + "/")), None)
    if clash is not None:
        raise FnnFileError(f"load: {path}: members {clash[0]!r} and {clash[1]!r} clash (the "
                           "same path twice, or an array where a folder is); damaged or "
                           "crafted file")


def _check_member(path: Path, info: zipfile.ZipInfo, file_size: int) -> None:
    import zipfile

    declared, stored = info.file_size, info.compress_size
    limit = stored if info.compress_type == zipfile.ZIP_STORED else max(_SMALL, _MAX_RATIO * stored)
    if declared > limit or stored > file_size:
        raise FnnFileError(
            f"load: {path}: member {info.filename!r} declares {declared} bytes in a "
            f"{file_size}-byte file; refusing to allocate it (damaged or forged file)")


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
        except ValueError as err:
            raise FnnFileError(f"load: {path}: member {info.filename!r} is not a .npy array "
                               f"({err})") from None
        if dtype.hasobject:
            raise FnnFileError(f"load: {path}: member {info.filename!r} holds Python objects "
                               f"(dtype {dtype}); fnn files hold numbers only and are never "
                               "unpickled")
        header = f.tell()
        nbytes = math.prod(shape) * dtype.itemsize
        if header + nbytes != info.file_size:
            raise FnnFileError(
                f"load: {path}: member {info.filename!r} declares shape {shape} of {dtype} "
                f"({nbytes} bytes) but holds {info.file_size - header}; refusing to allocate "
                "it (damaged or forged file)")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise FnnFileError(f"load: {path}: member {info.filename!r} is truncated")
    array = np.frombuffer(data, dtype=dtype)
    array = array.reshape(shape, order="F" if fortran else "C")
    return array.copy() if not array.flags.writeable else array


def read_npz(path: str | os.PathLike, *, where: str = "load") -> tuple[dict, dict[str, np.ndarray]]:
    """``(manifest, arrays)`` of a file written by :func:`write_npz` (or an ``fnn-params-1``
    file, whose manifest is rebuilt); every member checked before it is read."""
    import zipfile

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{where}: no such file: {path}")
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_names(path, [info.filename for info in infos])
            for info in infos:
                _check_member(path, info, size)
            members = {}
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                members[name] = _read_member(path, zf, info)
    except FnnFileError:
        raise
    except zipfile.BadZipFile as err:
        if path.read_bytes()[:6] == b"\x93NUMPY":
            raise FnnFileError(f"{where}: {path} is a single .npy array, not an fnn .npz") from None
        raise FnnFileError(f"{where}: {path} is damaged or truncated, or not an fnn file "
                           f"(BadZipFile: {err})") from None
    except (EOFError, ValueError, KeyError, zipfile.LargeZipFile) as err:
        raise FnnFileError(f"{where}: {path} is damaged or truncated, or not an fnn file "
                           f"({type(err).__name__}: {err})") from None
    if _MANIFEST in members:
        try:
            manifest = json.loads(str(members.pop(_MANIFEST)))
        except json.JSONDecodeError as err:
            raise FnnFileError(f"{where}: {path} has a damaged manifest ({err})") from None
        arrays = {k[len(_SECTION):]: v for k, v in members.items() if k.startswith(_SECTION)}
        return manifest, arrays
    if "meta/format" in members and str(members["meta/format"]) == _OLD_FORMAT:
        return _old_manifest(members)
    names = sorted(members)
    raise FnnFileError(f"{where}: {path} is not an fnn file (no manifest; it has "
                       f"{names[:5]}{'...' if len(names) > 5 else ''})")


def _old_manifest(members: dict) -> tuple[dict, dict]:
    """A params file of format ``fnn-params-1`` (arrays ``params/<path>``, empty dicts listed
    under ``meta/empty``) as a manifest and arrays."""
    arrays = {k[len("params/"):]: v for k, v in members.items() if k.startswith("params/")}
    empty = [str(p) for p in members.get("meta/empty", np.array([], str))]
    root: dict = {}
    for path in (*empty, *arrays):
        node = root
        *parents, last = path.split("/")
        for p in parents:
            node = node.setdefault(p, {"dict": {}})["dict"]
        node[last] = {"array": path} if path in arrays else {"dict": {}}
    return {"format": FORMAT, "tree": {"dict": root}}, arrays


def save(path: str | os.PathLike, tree: Any) -> None:
    """Write a pytree (params, a model state, an optimiser state, a :class:`fnn.TrainState`)
    to ``path`` (``~`` expanded), atomically. Refuses what it could not give back exactly:
    keys containing ``/``, ``None`` values in dicts or lists, non-numeric arrays.

    >>> import os, tempfile, numpy as np, fnn
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> fnn.save(path, {"params": {"w": np.ones((2, 3), np.float32)}, "step": 7})
    >>> sorted(np.load(path).files)
    ['meta/manifest', 'tree/params/w']
    """
    spec, arrays = encode(tree)
    if str(path).endswith(".safetensors"):  # the other format: fnn.interop.safetensors_files
        from fnn.interop.safetensors_files import write
        atomic_write(path, lambda f: write(f, {"format": FORMAT, "tree": spec}, arrays))
        return
    write_npz(path, {"format": FORMAT, "tree": spec}, arrays)


def load(path: str | os.PathLike, like: Any = None) -> Any:
    """Read a tree written by :func:`save`.

    With ``like`` (a template of the same structure, e.g. from ``model.init`` or
    ``TrainState.create``) the result has the template's types, and every missing or unexpected
    key, shape or dtype mismatch is named in one :class:`FnnFileError`.

    >>> import os, tempfile, fnn
    >>> opt = fnn.adam(1e-3)
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "opt.npz")
    >>> fnn.save(path, opt.init(params))
    >>> [type(s).__name__ for s in fnn.load(path, like=opt.init(params))]
    ['ScaleByAdamState', 'ScaleByLearningRateState']
    """
    path = Path(path).expanduser()
    if path.suffix == ".safetensors":  # the other format: fnn.interop.safetensors_files
        from fnn.interop.safetensors_files import read
        manifest, arrays = read(path, fmt=FORMAT, error=FnnFileError)
    else:
        manifest, arrays = read_npz(path)
    if manifest.get("format") == "fnn-checkpoint-1":
        raise FnnFileError(f"load: {path} is a training checkpoint; read it with "
                           "fnn.load_checkpoint(path, like=fnn.TrainState.create(params, "
                           "optimizer)) (its .state holds the params)")
    if manifest.get("format") != FORMAT or "tree" not in manifest:
        raise FnnFileError(f"load: {path} has format {manifest.get('format')!r}, "
                           f"expected {FORMAT!r}")
    try:
        return decode(manifest["tree"], arrays, like, where=f"load: {path}")
    except (KeyError, TypeError, StopIteration) as err:
        raise FnnFileError(f"load: {path} has a damaged manifest ({type(err).__name__}: "
                           f"{err})") from None
