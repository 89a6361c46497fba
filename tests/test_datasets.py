"""fnn.datasets: toy sets, USPS / Fashion-MNIST / MNIST loaders, IDX parsing, the downloader
(against a local http.server only: these tests never touch the internet) and noise."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import fnn
from fnn.datasets import (
    ChecksumError,
    Dataset,
    DatasetError,
    DownloadError,
    chessboard,
    data_home,
    download,
    fashion_mnist,
    gaussian_mixture,
    gaussian_noise,
    masking,
    mnist,
    parse_idx,
    read_idx,
    read_usps,
    salt_and_pepper,
    usps,
    xor,
)

# the loader modules (named apart from their functions, so fnn.datasets.mnist is the function)
mnist_mod = importlib.import_module("fnn.datasets.idx_sets")
usps_mod = importlib.import_module("fnn.datasets.usps_files")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Every test: downloads go to a closed local port unless a test points them at its own
    local server; no proxy settings can route 127.0.0.1 elsewhere."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    dead = f"http://127.0.0.1:{_closed_port()}/"
    monkeypatch.setattr(mnist_mod, "BASE_URLS", {"fashion-mnist": dead, "mnist": dead})


# --------------------------------------------------------------------------- toy sets

TOYS = [gaussian_mixture, xor, chessboard]


@pytest.mark.parametrize("make", TOYS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [101, 400])
def test_toy_shapes_dtypes_balance(make, n):
    d = make(n, test_size=0.2, seed=3)
    assert isinstance(d, Dataset) and d.num_classes == 2
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert d.x_train.shape == (len(d.y_train), 2) and d.x_test.shape == (len(d.y_test), 2)
    assert len(d.y_train) + len(d.y_test) == n
    assert abs(len(d.y_test) - 0.2 * n) <= 2
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=2)
    assert abs(counts[0] - counts[1]) <= 1
    test_counts = np.bincount(d.y_test, minlength=2)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 1)  # stratified
    assert np.isfinite(d.x_train).all()
    # shuffled: labels are not sorted
    assert 0 < np.abs(np.diff(d.y_train)).sum()


@pytest.mark.parametrize("make", TOYS, ids=lambda f: f.__name__)
def test_toy_deterministic_per_seed(make):
    a, b, c = make(200, seed=7), make(200, seed=7), make(200, seed=8)
    for u, v in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x_train, c.x_train)
    k1, k2 = make(200, seed=fnn.key(5)), make(200, seed=fnn.key(5))
    np.testing.assert_array_equal(k1.x_train, k2.x_train)
    assert make(50, test_size=0.0, seed=0).x_test.shape == (0, 2)


def test_gaussian_mixture_always_linearly_separable():
    for noise in (0.1, 1.0, 3.0):
        d = gaussian_mixture(1000, noise=noise, seed=1)
        for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
            assert np.array_equal(x.sum(1) > 0, y == 1)
    d = gaussian_mixture(2000, noise=0.3, seed=0)
    np.testing.assert_allclose(d.x_train[d.y_train == 1].mean(0), [1, 1], atol=0.05)


def test_xor_and_chessboard_geometry():
    d = xor(400, noise=0.2, seed=0)
    x, y = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])
    quadrant_class = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(int)
    assert (quadrant_class == y).mean() > 0.99
    for q in [(-1, -1), (1, 1), (-1, 1), (1, -1)]:  # four blobs of ~100 points each
        near = np.linalg.norm(x - np.array(q), axis=1) < 1
        assert 90 <= near.sum() <= 110

    d = chessboard(1000, cells=5, seed=0)
    x = np.concatenate([d.x_train, d.x_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert x.min() >= -1 and x.max() <= 1
    cell = np.floor((x + 1) / 2 * 5).astype(int)
    assert np.array_equal(cell.sum(1) % 2, y)
    assert len(np.unique(cell[:, 0] * 5 + cell[:, 1])) == 25
    noisy = chessboard(1000, cells=5, noise=0.1, seed=0)
    np.testing.assert_array_equal(noisy.y_train, d.y_train)  # noise moves points, not labels
    assert not np.array_equal(noisy.x_train, d.x_train)


@pytest.mark.parametrize("kwargs,error", [
    (dict(n=1), r"gaussian_mixture: n must be an int >= 2, got 1"),
    (dict(n=10, noise=-1.0), r"gaussian_mixture: noise must be a finite number >= 0, got -1.0"),
    (dict(n=10, test_size=1.0), r"gaussian_mixture: test_size must be a number in \[0, 1\)"),
    (dict(n=10, seed=1.5), r"seed must be an int or an fnn key"),
])
def test_toy_bad_arguments(kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        gaussian_mixture(**kwargs)
    with pytest.raises(ValueError, match="chessboard: cells must be an int >= 2, got 1"):
        chessboard(10, cells=1)


def test_loaders_check_their_arguments_before_reading_files():
    with pytest.raises(ValueError, match=r"usps: layout must be one of \('flat', 'image', 'signal'\)"):
        fnn.datasets.usps("/nonexistent", layout="square")
    with pytest.raises(ValueError, match=r"digits: layout must be one of"):
        fnn.datasets.digits(layout="square")
    d = xor(20)
    with pytest.raises(ValueError, match=r"resplit: test_size must be an int in \[1, 19\], got 20"):
        fnn.datasets.resplit(d, test_size=20)
    with pytest.raises(ValueError, match=r"masking: fraction must be a fraction in \[0, 1\]"):
        fnn.datasets.masking(np.zeros((2, 4)), float("nan"), 0)


# --------------------------------------------------------------------------- USPS


def _usps_arrays(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 2001, size=(n, 256)) * 0.0005).astype(np.float32)  # like usps.h5
    x[:, 0], x[:, 1] = 0.0, 1.0
    y = np.arange(n) % 10
    return x, y


def _open(path: Path, gz: bool):
    return gzip.open(path, "wt", compresslevel=1) if gz else open(path, "w")


def _write_esl(path: Path, x, y, gz=False):
    with _open(path, gz) as f:  # "6.0000 -1.0000 ... \n" as ziptrain.dat
        for label, row in zip(y, x):
            f.write(" ".join(f"{v:.4f}" for v in [float(label), *(2.0 * row.astype(np.float64) - 1)]) + " \n")


def _write_course(path: Path, x, y, gz=False):
    with _open(path, gz) as f:  # header, "label v..." in [0, 2], final -1
        f.write("10 256\n")
        for label, row in zip(y, x):
            vals = (f"{v:.3f}".rstrip("0").rstrip(".") for v in 2.0 * row.astype(np.float64))
            f.write(f"{label} " + " ".join(vals) + " \n")
        f.write("-1\n")


def _write_h5(path: Path, splits: dict):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for name, (x, y) in splits.items():
            g = f.create_group(name)
            g.create_dataset("data", data=x, compression="gzip")
            g.create_dataset("target", data=y.astype(np.int32))


@pytest.mark.parametrize("gz", [False, True])
def test_read_usps_all_formats_agree(tmp_path, gz):
    x, y = _usps_arrays(23)
    sfx = ".gz" if gz else ""
    _write_esl(tmp_path / f"zip.train{sfx}", x, y, gz)
    _write_course(tmp_path / f"USPS_train.txt{sfx}", x, y, gz)
    _write_h5(tmp_path / "usps.h5", {"train": (x, y), "test": (x[:5], y[:5])})
    results = [read_usps(tmp_path / f"zip.train{sfx}"), read_usps(tmp_path / f"USPS_train.txt{sfx}"),
               read_usps(tmp_path / "usps.h5", "train")]
    for xr, yr in results:
        assert xr.dtype == np.float32 and yr.dtype == np.int64 and xr.shape == (23, 256)
        np.testing.assert_allclose(xr, x, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(yr, y)
    assert read_usps(tmp_path / "usps.h5", "test")[0].shape == (5, 256)
    with pytest.raises(ValueError, match="split="):
        read_usps(tmp_path / "usps.h5")


@pytest.fixture
def small_usps(monkeypatch):
    monkeypatch.setattr(usps_mod, "SIZES", {"train": 12, "test": 7})
    return _usps_arrays(12, 1), _usps_arrays(7, 2)


def test_usps_loader_file_choice_and_layouts(tmp_path, monkeypatch, small_usps):
    (xtr, ytr), (xte, yte) = small_usps
    folder = tmp_path / "usps"
    folder.mkdir()
    _write_esl(folder / "ziptrain.dat.gz", xtr, ytr, gz=True)
    _write_course(folder / "USPS_test.txt", xte, yte)
    d = usps(tmp_path)
    np.testing.assert_allclose(d.x_train, xtr, atol=1e-6)
    np.testing.assert_allclose(d.x_test, xte, atol=1e-6)
    assert d.class_names == tuple("0123456789")
    assert usps(tmp_path, layout="image").x_train.shape == (12, 16, 16, 1)
    assert usps(tmp_path, layout="signal").x_test.shape == (7, 256, 1)
    with pytest.raises(ValueError, match="layout"):
        usps(tmp_path, layout="grid")
    # FNN_DATA is used when data_dir is not given
    monkeypatch.setenv("FNN_DATA", str(tmp_path))
    np.testing.assert_array_equal(usps().y_test, yte)
    # usps.h5 is preferred when h5py is importable, text files otherwise
    h5_xtr = np.flipud(xtr).copy()
    _write_h5(folder / "usps.h5", {"train": (h5_xtr, ytr), "test": (xte, yte)})
    np.testing.assert_array_equal(usps().x_train, h5_xtr)
    monkeypatch.setattr(usps_mod, "_have_h5py", lambda: False)
    np.testing.assert_allclose(usps().x_train, xtr, atol=1e-6)


def test_data_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA", str(tmp_path / "env"))
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("FNN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "fnn"


def test_usps_errors_name_the_file(tmp_path, small_usps):
    (xtr, ytr), (xte, yte) = small_usps
    with pytest.raises(FileNotFoundError, match=r"usps.*FNN_DATA"):
        usps(tmp_path)
    folder = tmp_path / "usps"
    folder.mkdir()
    _write_esl(folder / "zip.train", xtr[:10], ytr[:10])  # wrong row count
    _write_course(folder / "USPS_test.txt", xte, yte)
    with pytest.raises(DatasetError, match=r"zip\.train has 10 train rows, expected 12"):
        usps(tmp_path)

    bad = tmp_path / "bad"
    bad.mkdir()
    _write_esl(bad / "label.txt", xtr, np.where(ytr == 3, 11, ytr))
    with pytest.raises(DatasetError, match=r"label\.txt.*labels must be integers 0\.\.9"):
        read_usps(bad / "label.txt")
    _write_esl(bad / "range.txt", xtr * 2, ytr)  # values up to 3: not ESL
    with pytest.raises(DatasetError, match=r"range\.txt.*outside \[-1, 1\]"):
        read_usps(bad / "range.txt")
    lines = (bad / "range.txt").read_text().splitlines()
    (bad / "short.txt").write_text("\n".join([lines[0], lines[1].rsplit(" ", 2)[0]]) + "\n")
    with pytest.raises(DatasetError, match=r"short\.txt"):
        read_usps(bad / "short.txt")
    (bad / "what.txt").write_text("1 2 3\n")
    with pytest.raises(DatasetError, match=r"what\.txt: unknown USPS text format"):
        read_usps(bad / "what.txt")
    (bad / "hdr.txt").write_text("10 64\n1 2\n-1\n")
    with pytest.raises(DatasetError, match=r"hdr\.txt.*64 features"):
        read_usps(bad / "hdr.txt")
    _write_course(bad / "cut.txt.gz", xtr, ytr, gz=True)
    (bad / "cut.txt.gz").write_bytes((bad / "cut.txt.gz").read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"cut\.txt\.gz: damaged or truncated gzip"):
        read_usps(bad / "cut.txt.gz")
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_usps(bad / "nothere.txt")


USPS_COUNTS = {
    "train": [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644],
    "test": [359, 264, 198, 166, 200, 160, 170, 147, 166, 177],
}


def _real(sub: str) -> Path:
    root = os.environ.get("FNN_DATA")
    if not root or not (Path(root) / sub).is_dir():
        pytest.skip(f"real data: set FNN_DATA to a folder with {sub}/ (e.g. /work/shared/data)")
    return Path(root)


@pytest.mark.slow
def test_usps_real_data_all_formats_agree():
    root = _real("usps")
    d = usps(root, layout="image")
    assert d.x_train.shape == (7291, 16, 16, 1) and d.x_test.shape == (2007, 16, 16, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == USPS_COUNTS["train"]
    assert np.bincount(d.y_test).tolist() == USPS_COUNTS["test"]
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert d.x_test.min() == 0.0 and d.x_test.max() == 1.0
    folder = root / "usps"
    pytest.importorskip("h5py")
    pairs = {"train": folder / "ziptrain.dat.gz", "test": folder / "USPS_test.txt.gz"}
    for split, text_file in pairs.items():
        if not text_file.is_file():
            continue
        xh, yh = read_usps(folder / "usps.h5", split)
        xt, yt = read_usps(text_file)
        assert np.abs(xh - xt).max() < 1e-6
        np.testing.assert_array_equal(yh, yt)


# --------------------------------------------------------------------------- IDX


def _idx(arr: np.ndarray, code: int = 0x08, dtype=">u1") -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(dtype).tobytes()


def test_parse_idx_roundtrip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    raw = _idx(images)
    assert int.from_bytes(raw[:4], "big") == 2051
    np.testing.assert_array_equal(parse_idx(raw, magic=2051), images)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    out = read_idx(tmp_path / "a.gz", magic=2051)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, images)
    ints = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    got = parse_idx(_idx(ints, 0x0C, ">i4"))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, ints)


def test_parse_idx_errors(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    raw = _idx(labels)
    with pytest.raises(DatasetError, match=r"f\.idx: bad IDX magic 2049 .*expected 2051"):
        parse_idx(raw, "f.idx", magic=2051)
    with pytest.raises(DatasetError, match=r"g: not an IDX file \(bad magic 0x504b0304"):
        parse_idx(b"PK\x03\x04" + bytes(20), "g", magic=2049)
    with pytest.raises(DatasetError, match="truncated IDX data"):
        parse_idx(raw[:-3], "t")
    with pytest.raises(DatasetError, match="truncated IDX header"):
        parse_idx(_idx(np.zeros((2, 2, 2), np.uint8))[:9], "t")
    with pytest.raises(DatasetError, match="truncated IDX file"):
        parse_idx(b"\x00\x00", "t")
    with pytest.raises(DatasetError, match="unexpected bytes"):
        parse_idx(raw + b"\x00", "t")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw * 50)[:-30])
    with pytest.raises(DatasetError, match=r"cut\.gz: truncated gzip stream"):
        read_idx(tmp_path / "cut.gz")


# --------------------------------------------------------------------------- Fashion-MNIST / MNIST


@pytest.fixture
def fake_idx(monkeypatch):
    """Tiny IDX .gz files standing in for the four upstream files (checksums patched)."""
    rng = np.random.default_rng(0)
    sizes = {"train": 12, "test": 5}
    arrays, files = {}, {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img = rng.integers(0, 256, size=(sizes[split], 28, 28), dtype=np.uint8)
        img[0, 0, 0], img[0, 0, 1] = 0, 255
        lab = (np.arange(sizes[split]) % 10).astype(np.uint8)
        arrays[split] = (img, lab)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(_idx(img), mtime=0)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(_idx(lab), mtime=0)
    sums = {name: hashlib.sha256(b).hexdigest() for name, b in files.items()}
    monkeypatch.setattr(mnist_mod, "SIZES", sizes)
    monkeypatch.setattr(mnist_mod, "CHECKSUMS", {"fashion-mnist": sums, "mnist": sums})
    return SimpleNamespace(files=files, arrays=arrays, sums=sums)


def _put(folder: Path, files: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, b in files.items():
        (folder / name).write_bytes(b)


def test_idx_loader_local_files(tmp_path, fake_idx):
    _put(tmp_path / "fashion-mnist", fake_idx.files)
    d = fashion_mnist(tmp_path, download=False, layout="image")
    img, lab = fake_idx.arrays["train"]
    assert d.x_train.shape == (12, 28, 28, 1) and d.x_test.shape == (5, 28, 28, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    np.testing.assert_allclose(d.x_train[..., 0], img / 255.0, rtol=1e-6)
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    np.testing.assert_array_equal(d.y_train, lab)
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"
    assert fashion_mnist(tmp_path, download=False).x_test.shape == (5, 784)
    assert fashion_mnist(tmp_path, download=False, layout="signal").x_test.shape == (5, 784, 1)
    with pytest.raises(FileNotFoundError, match=r"mnist.*download=False"):
        mnist(tmp_path, download=False)
    _put(tmp_path / "mnist", fake_idx.files)
    assert mnist(tmp_path, download=False).class_names == tuple("0123456789")


def test_idx_loader_rejects_wrong_checksum(tmp_path, fake_idx):
    files = dict(fake_idx.files)
    files["t10k-labels-idx1-ubyte.gz"] = gzip.compress(_idx(np.zeros(5, np.uint8)))
    _put(tmp_path / "fashion-mnist", files)
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte\.gz has SHA-256 .* expected"):
        fashion_mnist(tmp_path, download=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_idx_real_data(name):
    root = _real(name)
    load = fashion_mnist if name == "fashion-mnist" else mnist
    d = load(root, download=False)  # checks the published SHA-256 of all four files
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.x_train.dtype == np.float32 and d.y_test.dtype == np.int64
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    counts = {
        "fashion-mnist": ([6000] * 10, [1000] * 10),
        "mnist": ([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    }[name]
    assert np.bincount(d.y_train).tolist() == counts[0]
    assert np.bincount(d.y_test).tolist() == counts[1]
    for fname, sha in mnist_mod.CHECKSUMS[name].items():  # the table itself is right
        assert hashlib.sha256((root / name / fname).read_bytes()).hexdigest() == sha
    assert d.num_classes == 10


# --------------------------------------------------------------------------- download (local only)


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 (random port): ``files[name]`` is served at ``/name``,
    ``/cut/name`` sends half of it and hangs up; everything else is a 404."""
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            name = self.path.lstrip("/")
            cut = name.startswith("cut/")
            name = name[4:] if cut else name
            if name not in files:
                self.send_error(404)
                return
            body = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{srv.server_port}/", files=files, hits=hits)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_download_ok_and_atomic(tmp_path, server):
    body = os.urandom(300_000)
    server.files["blob.bin"] = body
    sha = hashlib.sha256(body).hexdigest()
    dest = tmp_path / "sub" / "blob.bin"
    assert download(server.url + "blob.bin", dest, sha.upper(), progress=True) == dest
    assert dest.read_bytes() == body
    assert os.listdir(dest.parent) == ["blob.bin"]


