import zipfile

import numpy as np
import pytest

import fnn


def _model_params(seed=0, hidden=4):
    model = fnn.serial(fnn.linear(hidden), fnn.tanh(), fnn.serial(fnn.linear(3), fnn.relu()))
    return fnn.serial(model).init(fnn.key(seed), (-1, 5))[1]


def test_round_trip_with_and_without_template(tmp_path):
    params = _model_params()
    path = tmp_path / "sub" / "model.npz"
    fnn.save(path, params)
    for loaded in (fnn.load(path), fnn.load(path, like=params)):
        assert fnn.tree.same_structure(loaded, params)
        for a, b in zip(fnn.tree.tree_leaves(loaded), fnn.tree.tree_leaves(params)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    names = zipfile.ZipFile(path).namelist()
    assert "params/00_serial/00_linear/w.npy" in names
    assert not [p for p in tmp_path.joinpath("sub").iterdir() if p.name.startswith(".")]


def test_float64_params_and_keys(tmp_path):
    params = {"a": {"w": np.arange(6.0).reshape(2, 3)}, "empty": {}}
    fnn.save(tmp_path / "p.npz", params)
    loaded = fnn.load(tmp_path / "p.npz")
    assert loaded["empty"] == {} and loaded["a"]["w"].dtype == np.float64


def test_mismatches_are_named(tmp_path):
    fnn.save(tmp_path / "m.npz", _model_params(hidden=4))
    with pytest.raises(fnn.FnnFileError, match=r"00_serial/00_linear/w: shape \(5, 4\), expected \(5, 6\)"):
        fnn.load(tmp_path / "m.npz", like=_model_params(hidden=6))
    other = fnn.serial(fnn.linear(4), fnn.tanh()).init(fnn.key(0), (-1, 5))[1]
    with pytest.raises(fnn.FnnFileError, match=r"missing keys \['00_linear/b', '00_linear/w'\]"):
        fnn.load(tmp_path / "m.npz", like=other)
    f64 = fnn.tree.tree_map(lambda a: a.astype(np.float64), _model_params())
    with pytest.raises(fnn.FnnFileError, match="dtype float32, expected float64"):
        fnn.load(tmp_path / "m.npz", like=f64)


def test_not_fnn_truncated_and_garbage_files(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    with pytest.raises(fnn.FnnFileError, match="not an fnn params file"):
        fnn.load(tmp_path / "plain.npz")
    fnn.save(tmp_path / "good.npz", _model_params())
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(fnn.FnnFileError, match="damaged or truncated"):
        fnn.load(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello, not a zip")
    with pytest.raises(fnn.FnnFileError):
        fnn.load(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(fnn.FnnFileError, match="single .npy"):
        fnn.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        fnn.load(tmp_path / "missing.npz")


def test_object_arrays_never_pickled(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        fnn.save(tmp_path / "o.npz", {"w": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "evil.npz", **{"meta/format": np.array("fnn-params-1"),
                                        "params/w": np.array([object()], dtype=object)})
    with pytest.raises(fnn.FnnFileError):
        fnn.load(tmp_path / "evil.npz")


def test_failed_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    fnn.save(path, {"w": np.ones(2)})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        fnn.save(path, {"w": np.zeros(2)})
    monkeypatch.undo()
    np.testing.assert_array_equal(fnn.load(path)["w"], np.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
