"""fnn.ops: the backend switch, and the compiled kernels against the numpy ones (the
reference) on every kernel and on every layer's apply and vjp; relu + max-pool fused in
``serial`` against the unfused pair."""

import os
import subprocess
import sys

import numpy as np
import optree
import pytest

import fnn
from fnn.ops import _backend, geometry, norm, pool, windows
from fnn.ops import activations as act
from fnn.ops import losses as _losses  # noqa: F401  (fnn.ops.losses)

needs_numba = pytest.mark.skipif(not fnn.ops.available(), reason="numba is not installed")
RNG = np.random.default_rng(0)
# float32 results may differ in the last bits (exp implementations, summation order, and
# Winograd's convolutions, whose rounding errors scale with the largest value in the sum):
# atol is relative to the array's largest magnitude (at least 1)
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def both(fn, *args):
    """``fn(*args)`` on the numpy then the compiled backend."""
    with fnn.ops.using("numpy"):
        ref = fn(*args)
    with fnn.ops.using("compiled"):
        out = fn(*args)
    return ref, out


def assert_close(ref, out, dtype):
    for a, b in zip(optree.tree_leaves(ref), optree.tree_leaves(out)):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        scale = max(1.0, float(np.abs(a).max())) if a.size else 1.0
        np.testing.assert_allclose(b, a, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


# --- the switch --------------------------------------------------------------------------------

def test_use_and_using_switch_and_restore():
    before = fnn.ops.backend()
    with fnn.ops.using("numpy"):
        assert fnn.ops.backend() == "numpy"
        assert fnn.ops.describe()["backend"] == "numpy"
    assert fnn.ops.backend() == before
    previous = fnn.ops.use("numpy")
    try:
        assert previous == before and fnn.ops.backend() == "numpy"
    finally:
        fnn.ops.use(previous)


def test_bad_backend_names_are_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        fnn.ops.use("fortran")


def test_compiled_without_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_backend, "available", lambda: False)
    with pytest.raises(ImportError, match="fnn\\[fast\\]"):
        fnn.ops.use("compiled")


@pytest.mark.parametrize("env,expected", [("numpy", "numpy"), ("", None), ("Compiled", "compiled")])
def test_environment_variable_picks_the_default(monkeypatch, env, expected):
    if expected == "compiled" and not fnn.ops.available():
        pytest.skip("numba is not installed")
    monkeypatch.setitem(_backend._state, "name", None)
    monkeypatch.setenv("FNN_BACKEND", env)
    default = "compiled" if fnn.ops.available() else "numpy"
    assert fnn.ops.backend() == (expected or default)


def test_environment_variable_with_a_bad_name(monkeypatch):
    monkeypatch.setitem(_backend._state, "name", None)
    monkeypatch.setenv("FNN_BACKEND", "cuda")
    with pytest.raises(ValueError, match="FNN_BACKEND=cuda"):
        fnn.ops.backend()


def test_import_fnn_does_not_import_numba():
    code = ("import sys, numpy as np, fnn; m = fnn.serial(fnn.relu(), fnn.max_pool1d(2));"
            "m.apply({'00_relu': {}, '01_max_pool1d': {}}, np.ones((1, 4, 1)));"
            "print('numba' in sys.modules, fnn.ops.backend())")
    env = dict(os.environ, FNN_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "numpy"]


# --- kernels: compiled == numpy ------------------------------------------------------------------