def test_download_checksum_mismatch_leaves_nothing(tmp_path, server):
    server.files["blob.bin"] = b"not the right bytes"
    dest = tmp_path / "blob.bin"
    with pytest.raises(ChecksumError, match=r"blob\.bin: SHA-256 mismatch, expected 0{64}, got [0-9a-f]{64}"):
        download(server.url + "blob.bin", dest, "0" * 64, progress=False)
    assert os.listdir(tmp_path) == []
    dest.write_bytes(b"old")  # an existing file is never clobbered by a failed download
    with pytest.raises(ChecksumError):
        download(server.url + "blob.bin", dest, "0" * 64, progress=False)
    assert dest.read_bytes() == b"old" and os.listdir(tmp_path) == ["blob.bin"]


def test_download_connection_errors_leave_nothing(tmp_path, server):
    server.files["blob.bin"] = os.urandom(200_000)
    sha = hashlib.sha256(server.files["blob.bin"]).hexdigest()
    with pytest.raises(DownloadError, match=r"cut/blob\.bin"):
        download(server.url + "cut/blob.bin", tmp_path / "blob.bin", sha, progress=False)
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        download(server.url + "missing.bin", tmp_path / "blob.bin", sha, progress=False)
    url = f"http://127.0.0.1:{_closed_port()}/blob.bin"
    with pytest.raises(DownloadError, match="cannot reach " + url):
        download(url, tmp_path / "blob.bin", sha, progress=False, timeout=5)
    assert os.listdir(tmp_path) == []


