"""`.safetensors` files (fnn.interop.safetensors_files): fnn trees round-trip bit for bit,
files written by the safetensors library read as flat dicts (and fnn's files read there), and
forged headers are refused before anything is allocated."""

import json
import struct

import numpy as np
import pytest

import fnn


def _trees():
    model = fnn.serial(fnn.conv2d(4, 3, bias=True), fnn.batch_norm(), fnn.relu(), fnn.flatten(),
                       fnn.linear(3))
    _, params, state = fnn.init(model, fnn.key(0), (-1, 6, 6, 2))
    params64 = fnn.tree.tree_map(lambda a: a.astype(np.float64) + 1e-17, params)
    opt = fnn.adam(1e-3)
    train_state = fnn.TrainState.create(params, opt, key=fnn.key(3), model_state=state)
    return {"params": params, "state": state, "params64": params64, "train_state": train_state,
            "mixed": {"i": np.arange(5, dtype=np.int64), "b": np.array([True, False]),
                      "h": np.linspace(0, 1, 7).astype(np.float16), "u": np.uint8(7),
                      "empty": np.zeros((0, 3), np.float32), "n": 3, "x": 0.5, "t": (1, "a")}}


@pytest.mark.parametrize("name", ["params", "state", "params64", "train_state", "mixed"])
def test_round_trip_is_bitwise(tmp_path, name):
    tree = _trees()[name]
    path = tmp_path / f"{name}.safetensors"
    fnn.save(path, tree)
    for loaded in (fnn.load(path), fnn.load(path, like=tree)):
        assert fnn.tree.same_structure(loaded, tree) or name == "train_state"
        for a, b in zip(fnn.tree.tree_leaves(loaded), fnn.tree.tree_leaves(tree)):
            if isinstance(b, np.random.SeedSequence):
                assert (a.entropy, a.spawn_key) == (b.entropy, b.spawn_key)
                continue
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes()
    assert type(fnn.load(path, like=tree)) is type(tree)
    with open(path, "rb") as f:  # a real safetensors header, fnn's manifest in its metadata
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    assert "fnn" in header["__metadata__"] and n % 8 == 0


def test_mismatches_are_named(tmp_path):
    params = _trees()["params"]
    fnn.save(tmp_path / "p.safetensors", params)
    other = fnn.serial(fnn.conv2d(5, 3, bias=True), fnn.batch_norm(), fnn.relu(), fnn.flatten(),
                       fnn.linear(3)).init(fnn.key(0), (-1, 6, 6, 2))[1]
    with pytest.raises(fnn.FnnFileError, match=r"00_conv2d/w: shape \(3, 3, 2, 4\), expected "
                                               r"\(3, 3, 2, 5\)"):
        fnn.load(tmp_path / "p.safetensors", like=other)


def test_library_oracle_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {"features.0.weight": np.random.default_rng(0).normal(size=(4, 1, 3, 3)).astype(
        np.float32), "features.0.bias": np.arange(4, dtype=np.float64), "n": np.array(3, np.int64)}
    st.save_file(arrays, str(tmp_path / "torch.safetensors"))
    loaded = fnn.load(tmp_path / "torch.safetensors")  # a flat dict by name
    assert sorted(loaded) == sorted(arrays)
    for k in arrays:
        assert loaded[k].dtype == arrays[k].dtype and loaded[k].tobytes() == arrays[k].tobytes()
    params = _trees()["params"]
    fnn.save(tmp_path / "fnn.safetensors", params)
    theirs = st.load_file(str(tmp_path / "fnn.safetensors"))
    np.testing.assert_array_equal(theirs["00_conv2d/w"], params["00_conv2d"]["w"])


def test_bf16_widens_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    t = torch.tensor([1.5, -2.25, 3.0e38, 1e-3], dtype=torch.bfloat16)
    st.save_file({"w": t}, str(tmp_path / "bf.safetensors"))
    w = fnn.load(tmp_path / "bf.safetensors")["w"]
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, t.float().numpy())


def _forge(path, header: dict, data: bytes = b"", size: int | None = None):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if size is None else size) + text + data)
    return path


@pytest.mark.parametrize("header,data,size,match", [
    ({"w": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 4 << 40]}}, bytes(16), None,
     r"declares bytes \[0, 4398046511104\) but the file holds 16"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "v": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16), None,
     "'w' and 'v' overlap|'v' and 'w' overlap"),
    ({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, bytes(16), None,
     r"declares shape \(5,\) of F32 \(20 bytes\) in a range of 16"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), 1 << 50,
     "the header declares 1125899906842624 bytes"),
    ({"w": {"dtype": "O", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), None,
     "dtype 'O'"),
    ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), None,
     "damaged shape"),
])
def test_forged_headers_are_refused_before_allocating(tmp_path, monkeypatch, header, data, size,
                                                      match):
    path = _forge(tmp_path / "forged.safetensors", header, data, size)
    allocated = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: allocated.append(a) or real_empty(*a, **k))
    with pytest.raises(fnn.FnnFileError, match=match):
        fnn.load(path)
    assert not allocated


def test_garbage_and_truncated_files(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"hello")
    with pytest.raises(fnn.FnnFileError, match="too few"):
        fnn.load(tmp_path / "junk.safetensors")
    _forge(tmp_path / "nojson.safetensors", {}, size=None)
    (tmp_path / "nojson.safetensors").write_bytes(struct.pack("<Q", 4) + b"\xff{{{")
    with pytest.raises(fnn.FnnFileError, match="not JSON"):
        fnn.load(tmp_path / "nojson.safetensors")
    fnn.save(tmp_path / "good.safetensors", _trees()["params"])
    data = (tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    with pytest.raises(fnn.FnnFileError, match="but the file holds"):
        fnn.load(tmp_path / "cut.safetensors")
    with pytest.raises(FileNotFoundError):
        fnn.load(tmp_path / "missing.safetensors")


def test_unstorable_dtype_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"save: a/z has dtype complex128"):
        fnn.save(tmp_path / "c.safetensors", {"a": {"z": np.zeros(2, complex)}})
    assert not list(tmp_path.iterdir())