POOL_GEOMETRIES = [  # (spatial sizes, kernel, stride, padding)
    ((28, 28), (2, 2), (2, 2), ((0, 0), (0, 0))),
    ((7, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),       # a trailing row no window reaches
    ((7, 6), (3, 3), (2, 2), ((1, 1), (1, 1))),       # overlapping, padded
    ((7, 6), (2, 3), (1, 2), ((0, 1), (1, 0))),
    ((9, 9), (2, 2), (3, 3), ((0, 0), (0, 0))),       # gaps between windows
    ((6, 6), (2, 2), (2, 2), ((1, 1), (1, 1))),       # tiling the padded input
    ((11,), (3,), (2,), ((1, 1),)),
    ((12,), (2,), (2,), ((0, 0),)),
    ((13,), (2,), (2,), ((0, 0),)),                   # pairs, a trailing value left out
    ((7, 7), (2, 2), (2, 2), ((0, 0), (0, 0))),       # 2x2, a trailing row and column
]


def _pool_input(sizes, dtype, ties):
    x = RNG.standard_normal((3, *sizes, 5)).astype(dtype)
    if ties:  # many equal values (and zeros): the first maximum must win on both backends;
        x = np.round(x * 2) / 2
        x.reshape(-1)[::17] = np.nan  # and a NaN propagates (its window's arg-max is kept)
    return x


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("sizes,kernel,stride,pads", POOL_GEOMETRIES)
def test_max_pool_kernels_agree(sizes, kernel, stride, pads, relu, ties, dtype):
    g = geometry.window_geometry(sizes, kernel, stride, (1,) * len(kernel), pads)
    x = _pool_input(sizes, dtype, ties)
    (y0, arg0), (y1, arg1) = both(pool.max_pool, x, g, relu)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(arg1, arg0)
    assert arg1.dtype == arg0.dtype == np.uint8
    dy = RNG.standard_normal(y0.shape).astype(dtype)
    dx0, dx1 = both(pool.max_pool_backward, dy, arg0, g, y0 if relu else None)
    if all(s >= k for s, k in zip(stride, kernel)):  # each input gets at most one dy
        np.testing.assert_array_equal(dx1, dx0)
    else:  # overlapping windows add up, in another order
        assert_close(dx0, dx1, dtype)
    assert dx1.shape == x.shape and dx1.dtype == x.dtype


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes,kernel,stride,dilation,padding", [
    ((28, 28), (3, 3), (1, 1), (1, 1), "same"),
    ((8, 7), (3, 2), (2, 1), (1, 2), ((1, 2), (0, 1))),
    ((6, 6), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0))),
    ((13,), (3,), (2,), (2,), ((2, 1),)),
])
def test_fold_agrees(sizes, kernel, stride, dilation, padding, dtype):
    g = geometry.window_geometry(sizes, kernel, stride, dilation, padding)
    dwin = RNG.standard_normal((2, *g.out_sizes, *kernel, 3)).astype(dtype)
    assert_close(*both(windows.fold, dwin, g), dtype)
    broadcast = np.broadcast_to(dwin[..., :1], dwin.shape)  # what avg-pool's pullback folds
    assert_close(*both(windows.fold, broadcast, g), dtype)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [act.relu_vjp, act.tanh_vjp, act.sigmoid_vjp])
