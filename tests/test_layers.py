"""Gradient checks (float64, central differences) of every dense-side layer and combinator."""

import numpy as np
import pytest

import fnn

RNG = np.random.default_rng(0)


def _check(layer, input_shape, *, x=None, key=None, tol=1e-6):
    out_shape, params = layer.init(fnn.key(1), input_shape)
    if x is None:
        x = RNG.standard_normal((3, *input_shape[1:]))
    errors = fnn.gradcheck(layer, params, x, key=key)
    assert errors, "gradcheck returned nothing"
    worst = max(errors, key=errors.get)
    assert errors[worst] < tol, f"{worst}: relative error {errors[worst]:.2e}"
    y = layer.apply(fnn.tree.tree_map(lambda a: a.astype(np.float64), params), x)
    assert tuple(np.shape(y)[1:]) == tuple(out_shape[1:])
    return errors


ACTIVATIONS = [
    fnn.tanh(), fnn.sigmoid(), fnn.stable_sigmoid(), fnn.softmax(), fnn.log_softmax(),
    fnn.relu(), fnn.leaky_relu(0.1), fnn.softplus(), fnn.identity(), fnn.sine(), fnn.sinc(),
    fnn.gaussian(), fnn.elu(), fnn.elu(0.5), fnn.gelu(),
]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=lambda layer: layer.name)
def test_activation_gradients(layer):
    x = RNG.standard_normal((4, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu-type kinks
    errors = _check(layer, (-1, 5), x=x)
    assert set(errors) == {"x"}


def test_sinc_near_zero_matches_series_and_gradient():
    x = np.array([[0.0, 1e-8, 0.05, -0.09, 0.11, 3.0]])
    y = fnn.sinc().apply({}, x)
    safe = np.where(x == 0, 1.0, x)
    np.testing.assert_allclose(y, np.where(x == 0, 1.0, np.sin(safe) / safe), rtol=1e-12)
    _check(fnn.sinc(), (-1, 6), x=x)


@pytest.mark.parametrize("layer,shape", [
    (fnn.linear(4), (-1, 5)),
    (fnn.linear(3, bias=False), (-1, 5)),
    (fnn.linear(2), (-1, 3, 5)),
    (fnn.flatten(), (-1, 2, 3, 2)),
    (fnn.reshape((3, 2)), (-1, 6)),
    (fnn.reshape((-1, 2)), (-1, 2, 3)),
    (fnn.serial(fnn.linear(4), fnn.tanh(), fnn.linear(3), fnn.softmax()), (-1, 5)),
    (fnn.serial(fnn.parallel(fnn.linear(3), fnn.linear(2)), fnn.concatenate()), (-1, 4)),
    (fnn.serial(fnn.parallel(fnn.linear(3), fnn.serial(fnn.linear(3), fnn.tanh())), fnn.add()),
     (-1, 4)),
    (fnn.residual(fnn.linear(4), fnn.tanh()), (-1, 4)),
    (fnn.serial(fnn.serial(fnn.linear(3), fnn.relu()), fnn.linear(2)), (-1, 4)),
], ids=lambda v: v.name if isinstance(v, fnn.Layer) else str(v))
def test_layer_and_combinator_gradients(layer, shape):
    _check(layer, shape)


def test_parallel_outputs_tuple_and_gradcheck_over_tuple_outputs():
    layer = fnn.parallel(fnn.linear(3), fnn.identity())
    out_shape, params = layer.init(fnn.key(0), (-1, 4))
    assert out_shape == ((-1, 3), (-1, 4))
    errors = fnn.gradcheck(layer, params, RNG.standard_normal((2, 4)))
    assert max(errors.values()) < 1e-6


def test_concatenate_and_add_on_tuple_inputs():
    xs = (RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3)))
    for layer in (fnn.concatenate(), fnn.add()):
        errors = fnn.gradcheck(layer, {}, xs)
        assert set(errors) == {"x/0", "x/1"} and max(errors.values()) < 1e-6


def test_dropout_gradcheck_with_fixed_key_and_inference_identity():
    layer = fnn.dropout(0.3)
    x = RNG.standard_normal((50, 8))
    errors = fnn.gradcheck(layer, {}, x, key=fnn.key(3))
    assert errors["x"] < 1e-6
    y, _ = layer.vjp({}, x, key=fnn.key(3))
    dropped = np.mean(y == 0)
    assert 0.2 < dropped < 0.4
    np.testing.assert_allclose(y[y != 0], x[y != 0] / 0.7)
    assert layer.apply({}, x) is x or np.array_equal(layer.apply({}, x), x)


def test_dropout_without_key_is_a_clear_error():
    with pytest.raises(fnn.LayerError, match=r"dropout\(0.5\).*key"):
        fnn.dropout(0.5).vjp({}, np.ones((2, 2)))
    model = fnn.serial(fnn.linear(2), fnn.dropout(0.5))
    _, params = model.init(fnn.key(0), (-1, 2))
    with pytest.raises(fnn.LayerError, match=r"\[01_dropout\]"):
        model.vjp(params, np.ones((2, 2), np.float32))


def test_serial_params_keys_and_nesting():
    model = fnn.serial(*[fnn.linear(2) if i % 2 == 0 else fnn.tanh() for i in range(12)])
    _, params = model.init(fnn.key(0), (-1, 2))
    keys = list(params)
    assert keys[0] == "00_linear" and keys[11] == "11_tanh"
    assert keys == sorted(keys)
    assert params["01_tanh"] == {}


def test_stable_sigmoid_never_overflows():
    for dtype, big in ((np.float64, 1000.0), (np.float32, 100.0)):
        x = np.array([[-big, -50.0, 0.0, 50.0, big]], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = fnn.stable_sigmoid().apply({}, x)
            _, back = fnn.stable_sigmoid().vjp({}, x)
            back(np.ones_like(x))
        assert y.dtype == dtype
        assert 0.0 <= y[0, 0] < 1e-40 and y[0, -1] == 1.0 and y[0, 2] == 0.5


def test_softmax_stable_for_huge_logits():
    x = np.array([[1000.0, 0.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(fnn.softmax().apply({}, x), [[1.0, 0.0, 0.0]])
        np.testing.assert_allclose(fnn.log_softmax().apply({}, x), [[0.0, -1000.0, -2000.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_end_to_end(dtype):
    model = fnn.serial(fnn.linear(8), fnn.gelu(), fnn.linear(3), fnn.log_softmax())
    _, params = model.init(fnn.key(0), (-1, 4))
    params = fnn.tree.tree_map(lambda a: a.astype(dtype), params) if dtype != np.float32 else params
    x = RNG.standard_normal((5, 4)).astype(dtype)
    y, back = model.vjp(params, x)
    grads, dx = back(np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(g.dtype == dtype for g in fnn.tree.tree_leaves(grads))


def test_keys_are_pure_and_reproducible():
    k = fnn.key(42)
    a, b = fnn.split(k)
    a2, _ = fnn.split(k)
    assert k.spawn_key == () and a.spawn_key == (0,)
    assert np.array_equal(fnn.rng(a).random(3), fnn.rng(a2).random(3))
    assert not np.array_equal(fnn.rng(a).random(3), fnn.rng(b).random(3))
    _, p1 = fnn.linear(4).init(fnn.key(7), (-1, 3))
    _, p2 = fnn.linear(4).init(fnn.key(7), (-1, 3))
    np.testing.assert_array_equal(p1["w"], p2["w"])
    assert fnn.fold_in(k, 3).spawn_key == fnn.split(k, 4)[3].spawn_key


def test_value_and_grad_matches_manual_chain():
    model = fnn.serial(fnn.linear(3), fnn.tanh(), fnn.linear(2))
    _, params = model.init(fnn.key(0), (-1, 4))
    x = RNG.standard_normal((6, 4)).astype(np.float32)
    y = RNG.integers(0, 2, 6)
    value, grads = fnn.value_and_grad(model, fnn.cross_entropy)(params, x, y)
    assert value == pytest.approx(fnn.cross_entropy.value(model.apply(params, x), y), rel=1e-6)
    assert fnn.tree.same_structure(grads, params)


def _spy(calls: list) -> fnn.Layer:
    """A parameter-free identity layer that records every call of its pullback."""
    def vjp(params, x, *, key=None, input_grad=True):
        def pullback(dy):
            calls.append(dy.shape)
            return {}, dy if input_grad else None
        return x, pullback

    return fnn.Layer(lambda k, s: (s, {}), lambda p, x: x, vjp, "spy")


@pytest.mark.parametrize("make", [
    lambda spy: fnn.serial(spy, fnn.flatten(), fnn.linear(3), spy, fnn.tanh(), fnn.linear(2)),
    lambda spy: fnn.serial(fnn.serial(spy, fnn.conv1d(2, 3, bias=True)), spy, fnn.relu(),
                           fnn.flatten(), fnn.linear(2)),
], ids=["dense", "nested-conv"])
def test_input_grad_false_skips_only_the_unneeded_input_gradients(make):
    calls = []
    model = make(_spy(calls))
    _, params = model.init(fnn.key(0), (-1, 5, 2))
    x = RNG.standard_normal((4, 5, 2))
    dy = RNG.standard_normal((4, 2))
    y, pullback = model.vjp(params, x)
    grads, dx = pullback(dy)
    assert dx.shape == x.shape and len(calls) == 2
    calls.clear()
    y2, param_pullback = model.vjp(params, x, input_grad=False)
    grads2, dx2 = param_pullback(dy)
    # the spy before every param is skipped, the one after the first params still runs
    assert dx2 is None and len(calls) == 1
    np.testing.assert_array_equal(y, y2)
    assert fnn.tree.same_structure(grads, grads2)
    for a, b in zip(fnn.tree.tree_leaves(grads), fnn.tree.tree_leaves(grads2)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_gradcheck_compares_the_no_dx_pullback_with_the_full_one():
    layer = fnn.conv2d(2, 3, bias=True)
    _, params = layer.init(fnn.key(0), (-1, 5, 5, 1))
    x = RNG.standard_normal((2, 5, 5, 1))
    errors = fnn.gradcheck(layer, params, x)
    assert {"no_dx/w", "no_dx/b"} <= set(errors) and max(errors.values()) < 1e-6

    def ignores_input_grad(p, xx, *, key=None, input_grad=True):
        return layer.vjp(p, xx, key=key)
    with pytest.raises(AssertionError, match="returned a dx"):
        fnn.gradcheck(layer._replace(vjp=ignores_input_grad), params, x)

    def wrong_without_dx(p, xx, *, key=None, input_grad=True):
        y, back = layer.vjp(p, xx, input_grad=input_grad)
        if input_grad:
            return y, back
        return y, lambda dy: ({"w": back(dy)[0]["w"] * 2, "b": back(dy)[0]["b"]}, None)
    errors = fnn.gradcheck(layer._replace(vjp=wrong_without_dx), params, x)
    assert errors["no_dx/w"] > 0.1 and errors["params/w"] < 1e-6


def test_assert_gradients_close_passes_good_and_names_bad_gradients():
    layer = fnn.linear(3)
    _, params = layer.init(fnn.key(0), (-1, 4))
    x = np.random.default_rng(0).standard_normal((2, 4))
    assert max(fnn.assert_gradients_close(layer, params, x).values()) < 1e-6
    wrong = fnn.layers.elementwise("bad_square", lambda v: v * v, lambda v, out: v)  # not 2v
    with pytest.raises(AssertionError, match=r"bad_square: .*relative error > 1e-06\) at x \("):
        fnn.assert_gradients_close(wrong, {}, x + 3.0)


@pytest.mark.parametrize("shape", [(3, 700), (2, 3, 700), (300, 700)],
                         ids=["2d", "3d", "many_rows"])
def test_linear_input_gradient_of_a_large_kernel(shape):
    """Kernels of TRANSPOSED_MIN entries or more take the transposed product (but for many
    rows): same dx."""
    layer = fnn.linear(100)
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    assert params["w"].size >= fnn.ops.dense.TRANSPOSED_MIN
    x = np.random.default_rng(0).standard_normal(shape)
    y, pullback = layer.vjp(params, x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx = pullback(dy)[1]
    assert dx.shape == x.shape and dx.flags.c_contiguous
    np.testing.assert_allclose(dx, dy @ params["w"].T, rtol=1e-12)


# --- declared kinds and configs -------------------------------------------------------------------

BUILT_IN = {  # every built-in layer: its kind and the config that rebuilds its maths
    "relu": (fnn.relu(), {}),
    "leaky_relu": (fnn.leaky_relu(0.2), {"slope": 0.2}),
    "elu": (fnn.elu(0.5), {"alpha": 0.5}),
    "softmax": (fnn.softmax(), {"axis": -1}),
    "log_softmax": (fnn.log_softmax(), {"axis": -1}),
    "linear": (fnn.linear(4, bias=False), {"out_dim": 4, "bias": False}),
    "conv": (fnn.conv_transpose2d(3, 2, stride=2, padding=1, bias=True),
             {"nd": 2, "out_channels": 3, "kernel": (2, 2), "stride": (2, 2),
              "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "transpose": True,
              "output_padding": (0, 0), "bias": True}),
    "max_pool": (fnn.max_pool1d(3, 2, 1), {"nd": 1, "kernel": (3,), "stride": (2,),
                                           "padding": ((1, 1),)}),
    "avg_pool": (fnn.avg_pool2d(2), {"nd": 2, "kernel": (2, 2), "stride": (2, 2),
                                     "padding": ((0, 0), (0, 0))}),
    "upsample": (fnn.upsample2d((2, 3)), {"nd": 2, "factor": (2, 3), "mode": "nearest"}),
    "global_avg_pool": (fnn.global_avg_pool(), {}),
    "batch_norm": (fnn.batch_norm(momentum=0.2), {"momentum": 0.2, "eps": 1e-5, "affine": True}),
    "layer_norm": (fnn.layer_norm((-2, -1), affine=False),
                   {"axes": (-2, -1), "eps": 1e-5, "affine": False}),
    "group_norm": (fnn.group_norm(2), {"groups": 2, "eps": 1e-5, "affine": True}),
    "dropout": (fnn.dropout(0.25), {"rate": 0.25}),
    "flatten": (fnn.flatten(), {}),
    "reshape": (fnn.reshape((2, -1)), {"shape": (2, -1)}),
    "concatenate": (fnn.concatenate(axis=1), {"axis": 1}),
    "add": (fnn.add(), {}),
}


@pytest.mark.parametrize("kind", sorted(BUILT_IN))
def test_built_in_layers_declare_their_kind_and_config(kind):
    layer, config = BUILT_IN[kind]
    assert layer.kind == kind and dict(layer.config) == config
    with pytest.raises(TypeError):
        layer.config["new"] = 1  # read-only: a layer is immutable


def test_every_activation_of_the_ops_table_is_a_layer_of_its_kind():
    from fnn.ops.activations import ACTIVATIONS as TABLE

    for name in TABLE:
        layer = getattr(fnn, name)()
        assert layer.kind == name and layer.name == name, name
        assert dict(layer.config).keys() <= {"axis", *TABLE[name].params}


def test_user_layers_and_combinators_declare_nothing_unless_told():
    mine = fnn.layers.elementwise("cube", lambda x: x**3, lambda x, y: 3 * x**2)
    assert mine.kind is None and dict(mine.config) == {}
    assert fnn.serial(fnn.relu()).kind is None and fnn.serial(fnn.relu()).flow == "serial"
    tagged = fnn.layers.parameter_free("double", lambda x: 2 * x, lambda x, y, dy: 2 * dy,
                                       kind="scale", config={"factor": 2.0})
    assert tagged.kind == "scale" and dict(tagged.config) == {"factor": 2.0}

    def init(key, shape):
        return shape, {"s": np.ones(shape[-1:])}

    scale = fnn.layer("scale", init, lambda p, x: (x * p["s"], x),
                      lambda p, x, dy, g: ({"s": (dy * x).sum(0)}, dy * p["s"] if g else None),
                      kind="scale", config={"per": "feature"})
    assert (scale.kind, dict(scale.config)) == ("scale", {"per": "feature"})


@pytest.mark.parametrize("make,match", [
    (lambda: fnn.leaky_relu("0.1"), "leaky_relu: slope must be a finite number"),
    (lambda: fnn.elu(float("nan")), "elu: alpha must be a finite number"),
    (lambda: fnn.linear(3, bias=1), r"linear\(3\): bias must be True or False"),
    (lambda: fnn.batch_norm(eps=-1.0), "eps must be a finite number >= 0"),
    (lambda: fnn.layer_norm(affine="yes"), "affine must be True or False"),
    (lambda: fnn.concatenate(axis=1.5), "concatenate: axis must be an int"),
    (lambda: fnn.reshape((2, 2.5)), "at most one -1 and otherwise positive sizes"),
    (lambda: fnn.layers.pool("min", 2, 2), r"pool: kind must be one of \('max', 'avg'\)"),
])
def test_bad_layer_arguments_are_worded_by_fnn_validate(make, match):
    with pytest.raises(ValueError, match=match):
        make()
