"""Atomic file writes: a temporary file in the target's folder, flushed and fsync'ed, renamed
over the target, the folder fsync'ed; a crash leaves the old file or the new one, never half of
one. The temporary files of writers killed mid-write (``.<name>.<pid>.tmp``, their process
gone) are removed by the next write of the same file.

>>> import os, tempfile
>>> from fnn.atomic import atomic_write
>>> path = atomic_write(os.path.join(tempfile.mkdtemp(), "note.txt"), lambda f: f.write(b"hi"))
>>> path.read_bytes()
b'hi'
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnn.locking import process_alive

__all__ = ["atomic_write", "remove_orphans"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *,
                 where: str = "save") -> Path:
    """Write ``path`` through ``write(binary_file)`` atomically: a temporary file in the same
    folder (``.<name>.<pid>.tmp``, mode 0666 less the umask), flush + fsync, rename, fsync the
    folder. On failure the target is untouched, the temporary file removed and the OS error
    names the target."""
    path = Path(path).expanduser()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path, rescan=60.0)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    except OSError as err:
        if err.filename == str(path):
            raise
        raise type(err)(err.errno, f"{where}: cannot write {path}: {err.strerror or err}",
                        str(path)) from err
    return path


def remove_orphans(path: str | os.PathLike, *, rescan: float = 0.0) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers killed mid-write
    (``.<name>.<pid>.tmp`` whose process is gone); return them. :func:`atomic_write` calls it
    before each write with ``rescan=60``: the folder is listed at most once a minute (a sweep
    writing thousands of records into one folder does not list it for each), the temporary
    files found are remembered by target name.

    >>> import os, tempfile
    >>> from fnn.io import remove_orphans
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, ".model.npz.999999999.tmp"), "wb").close()
    >>> [p.name for p in remove_orphans(os.path.join(folder, "model.npz"))]
    ['.model.npz.999999999.tmp']
    """
    path = Path(path)
    folder = str(path.parent)
    with _lock:
        seen = _scans.get(folder)
        if seen is None or time.monotonic() - seen[0] >= rescan:
            seen = (time.monotonic(), _temporaries(path.parent))
            _scans[folder] = seen
            if len(_scans) > 256:
                _scans.pop(next(iter(_scans)))
        candidates = seen[1].pop(path.name, [])
    removed = []
    for p, pid in candidates:
        if pid != os.getpid() and not process_alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


_scans: dict[str, tuple[float, dict[str, list[tuple[Path, int]]]]] = {}
_lock = threading.Lock()


def _temporaries(folder: Path) -> dict[str, list[tuple[Path, int]]]:
    """``{target name: [(temporary file, pid), ...]}`` of the folder's ``.<name>.<pid>.tmp``."""
    found: dict[str, list[tuple[Path, int]]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        name = entry.name
        if name.startswith(".") and name.endswith(".tmp"):
            target, _, pid = name[1:-4].rpartition(".")
            if target and pid.isdigit():
                found.setdefault(target, []).append((Path(entry.path), int(pid)))
    return found