def test_elementwise_vjps_agree(kernel, dtype):
    a = RNG.standard_normal((4, 7, 3)).astype(dtype)
    a[0, 0] = 0.0
    dy = RNG.standard_normal(a.shape).astype(dtype)
    if kernel is not act.relu_vjp:
        a = np.tanh(a)  # an output of tanh / in sigmoid's range
    ref, out = both(kernel, a, a, dy)  # (x, y, dy): the relu reads x, the others y
    assert_close(ref, out, dtype)
    assert_close(*both(kernel, a[:, ::2], a[:, ::2], dy[:, ::2]), dtype)  # strided: numpy


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_agrees(dtype):
    x = 4 * RNG.standard_normal((4, 7, 33)).astype(dtype)  # tanh's both branches, odd size
    x[0, 0, :3] = (0.0, 30.0, -30.0)
    dy = RNG.standard_normal(x.shape).astype(dtype)
    assert_close(*both(act.gelu, x), dtype)
    assert_close(*both(act.gelu_vjp, x, None, dy), dtype)
    assert_close(*both(act.gelu_vjp, x[:, ::2], None, dy[:, ::2]), dtype)  # strided: numpy

    def kept(x, dy):  # the training pass: the forward's tanh kept for the backward
        y, t = act.gelu_saving_tanh(x)
        return y, act.gelu_vjp_of_tanh(x, y, t, dy)

    assert_close(*both(kept, x, dy), dtype)
    assert_close(both(kept, x, dy)[1][1], both(act.gelu_vjp, x, None, dy)[1], dtype)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_agrees(dtype):
    x = (3 * RNG.standard_normal((4, 7, 33)) + 2).astype(dtype)
    scale, bias, dy = (RNG.standard_normal(s).astype(dtype) for s in (33, 33, x.shape))
    ref, out = both(norm.layer_norm, x, scale, bias, 1e-5)
    assert_close(ref, out, dtype)
    assert_close(*both(norm.layer_norm_backward, dy, ref[1], ref[2], scale), dtype)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_agrees(dtype):
    z = (RNG.standard_normal((33, 10)) * 5).astype(dtype)
    z[0] = 80.0  # large logits: no overflow on either backend
    labels = RNG.integers(0, 10, 33)
    (v0, d0), (v1, d1) = both(fnn.ops.losses.softmax_cross_entropy, z, labels)
    assert v1 == pytest.approx(v0, rel=1e-6 if dtype == np.float32 else 1e-12)
    assert_close(d0, d1, dtype)
    assert both(fnn.ops.losses.softmax_cross_entropy, z, labels, False)[1][1] is None
    (v0, g0), (v1, g1) = both(fnn.cross_entropy.vjp, z, labels)
    assert v1 == pytest.approx(v0, rel=1e-6) and g0.dtype == g1.dtype == dtype
    assert_close(g0, g1, dtype)
    for bad in (10, -1):  # the range check runs in the kernel: None, and the loss words it
        labels[5] = bad
        assert both(fnn.ops.losses.softmax_cross_entropy, z, labels) == (None, None)
        for name in fnn.ops.BACKENDS:
            with fnn.ops.using(name), pytest.raises(fnn.LossError, match=rf"\[{bad}\]"):
                fnn.cross_entropy.vjp(z, labels)


# --- layers: apply and vjp on both backends ------------------------------------------------------

