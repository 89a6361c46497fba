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
    assert "tree/00_serial/00_linear/w.npy" in names
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
    with pytest.raises(fnn.FnnFileError, match=r"<root>: missing keys \['00_linear', '01_tanh'\]; "
                                                r"<root>: unexpected keys \['00_serial'\]"):
        fnn.load(tmp_path / "m.npz", like=other)
    f64 = fnn.tree.tree_map(lambda a: a.astype(np.float64), _model_params())
    with pytest.raises(fnn.FnnFileError, match="dtype float32, expected float64"):
        fnn.load(tmp_path / "m.npz", like=f64)


def test_not_fnn_truncated_and_garbage_files(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    with pytest.raises(fnn.FnnFileError, match="not an fnn file"):
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
    with pytest.raises(TypeError, match="w is an array of dtype object"):
        fnn.save(tmp_path / "o.npz", {"w": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "evil.npz", **{"meta/format": np.array("fnn-params-1"),
                                        "params/w": np.array([object()], dtype=object)})
    with pytest.raises(fnn.FnnFileError, match="holds Python objects") as err:
        fnn.load(tmp_path / "evil.npz")
    assert "allow_pickle" not in str(err.value)


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


# ---- issue 9, item 6: files refuse what they could not give back, and say where


def test_save_rejects_slash_keys_and_none_values(tmp_path):
    with pytest.raises(TypeError, match=r"key 'a/b' at <root> is empty or contains '/'"):
        fnn.save(tmp_path / "s.npz", {"a/b": np.ones(2)})
    with pytest.raises(TypeError, match=r"layer/w is None"):
        fnn.save(tmp_path / "n.npz", {"layer": {"w": None, "b": np.ones(2)}})
    with pytest.raises(TypeError, match=r"1 is None"):
        fnn.save(tmp_path / "l.npz", [np.ones(1), None])
    assert not list(tmp_path.iterdir())


def test_save_expands_user_and_writes_readable_files(tmp_path, monkeypatch):
    import os
    import stat

    monkeypatch.setenv("HOME", str(tmp_path))
    old = os.umask(0o022)
    try:
        fnn.save("~/models/p.npz", {"w": np.ones(2, np.float32)})
    finally:
        os.umask(old)
    path = tmp_path / "models" / "p.npz"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    np.testing.assert_array_equal(fnn.load("~/models/p.npz")["w"], np.ones(2))


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_os_errors_name_the_target_path(tmp_path, monkeypatch, errno_name):
    import errno
    import os

    def refuse(*a, **k):
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(np, "savez", refuse)
    target = tmp_path / "run" / "model.npz"
    with pytest.raises(OSError) as err:
        fnn.save(target, {"w": np.ones(2)})
    assert str(target) in str(err.value) and err.value.errno == getattr(errno, errno_name)
    assert not list((tmp_path / "run").iterdir())  # no temporary file left behind


def _zip_with(tmp_path, name, data: bytes, compress=zipfile.ZIP_STORED):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        zf.writestr("tree/w.npy", data)
        zf.writestr("meta/manifest.npy", _npy_bytes(np.array(
            '{"format": "fnn-tree-2", "tree": {"dict": {"w": {"array": "w"}}}}')))
    return path


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_load_refuses_absurd_declared_sizes_before_allocating(tmp_path):
    # 256 MiB of zeros deflate to about 256 KiB: a zip bomb (16x over fnn.io's limits)
    chunk = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.uint8))
    chunk["shape"] = (256 << 20,)
    import io
    import zlib

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, chunk)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("tree/w.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            zero = bytes(1 << 24)
            for _ in range(16):
                f.write(zero)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(fnn.FnnFileError, match=r"declares \d+ bytes in a \d+-byte file"):
        fnn.load(bomb)
    del zlib
    # a forged .npy header declaring 7 TiB in a tiny member
    forged = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float64))
    forged["shape"] = (7 << 40 // 8,)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, forged)
    path = _zip_with(tmp_path, "forged.npz", header.getvalue() + bytes(64))
    with pytest.raises(fnn.FnnFileError, match=r"declares shape .* refusing to allocate"):
        fnn.load(path)


def test_named_tuples_keys_and_scalars_round_trip_with_their_types(tmp_path):
    opt = fnn.adam(1e-3)
    _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    state = fnn.TrainState.create(params, opt, key=fnn.split(fnn.key(7))[1])
    state = state._replace(step=12, opt_state=opt.update(params, state.opt_state, params)[1])
    fnn.save(tmp_path / "s.npz", state)
    back = fnn.load(tmp_path / "s.npz", like=fnn.TrainState.create(params, opt))
    assert type(back) is fnn.TrainState and type(back.opt_state) is type(state.opt_state)
    assert back.step == 12 and isinstance(back.step, int)
    assert back.key.entropy == state.key.entropy and back.key.spawn_key == state.key.spawn_key
    for a, b in zip(fnn.tree.tree_leaves((back.params, back.opt_state)),
                    fnn.tree.tree_leaves((state.params, state.opt_state))):
        np.testing.assert_array_equal(a, b)
    plain = fnn.load(tmp_path / "s.npz")  # no template: look-alike namedtuples
    assert type(plain).__name__ == "TrainState" and plain.step == 12
    assert type(plain.opt_state).__name__ == type(state.opt_state).__name__


def _as_written_before_steps(state):
    """``state`` with each optimiser state's ``steps`` field named ``count``, as fnn wrote them
    before the rename (same type names, same field order)."""
    import collections

    def old(node):
        if isinstance(node, tuple) and "steps" in getattr(node, "_fields", ()):
            fields = ["count" if f == "steps" else f for f in node._fields]
            return collections.namedtuple(type(node).__name__, fields)(*map(old, node))
        if isinstance(node, tuple):
            return type(node)(*map(old, node)) if hasattr(node, "_fields") else tuple(map(old, node))
        return node

    return old(state)


def test_old_optimizer_states_with_count_still_load(tmp_path):
    """Files written when optimiser states counted their updates in a field ``count`` (now
    ``steps``) load into today's template, and without one come back with today's names."""
    _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    opts = {"adam": fnn.adam(1e-3), "momentum": fnn.sgd(0.1, momentum=0.9)}
    for name, opt in opts.items():
        state = fnn.TrainState.create(params, opt)
        for _ in range(2):
            params_, opt_state = fnn.optim.apply_gradients(opt, params, state.opt_state, params)
            state = state._replace(params=params_, opt_state=opt_state, step=state.step + 1)
        fnn.save(tmp_path / f"{name}.npz", _as_written_before_steps(state))
        manifest = np.load(tmp_path / f"{name}.npz")["meta/manifest"]
        assert '"count"' in str(manifest) and '"steps"' not in str(manifest)  # the old layout
        back = fnn.load(tmp_path / f"{name}.npz", like=fnn.TrainState.create(params, opt))
        assert [type(s) for s in back.opt_state] == [type(s) for s in state.opt_state]
        assert back.opt_state[-1].steps == 2 and back.opt_state[0].steps == 2
        for a, b in zip(fnn.tree.tree_leaves(back), fnn.tree.tree_leaves(state)):
            np.testing.assert_array_equal(a, b)
        plain = fnn.load(tmp_path / f"{name}.npz")
        assert plain.opt_state[-1]._fields == ("steps", "lr")
    # only the listed renames: another NamedTuple's `count` stays a mismatch
    import collections
    Other = collections.namedtuple("ScaleByRmsState", ["count"])
    fnn.save(tmp_path / "rms.npz", Other(np.zeros(1)))
    with pytest.raises(fnn.FnnFileError, match=r"ScaleByRmsState\('count',\) in the file"):
        fnn.load(tmp_path / "rms.npz", like=fnn.optim.ScaleByRmsState(np.zeros(1)))
    # a NamedTuple of one's own that happens to share a listed name loads into its own fields
    Mine = collections.namedtuple("TraceState", ["count", "trace"])
    fnn.save(tmp_path / "mine.npz", Mine(3, np.ones(2)))
    assert fnn.load(tmp_path / "mine.npz", like=Mine(0, np.zeros(2))).count == 3


def test_old_optimizer_states_fingerprint_as_today():
    """A checkpoint's fingerprint written with ``count`` fields matches today's ``steps``, so
    ``train(checkpoint=...)`` resumes a run checkpointed before the rename."""
    from fnn.checkpoint import fingerprint_differences, tree_signature

    _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    state = fnn.TrainState.create(params, fnn.adam(1e-3))
    old = {"state": tree_signature(_as_written_before_steps(state)), "threads": 1}
    assert "count" in str(old) and "steps" not in str(old)
    assert fingerprint_differences(old, {"state": tree_signature(state), "threads": 1}) == []
    other = {"state": tree_signature(fnn.TrainState.create(params, fnn.sgd(0.1))), "threads": 1}
    assert fingerprint_differences(old, other)  # another optimiser still differs


def test_old_params_files_still_load(tmp_path):
    np.savez(tmp_path / "old.npz", **{"meta/format": np.array("fnn-params-1"),
                                       "meta/empty": np.array(["01_relu"]),
                                       "params/00_linear/w": np.ones((2, 3), np.float32)})
    loaded = fnn.load(tmp_path / "old.npz")
    assert loaded["01_relu"] == {} and loaded["00_linear"]["w"].shape == (2, 3)
