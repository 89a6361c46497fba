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
        remove_orphans(path)
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


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers killed mid-write
    (``.<name>.<pid>.tmp`` whose process is gone; :func:`atomic_write` calls it first);
    return them.

    >>> import os, tempfile
    >>> from fnn.io import remove_orphans
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, ".model.npz.999999999.tmp"), "wb").close()
    >>> [p.name for p in remove_orphans(os.path.join(folder, "model.npz"))]
    ['.model.npz.999999999.tmp']
    """
    path = Path(path)
    prefix, removed = f".{path.name}.", list[Path]()
    try:
        names = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for p in names:
        pid = p.name[len(prefix):-len(".tmp")] if p.name.endswith(".tmp") else ""
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
