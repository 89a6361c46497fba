"""The lock of a checkpoint folder: one training run writes into a folder at a time.

:func:`fnn.train` with ``checkpoint=DIR`` takes ``DIR/train.lock`` before it reads the folder
and removes it when it returns (however it ends). The file is JSON: the ``pid`` and ``host``
of the process, when it ``started`` and a random ``run`` id. A second process training into
the same folder is refused before it does any work, with the first one's pid and host named,
instead of both finishing and the folder keeping only the last one's checkpoints.

A lock left by a process that is gone (``kill -9``, a power cut) is *stale* and is replaced
with a warning: on the same host when its pid no longer runs; from another host (a shared file
system, a restarted container with a new host name) when its file was not touched for
:data:`STALE_AFTER` seconds, the holder touching it every :data:`HEARTBEAT` seconds. Until
then the error names the host, and deleting the file releases it.

>>> import tempfile, fnn
>>> from fnn.locking import FolderLock
>>> folder = tempfile.mkdtemp()
>>> lock = FolderLock.acquire(folder, who="train")
>>> try:
...     FolderLock.acquire(folder, who="train")
... except fnn.locking.FolderLocked as err:
...     print("refused:", err.holder["pid"] == lock.holder["pid"])
refused: True
>>> lock.release()
>>> FolderLock.acquire(folder, who="train").release()   # free again
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["LOCK_NAME", "FolderLock", "FolderLocked"]

#: the lock file's name in a checkpoint folder
LOCK_NAME = "train.lock"
#: seconds between two touches of a held lock file (its heartbeat)
HEARTBEAT = 30.0
#: a lock of another host whose file was not touched for this long is stale
STALE_AFTER = 600.0

_held: set[str] = set()  # run ids of the locks this process holds (threads count as one)
_guard = threading.Lock()


class FolderLocked(RuntimeError):
    """The folder is being written by another training run: ``path`` is its lock file and
    ``holder`` what it says (``pid``, ``host``, ``started``, ``run``).

    >>> import tempfile, fnn
    >>> folder = tempfile.mkdtemp()
    >>> first = fnn.locking.FolderLock.acquire(folder)
    >>> try:
    ...     fnn.locking.FolderLock.acquire(folder)
    ... except fnn.FolderLocked as err:
    ...     print(err.path.name, sorted(err.holder))
    train.lock ['host', 'pid', 'run', 'started']
    >>> first.release()
    """

    def __init__(self, message: str, path: Path, holder: dict):
        super().__init__(message)
        self.path, self.holder = path, holder

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.path, self.holder)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (a process we may not signal counts).

    >>> import os
    >>> from fnn.locking import process_alive
    >>> process_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _read(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


class FolderLock:
    """A held lock: :meth:`acquire` it, :meth:`release` it (only ours is ever removed)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name="fnn-lock-heartbeat")
        self._beat.start()

    def _heartbeat(self) -> None:
        """Touch the lock file every :data:`HEARTBEAT` seconds while it is held, so another
        host can tell a live holder from a dead one by the file's age."""
        while not self._stop.wait(HEARTBEAT):
            try:
                os.utime(self.path)
            except OSError:
                pass

    @classmethod
    def acquire(cls, directory: str | os.PathLike, *, who: str = "train") -> FolderLock:
        """Take ``directory``'s lock (creating the folder): :class:`FolderLocked` when a live
        process holds it; a stale lock is replaced with a warning. An OS error (a read-only
        folder, a path through a file) is raised here, naming the folder, before any work."""
        folder = Path(directory).expanduser()
        path = folder / LOCK_NAME
        holder: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": uuid.uuid4().hex}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_orphans(folder)
            for _ in range(3):
                if _create(path, holder):
                    with _guard:
                        _held.add(holder["run"])
                    return cls(path, holder)
                found = _read(path)
                if found is None:
                    continue  # released meanwhile: try again
                stale = _stale(found, holder["host"], path)
                if stale is None:
                    raise _locked(who, folder, path, found)
                warnings.warn(f"{who}: removing the stale lock {path} ({stale})", RuntimeWarning,
                              stacklevel=caller_level())
                path.unlink(missing_ok=True)
        except OSError as err:
            raise type(err)(err.errno, f"{who}: cannot write checkpoints into {folder}: "
                            f"{err.strerror or err}", str(folder)) from err
        raise _locked(who, folder, path, _read(path) or {})

    def release(self) -> None:
        """Remove the lock file if it is still ours (idempotent)."""
        self._stop.set()
        with _guard:
            _held.discard(self.holder["run"])
        found = _read(self.path)
        if found is not None and found.get("run") == self.holder["run"]:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass


def caller_level() -> int:
    """The ``stacklevel`` that points a warning raised by its caller at the first frame
    outside fnn (the user's line)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fnn."):
        frame, level = frame.f_back, level + 1
    return level


_TEMP = re.compile(r"^\." + re.escape(LOCK_NAME) + r"\.(\d+)\.[0-9a-f]{8}\.tmp$")


def _remove_orphans(folder: Path) -> None:
    """Remove the temporary lock files of processes killed while taking the lock."""
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not process_alive(int(m.group(1))):
            p.unlink(missing_ok=True)


def _create(path: Path, holder: dict) -> bool:
    """Write the lock file if there is none (atomically: a complete file or none)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{holder['run'][:8]}.tmp")
    tmp.write_text(json.dumps(holder) + "\n")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: O_EXCL
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(holder) + "\n")
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _stale(found: dict, host: str, path: Path) -> str | None:
    """Why a lock is stale, or None when it may be held."""
    pid = found.get("pid")
    if not isinstance(pid, int) or not found.get("host"):
        age = time.time() - path.stat().st_mtime
        return "an unreadable lock file" if age > 10 else None
    if found["host"] != host:  # its pid cannot be checked from here: its heartbeat can
        age = time.time() - path.stat().st_mtime
        return (f"written on host {found['host']}, not touched for {age:.0f} s"
                if age > STALE_AFTER else None)
    if pid == os.getpid():
        with _guard:
            mine = found.get("run") in _held
        return None if mine else "left by an earlier run of this process"
    return None if process_alive(pid) else f"its process {pid} is gone"


def _locked(who: str, folder: Path, path: Path, found: dict[str, Any]) -> FolderLocked:
    where = f"process {found.get('pid', '?')} on host {found.get('host', '?')}"
    return FolderLocked(
        f"{who}: another training run ({where}, since {found.get('started', '?')}) is writing "
        f"checkpoints into {folder}; two runs in one folder would overwrite each other's "
        f"checkpoints. Use another folder, or wait for it to finish. If that process is gone "
        f"(e.g. on another machine; such a lock is stale once untouched for "
        f"{STALE_AFTER:.0f} s), delete {path}", path, found)