def test_fashion_mnist_downloads_once(tmp_path, server, fake_idx, monkeypatch):
    server.files.update(fake_idx.files)
    monkeypatch.setattr(mnist_mod, "BASE_URLS", {"fashion-mnist": server.url, "mnist": server.url})
    d = fashion_mnist(tmp_path, progress=False)
    assert sorted(os.listdir(tmp_path / "fashion-mnist")) == sorted(fake_idx.files)
    np.testing.assert_array_equal(d.y_test, fake_idx.arrays["test"][1])
    assert len(server.hits) == 4
    monkeypatch.setenv("FNN_DATA", str(tmp_path))
    fashion_mnist(progress=False)  # found in $FNN_DATA: no new request
    assert len(server.hits) == 4
    # a server with the wrong bytes: checksum error, nothing written
    server.files["train-labels-idx1-ubyte.gz"] = b"garbage"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        mnist(tmp_path, progress=False)
    assert not (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").exists()
    assert all(not n.endswith(".part") for n in os.listdir(tmp_path / "mnist"))


def test_offline_error_names_url_folder_and_env(tmp_path, fake_idx):
    # the autouse fixture points BASE_URLS at a closed local port
    with pytest.raises(DownloadError) as err:
        fashion_mnist(tmp_path, progress=False)
    msg = str(err.value)
    assert mnist_mod.BASE_URLS["fashion-mnist"] + "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "fashion-mnist") in msg and "FNN_DATA" in msg
    assert os.listdir(tmp_path / "fashion-mnist") == []


# --------------------------------------------------------------------------- noise


def test_gaussian_noise_level_clipping_purity():
    x = np.full((200, 256), 0.5, np.float32)
    x.setflags(write=False)  # pure: never written
    y = gaussian_noise(x, 0.2, rng=0)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert abs(float(y.std()) - 0.2) < 0.005 and abs(float(y.mean()) - 0.5) < 0.005
    assert (x == 0.5).all()
    z = gaussian_noise(np.zeros((100, 100)), 0.5, rng=1)  # float64 stays float64, clipped
    assert z.dtype == np.float64 and z.min() == 0.0 and z.max() <= 1.0
    assert 0.45 < (z == 0).mean() < 0.55
    np.testing.assert_array_equal(gaussian_noise(x, 0.0, rng=0), x)
    with pytest.raises(ValueError, match="0.2 for 20%"):
        gaussian_noise(x, 20, rng=0)


@pytest.mark.parametrize("fn", [gaussian_noise, salt_and_pepper, masking], ids=lambda f: f.__name__)
def test_noise_deterministic_and_rng_kinds(fn):
    x = np.random.default_rng(0).random((50, 64)).astype(np.float32)
    before = x.copy()
    a, b, c = fn(x, 0.3, 1), fn(x, 0.3, 1), fn(x, 0.3, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(fn(x, 0.3, fnn.key(4)), fn(x, 0.3, fnn.key(4)))
    np.testing.assert_array_equal(fn(x, 0.3, np.random.default_rng(9)), fn(x, 0.3, np.random.default_rng(9)))
    np.testing.assert_array_equal(x, before)
    state = np.random.get_state()[1].copy()
    fn(x, 0.3, 3)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched
    with pytest.raises(TypeError, match="rng"):
        fn(x, 0.3, None)
    with pytest.raises(ValueError):
        fn(x, 1.5, 0)
    assert fn(np.ones((2, 4, 4, 1), np.uint8), 0.3, 0).dtype == np.float32


def test_salt_and_pepper_amount():
    x = np.full((300, 300), 0.5, np.float32)
    y = salt_and_pepper(x, 0.2, rng=0)
    assert abs((y != x).mean() - 0.2) < 0.005
    assert abs((y == 0).mean() - 0.1) < 0.005 and abs((y == 1).mean() - 0.1) < 0.005
    assert set(np.unique(y).tolist()) == {0.0, 0.5, 1.0} and (x == 0.5).all()
    np.testing.assert_array_equal(salt_and_pepper(x, 0.0, rng=0), x)
    assert set(np.unique(salt_and_pepper(x, 1.0, rng=0)).tolist()) == {0.0, 1.0}


def test_masking_fraction():
    x = np.ones((100, 16, 16, 1), np.float32)
    y = masking(x, 0.3, rng=0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs((y == 0).mean() - 0.3) < 0.015 and set(np.unique(y).tolist()) == {0.0, 1.0}
    assert (x == 1).all()
    assert (masking(x, 1.0, rng=0) == 0).all() and (masking(x, 0.0, rng=0) == 1).all()
