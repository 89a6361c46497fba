"""Checkpoints of a whole training run: one ``.npz`` per checkpoint, written atomically.

A checkpoint folder holds ``ckpt-000001.npz``, ``ckpt-000002.npz``, ... (the newest ``keep``
of them). Each file is an :mod:`fnn.io` tree file holding

* ``state``: the training state (a :class:`fnn.TrainState`: params, model state, optimiser
  state with its types, key, step) and, when early stopping keeps one, ``best_state``;
* a JSON manifest with the loop's ``progress`` (epoch, batches done in it, the partial sums of
  its metrics, the :class:`fnn.History` so far, early stopping's best value and wait) and the
  run's ``fingerprint`` (tree shapes, data order, loss, optimiser, batch size, ...), so that a
  run resumed with another configuration is refused instead of silently mixed.

:func:`fnn.train` writes and reads them itself (``checkpoint=DIR``); the functions here are
for doing it by hand:

>>> import tempfile, fnn
>>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
>>> state = fnn.TrainState.create(params, fnn.adam(1e-3), key=fnn.key(1))
>>> folder = tempfile.mkdtemp()
>>> path = fnn.save_checkpoint(folder, state)
>>> back = fnn.load_checkpoint(folder, like=fnn.TrainState.create(params, fnn.adam(1e-3)))
>>> [type(s).__name__ for s in back.state.opt_state], back.state.step, back.path.name
(['ScaleByAdamState', 'ScaleByLearningRateState'], 0, 'ckpt-000001.npz')

Writing is atomic (temporary file, fsync, rename, fsync of the folder): a process killed at any
moment leaves the previous checkpoints intact and at worst a temporary file, which the next
writer or reader of the folder removes once its process is gone. A damaged file found while
reading (disks fail) is renamed ``ckpt-NNNNNN.npz.damaged``: kept for inspection, it no longer
counts among the ``keep`` newest, so the good checkpoint before it is not pruned for it.
:func:`fnn.train` also holds the folder's lock (:mod:`fnn.locking`) while it writes.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fnn.io import FnnFileError, TreeMismatch, decode, encode, read_npz, renamed_fields, write_npz
from fnn.locking import FolderLock, process_alive
from fnn.validate import positive_int

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

FORMAT = "fnn-checkpoint-1"
_NAME = re.compile(r"^ckpt-(\d{6,})\.npz$")
_TEMP = re.compile(r"^\.ckpt-\d{6,}\.npz\.(\d+)\.tmp$")
_DAMAGED = re.compile(r"^ckpt-(\d{6,})\.npz\.damaged$")

__all__ = ["Checkpoint", "CheckpointMismatch", "checkpoints", "load_checkpoint",
           "save_checkpoint"]


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` read: the state rebuilt like the template, the file, and
    (for checkpoints written by :func:`fnn.train`) the loop's progress, the best state kept by
    early stopping and the run's fingerprint.

    >>> import tempfile, fnn
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> folder = tempfile.mkdtemp()
    >>> _ = fnn.save_checkpoint(folder, fnn.TrainState.create(params, fnn.sgd(0.1)))
    >>> found = fnn.load_checkpoint(folder, like=fnn.TrainState.create(params, fnn.sgd(0.1)))
    >>> found.path.name, found.progress, found.best_state
    ('ckpt-000001.npz', {}, None)
    """

    state: Any
    path: Path
    progress: dict
    best_state: Any = None
    fingerprint: dict | None = None


class CheckpointMismatch(FnnFileError):
    """A checkpoint whose trees do not match the template it is loaded into: another run's
    (another model, optimiser, state). ``path`` is the file, ``fingerprint`` the run
    fingerprint saved in it (None for a checkpoint written by hand), so a caller can say how
    the runs differ; :func:`fnn.train` does.

    >>> import tempfile, fnn
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> folder = tempfile.mkdtemp()
    >>> _ = fnn.save_checkpoint(folder, fnn.TrainState.create(params, fnn.sgd(0.1)))
    >>> try:
    ...     fnn.load_checkpoint(folder, like=fnn.TrainState.create(params, fnn.adam(0.1)))
    ... except fnn.CheckpointMismatch as err:
    ...     print(err.path.name, err.fingerprint, isinstance(err, fnn.FnnFileError))
    ckpt-000001.npz None True
    """

    def __init__(self, message: str, path: Path, fingerprint: dict | None = None):
        super().__init__(message)
        self.path, self.fingerprint = path, fingerprint

    def __reduce__(self) -> tuple:  # pickles (sweeps send errors between processes)
        return type(self), (str(self), self.path, self.fingerprint)


def checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The checkpoint files in ``directory``, oldest first (``[]`` when there is none)."""
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a temporary file of ours that is not being written is stale
    return process_alive(pid)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove temporary files left in ``directory`` by writers that were killed (their process
    is gone); return them."""
    folder = Path(directory).expanduser()
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _TEMP.match(p.name)
            if m and not _alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _number(path: Path) -> int:
    m = _NAME.match(path.name)
    if m is None:
        raise ValueError(f"{path.name} is not a checkpoint file name (ckpt-NNNNNN.npz)")
    return int(m.group(1))


def _next_path(folder: Path) -> Path:
    existing = checkpoints(folder)
    number = _number(existing[-1]) + 1 if existing else 1
    if folder.is_dir():  # after the damaged files set aside too: a number is never reused
        damaged = [int(m.group(1)) for p in folder.iterdir() if (m := _DAMAGED.match(p.name))]
        number = max([number, *(d + 1 for d in damaged)])
    return folder / f"ckpt-{number:06d}.npz"


def _set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint ``ckpt-N.npz.damaged`` (kept, no longer counted by
    ``keep``); left in place when the folder cannot be written."""
    target = path.with_name(path.name + ".damaged")
    try:
        path.rename(target)
    except OSError:
        return path
    return target


def save_checkpoint(directory: str | os.PathLike, state: Any, *, keep: int | None = 3,
                    progress: dict | None = None, best_state: Any = None,
                    fingerprint: dict | None = None) -> Path:
    """Write ``state`` (any pytree :func:`fnn.save` accepts, usually a :class:`fnn.TrainState`)
    as the next checkpoint in ``directory`` and keep only the newest ``keep`` (all when None).
    ``progress``, ``best_state`` and ``fingerprint`` are what :func:`fnn.train` records of its
    loop. Returns the new file's path.

    >>> import tempfile, fnn
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> folder = tempfile.mkdtemp()
    >>> paths = [fnn.save_checkpoint(folder, {"params": params}, keep=2) for _ in range(3)]
    >>> [p.name for p in fnn.checkpoint.checkpoints(folder)]
    ['ckpt-000002.npz', 'ckpt-000003.npz']
    """
    if keep is not None:
        keep = positive_int("save_checkpoint", "keep", keep)
    payload = encode_checkpoint(state, progress=progress, best_state=best_state,
                                fingerprint=fingerprint)
    return write_checkpoint(directory, payload, keep=keep)


def encode_checkpoint(state: Any, *, progress: dict | None = None, best_state: Any = None,
                      fingerprint: dict | None = None) -> tuple[dict, dict]:
    """The manifest and arrays of a checkpoint (cheap: arrays are referenced, not copied, so a
    background thread can write them while training goes on; training never mutates them)."""
    trees = {"state": state}
    if best_state is not None:
        trees["best_state"] = best_state
    spec, arrays = encode(trees, where="save_checkpoint")
    manifest = {"format": FORMAT, "tree": spec, "progress": progress or {},
                "fingerprint": fingerprint}
    return manifest, arrays


def write_checkpoint(directory: str | os.PathLike, payload: tuple[dict, dict], *,
                     keep: int | None = 3) -> Path:
    """Write an :func:`encode_checkpoint` payload as the next file; prune to ``keep``."""
    folder = Path(directory).expanduser()
    remove_stale_temporaries(folder)
    path = write_npz(_next_path(folder), *payload, where="save_checkpoint")
    if keep is not None:
        for old in checkpoints(folder)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(directory: str | os.PathLike, like: Any) -> Checkpoint:
    """The newest readable checkpoint in ``directory`` (or the file ``directory`` itself),
    rebuilt in the types of the template ``like`` (e.g. a fresh ``TrainState.create(...)``).

    A damaged newest file (it cannot happen through fnn's atomic writes, but disks fail) is
    skipped with a warning for the one before it and renamed ``ckpt-NNNNNN.npz.damaged``, so
    that it no longer counts among the ``keep`` newest. Raises ``FileNotFoundError`` when there is
    no checkpoint and :class:`CheckpointMismatch` (an :class:`fnn.FnnFileError`) when the
    newest readable file does not match ``like``.

    >>> import tempfile, fnn
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> folder = tempfile.mkdtemp()
    >>> _ = fnn.save_checkpoint(folder, fnn.TrainState.create(params, fnn.adam(1e-3)))
    >>> back = fnn.load_checkpoint(folder, like=fnn.TrainState.create(params, fnn.adam(1e-3)))
    >>> type(back.state).__name__, back.state.step
    ('TrainState', 0)
    """
    target = Path(directory).expanduser()
    if target.is_file():
        return _read(target, like)
    remove_stale_temporaries(target)
    files = checkpoints(target)
    if not files:
        raise FileNotFoundError(f"load_checkpoint: no checkpoint (ckpt-*.npz) in {target}")
    for path in reversed(files):
        try:
            return _read(path, like)
        except CheckpointMismatch:
            raise
        except FnnFileError as err:
            if path == files[0]:
                raise
            aside = _set_aside(path)
            warnings.warn(f"load_checkpoint: skipping {path.name} (kept as {aside.name}): "
                          f"{err}", RuntimeWarning, stacklevel=2)
    raise AssertionError("unreachable")


def _read(path: Path, like: Any) -> Checkpoint:
    manifest, arrays = read_npz(path, where="load_checkpoint")
    if manifest.get("format") != FORMAT:
        raise FnnFileError(f"load_checkpoint: {path} has format {manifest.get('format')!r}, "
                           f"expected {FORMAT!r}")
    try:
        spec = manifest["tree"]
        template = {"state": like}
        if "best_state" in spec.get("dict", {}):
            template["best_state"] = like
        trees = decode(spec, arrays, template, where=f"load_checkpoint: {path}")
    except TreeMismatch as err:
        raise CheckpointMismatch(str(err), path, manifest.get("fingerprint")) from None
    except (KeyError, TypeError, AttributeError, StopIteration) as err:
        raise FnnFileError(f"load_checkpoint: {path} has a damaged manifest "
                           f"({type(err).__name__}: {err})") from None
    return Checkpoint(trees["state"], path, manifest.get("progress") or {},
                      trees.get("best_state"), manifest.get("fingerprint"))


class BackgroundWriter:
    """Writes checkpoints on one background thread, so training goes on while the disk works.

    ``submit`` encodes on the calling thread (a snapshot of the progress) and waits for the
    previous write first, so at most one is in flight; ``wait`` blocks until it is on disk and
    re-raises its error, if any. With ``lock=True`` it holds the folder's lock
    (:class:`fnn.locking.FolderLock`, taken here, released by ``close``): a folder another
    run is writing, or one that cannot be written, is refused before any work."""

    def __init__(self, directory: str | os.PathLike, keep: int | None, *, lock: bool = False):
        self.directory, self.keep = Path(directory).expanduser(), keep
        self.lock = FolderLock.acquire(self.directory, who="train") if lock else None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.last: Path | None = None

    def submit(self, state: Any, **kwargs) -> None:
        payload = encode_checkpoint(state, **kwargs)
        self.wait()
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # on first use: light import

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="fnn-checkpoint")
        self._pending = self._pool.submit(write_checkpoint, self.directory, payload,
                                          keep=self.keep)

    def write_now(self, state: Any, **kwargs) -> Path:
        """Write synchronously (after any pending write): for the last checkpoint of a run."""
        self.wait()
        self.last = write_checkpoint(self.directory, encode_checkpoint(state, **kwargs),
                                     keep=self.keep)
        return self.last

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.last = pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self.lock is not None:
                self.lock.release()
                self.lock = None


def tree_signature(tree: Any) -> Any:
    """The shape of a tree for fingerprints: its structure with arrays as ``"float32(3, 2)"``
    and scalars as their type (values such as the step count are left out)."""
    spec, arrays = encode(tree, where="fingerprint")

    def sig(s):
        kind = next(iter(s))
        if kind == "dict":
            return {k: sig(v) for k, v in s["dict"].items()}
        if kind == "namedtuple":
            return {s["namedtuple"]: {k: sig(v) for k, v in s["fields"].items()}}
        if kind in ("list", "tuple"):
            return [sig(v) for v in s[kind]]
        if kind in ("array", "scalar"):
            a = arrays[s[kind]]
            return f"{a.dtype}{tuple(a.shape)}"
        return kind

    return sig(spec)


#: fingerprint fields added since checkpoints were first written: not compared when a
#: checkpoint lacks them (written by an older fnn)
ADDED_FIELDS = frozenset({"step_fn.hyperparameters", "data.crc32"})


def fingerprint_differences(saved: dict | None, now: dict) -> list[str]:
    """``["data.batch_size: 32 in the checkpoint, 64 now", ...]`` (empty when they agree)."""
    out: list[str] = []

    def walk(a, b, where):
        if a == "<absent>" and where in ADDED_FIELDS:
            return  # a checkpoint of an older fnn, which did not record it
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{where}.{k}" if where else k)
        elif _plain(a) != _plain(b):
            out.append(f"{where}: {_short(a)} in the checkpoint, {_short(b)} now")

    walk(_plain(saved or {}), now, "")  # _plain: NamedTuple fields renamed since, renamed
    return out


def _plain(x):
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):  # {type: {field: ...}} of a NamedTuple: today's field names
        return {k: _plain(renamed_fields(k, v) if isinstance(v, dict) else v)
                for k, v in x.items()}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _short(x, width: int = 120) -> str:
    text = repr(x)
    return text if len(text) <= width else text[:width - 3] + "..."