LAYERS = [
    (fnn.conv2d(4, 3, padding="same", bias=True), (2, 8, 8, 3)),
    (fnn.conv2d(3, (2, 3), stride=(2, 1), dilation=(1, 2), padding=1), (2, 9, 8, 2)),
    (fnn.conv1d(5, 3, stride=2, padding="same", bias=True), (2, 11, 1)),
    (fnn.conv2d(12, 3, padding="same"), (2, 6, 6, 9)),  # 8+ channels each side: Winograd
    (fnn.conv2d(12, (3, 2), padding="same"), (2, 6, 6, 9)),  # 8+ input channels: the wide dx
    (fnn.conv2d(4, 3, stride=2, padding=1, bias=True), (2, 7, 7, 8)),
    (fnn.conv1d(12, 3, padding="same"), (2, 9, 9)),
    (fnn.conv_transpose2d(2, 3, stride=2, padding=1, output_padding=1, bias=True), (2, 4, 4, 3)),
    (fnn.conv_transpose1d(3, 2, stride=2), (2, 5, 4)),
    (fnn.max_pool2d(2), (2, 8, 8, 3)), (fnn.max_pool2d(3, 2, 1), (2, 7, 6, 2)),
    (fnn.max_pool1d(2), (2, 9, 3)), (fnn.avg_pool2d(2), (2, 7, 6, 2)),
    (fnn.avg_pool1d(3, 2, 1), (2, 9, 3)), (fnn.relu(), (3, 5, 4)), (fnn.tanh(), (3, 5)),
    (fnn.sigmoid(), (3, 5)), (fnn.gelu(), (3, 5, 4)), (fnn.layer_norm(), (3, 5, 9)),
    (fnn.serial(fnn.relu(), fnn.max_pool2d(2)), (2, 8, 8, 3)),
    (fnn.serial(fnn.conv2d(6, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
                fnn.conv2d(8, 3, padding="same"), fnn.relu(), fnn.max_pool2d(2), fnn.flatten(),
                fnn.linear(5), fnn.tanh(), fnn.linear(3), fnn.sigmoid()), (4, 12, 12, 1)),
]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer,shape", LAYERS, ids=lambda v: getattr(v, "name", None))
def test_layers_agree_on_both_backends(layer, shape, dtype):
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    params = optree.tree_map(lambda a: a.astype(dtype), params)
    x = RNG.standard_normal(shape).astype(dtype)
    assert_close(*both(layer.apply, params, x), dtype)

    def forward_backward(params, x):
        y, pullback = layer.vjp(params, x)
        return y, pullback(np.cos(y))

    assert_close(*both(forward_backward, params, x), dtype)


# --- relu fused into max-pool --------------------------------------------------------------------

def _unfused(*layers):
    """The same model with every relu kept apart (an identity between it and the pool)."""
    out = []
    for layer in layers:
        out.append(layer)
        if layer.name == "relu":
            out.append(fnn.identity())
    return fnn.serial(*out)


@pytest.mark.parametrize("pool", [fnn.max_pool2d(2), fnn.max_pool2d(3, 2, 1), fnn.max_pool1d(2)],
                         ids=["2x2", "3x3-s2-p1", "1d"])
def test_fused_relu_max_pool_is_the_pair(backend, pool):
    nd = 2 if pool.name.endswith("2d") else 1
    shape = (3, *(7,) * nd, 4)
    fused_model = fnn.serial(fnn.relu(), pool)
    from fnn.layers.fusion import plan

    assert [i for i, pair in plan([fnn.relu(), pool]) if pair is not None] == [0]
    assert all(pair is None for _, pair in plan([fnn.relu(), fnn.identity(), pool]))
    x = np.round(RNG.standard_normal(shape) * 2) / 2  # ties and zeros
    params = {"00_relu": {}, "01_" + pool.name: {}}
    relu, plain = fnn.relu(), fnn.serial(fnn.relu(), fnn.identity(), pool)
    plain_params = {"00_relu": {}, "01_identity": {}, "02_" + pool.name: {}}
    np.testing.assert_array_equal(fused_model.apply(params, x), plain.apply(plain_params, x))
    y, pullback = fused_model.vjp(params, x)
    y2, pullback2 = plain.vjp(plain_params, x)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(y, pool.apply({}, relu.apply({}, x)))
    dy = RNG.standard_normal(y.shape)
    (grads, dx), (_, dx2) = pullback(dy), pullback2(dy)
    np.testing.assert_array_equal(dx, dx2)
    assert grads == params


def test_fused_relu_max_pool_gradcheck(backend):
    model = fnn.serial(fnn.conv2d(3, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
                       fnn.flatten(), fnn.linear(2))
    _, params = model.init(fnn.key(3), (-1, 6, 6, 2))
    x = RNG.standard_normal((2, 6, 6, 2))
    errors = fnn.gradcheck(model, params, x)
    assert max(errors.values()) < 1e-6, errors


def test_fused_pair_names_the_layer_in_errors(backend):
    model = fnn.serial(fnn.relu(), fnn.max_pool1d(2))
    params = {"00_relu": {}, "01_max_pool1d": {}}
    for run in (model.apply, lambda p, x: model.vjp(p, x)):
        with pytest.raises(fnn.LayerError, match=r"\[01_max_pool1d\] max_pool1d\(2\): expected"):
            run(params, np.ones((2, 4)))
        with pytest.raises(fnn.LayerError, match=r"\[00_relu\] relu: has no parameters"):
            run(dict(params, **{"00_relu": {"w": np.ones(1)}}), np.ones((1, 4, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_linear_tanh_is_the_pair_bit_for_bit(backend, dtype):
    from fnn.layers.fusion import plan

    fused = fnn.serial(fnn.linear(5), fnn.tanh(), fnn.linear(3))
    plain = fnn.serial(fnn.linear(5), fnn.identity(), fnn.tanh(), fnn.linear(3))
    assert [i for i, pair in plan(fused.children) if pair is not None] == [0]
    assert all(pair is None for _, pair in plan(plain.children))
    assert all(pair is None for _, pair in plan([fnn.linear(5), fnn.sigmoid()]))
    _, params = fused.init(fnn.key(0), (-1, 4))
    params = optree.tree_map(lambda a: a.astype(dtype), params)
    plain_params = {"00_linear": params["00_linear"], "01_identity": {}, "02_tanh": {},
                    "03_linear": params["02_linear"]}
    x = RNG.standard_normal((6, 4)).astype(dtype)
    np.testing.assert_array_equal(fused.apply(params, x), plain.apply(plain_params, x))
    for input_grad in (True, False):
        y, pullback = fused.vjp(params, x, input_grad=input_grad)
        y2, pullback2 = plain.vjp(plain_params, x, input_grad=input_grad)
        np.testing.assert_array_equal(y, y2)
        dy = RNG.standard_normal(y.shape).astype(dtype)
        (grads, dx), (grads2, dx2) = pullback(dy), pullback2(dy)
        for a, b in ((grads["00_linear"], grads2["00_linear"]),
                     (grads["02_linear"], grads2["03_linear"])):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
        assert grads["01_tanh"] == {} and grads["00_linear"]["w"].dtype == dtype
        assert (dx is None) == (not input_grad)
        if input_grad:
            np.testing.assert_array_equal(dx, dx2)


def test_fused_linear_tanh_names_the_layer_in_errors(backend):
    model = fnn.serial(fnn.linear(2), fnn.tanh())
    _, params = model.init(fnn.key(0), (-1, 3))
    for run in (model.apply, lambda p, x: model.vjp(p, x)):
        with pytest.raises(fnn.LayerError, match=r"\[01_tanh\] tanh: has no parameters"):
            run(dict(params, **{"01_tanh": {"w": np.ones(1)}}), np.ones((1, 3)))
        with pytest.raises(fnn.LayerError, match=r"\[00_linear\] linear\(2\): input"):
            run(params, np.ones((1, 4)))
    errors = fnn.gradcheck(model, params, RNG.standard_normal((2, 3)))
    assert max(errors.values()) < 1e-6, errors


def test_fusions_are_looked_up_by_declared_kinds():
    from fnn.layers import fusion

    assert set(fusion.FUSIONS) == {("relu", "max_pool"), ("embedding", "rnn"),
                                   ("embedding", "gru"), ("embedding", "lstm"),
                                   ("linear", "tanh")}
    mine = fnn.layers.parameter_free("my_relu", act.relu, act.relu_vjp)  # no kind: not fused
    assert [pair for _, pair in fusion.plan([mine, fnn.max_pool2d(2)])] == [None, None]
    tagged = fnn.layers.parameter_free("my_relu", act.relu, act.relu_vjp, kind="relu")
    steps = fusion.plan([tagged, fnn.max_pool2d(2), fnn.relu(), fnn.relu(), fnn.max_pool1d(2)])
    assert [(i, pair is not None) for i, pair in steps] == [(0, True), (2, False), (3, True)]
    assert not any(hasattr(f, a) for layer in (fnn.relu(), fnn.max_pool2d(2))
                   for f in (layer.apply, layer.vjp) for a in ("fuses_into", "after_relu"))


def test_fused_pair_blames_the_layer_that_fails_alone():
    model = fnn.serial(fnn.linear(4), fnn.reshape((2, 2, 1)), fnn.relu(), fnn.max_pool2d(2))
    _, params = model.init(fnn.key(0), (-1, 3))
    x = np.ones((2, 3), np.float32)
    assert model.apply(params, x).shape == (2, 1, 1, 1)
    bad = dict(params, **{"03_max_pool2d": {"w": np.ones(1)}})
    for run in (model.apply, lambda p, xx: model.vjp(p, xx)):
        with pytest.raises(fnn.LayerError, match=r"\[03_max_pool2d\] max_pool2d\(2\): has no"):
            run(bad, x)
    pair = fnn.serial(fnn.relu(), fnn.max_pool1d(2))
    with pytest.raises(fnn.LayerError, match=r"\[00_relu\] relu: expected a floating-point"):
        pair.apply({"00_relu": {}, "01_max_pool1d": {}}, np.ones((1, 4, 1), int))
