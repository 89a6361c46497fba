"""Download one file, checked and atomic: a temp file beside ``dest``, SHA-256 verified, then
``os.replace``; on any failure the temp file is removed and ``dest`` is left untouched."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

_CHUNK = 1 << 16


class DownloadError(OSError):
    """The file could not be fetched (offline, refused, HTTP error, connection cut).

    >>> import tempfile, fnn
    >>> try:                                       # nothing listens on port 9 of this machine
    ...     fnn.datasets.download("http://127.0.0.1:9/x.gz", tempfile.mkdtemp() + "/x.gz",
    ...                           None, progress=False, timeout=5)
    ... except fnn.datasets.DownloadError as e:
    ...     print(type(e).__name__, isinstance(e, OSError))
    DownloadError True
    """


class ChecksumError(ValueError):
    """The downloaded (or cached) bytes do not have the expected SHA-256.

    A ``ValueError``: the data is wrong, not the network. ``fnn.datasets.fashion_mnist`` and
    ``mnist`` raise it for a damaged cached file, naming the file to delete.

    >>> import fnn
    >>> issubclass(fnn.datasets.ChecksumError, ValueError)
    True
    """


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None, *, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` (parent folders created) and return ``dest`` as a Path.

    The bytes go to a temp file in ``dest``'s folder while their SHA-256 is computed; only when
    it equals ``sha256`` (hex, case-insensitive; ``None`` skips the check) is the temp file
    renamed onto ``dest``. Raises :class:`DownloadError` (naming the URL) when the server
    cannot be reached or the transfer breaks, :class:`ChecksumError` on a mismatch; no partial
    file is left behind either way. ``timeout`` is in seconds per network operation;
    ``progress`` shows a tqdm bar on stderr.

    Any URL ``urllib`` opens works, ``file://`` too:

    >>> import hashlib, os, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "src.bin").write_bytes(b"fnn")
    >>> sha = hashlib.sha256(b"fnn").hexdigest()
    >>> out = download((folder / "src.bin").as_uri(), folder / "copy" / "dst.bin", sha,
    ...                progress=False)
    >>> out.read_bytes(), sorted(os.listdir(folder / "copy"))
    (b'fnn', ['dst.bin'])
    >>> download("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    ...          "t10k-labels-idx1-ubyte.gz", "/tmp/fnn/t10k-labels-idx1-ubyte.gz",
    ...          "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
    ...          )  # doctest: +SKIP
    PosixPath('/tmp/fnn/t10k-labels-idx1-ubyte.gz')
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    length = resp.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    got = 0
                    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              desc=dest.name, disable=not progress, file=sys.stderr,
                              dynamic_ncols=True, leave=False) as bar:
                        while chunk := resp.read(_CHUNK):
                            f.write(chunk)
                            h.update(chunk)
                            got += len(chunk)
                            bar.update(len(chunk))
                    if total is not None and got != total:
                        raise DownloadError(
                            f"download: {url}: connection closed after {got} of {total} bytes"
                        )
            except DownloadError:
                raise
            except urllib.error.HTTPError as err:
                raise DownloadError(f"download: {url}: HTTP {err.code} {err.reason}") from None
            except urllib.error.URLError as err:
                raise DownloadError(f"download: cannot reach {url} ({err.reason})") from None
            except (OSError, http.client.HTTPException) as err:
                raise DownloadError(
                    f"download: {url}: transfer failed ({type(err).__name__}: {err})"
                ) from None
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise ChecksumError(
                f"download: {url}: SHA-256 mismatch, expected {sha256.lower()}, got {digest} "
                f"({got} bytes); the file was discarded ({dest} not written)"
            )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest
