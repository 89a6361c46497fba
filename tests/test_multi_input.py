"""Layers declaring their inputs (fnn.Input): tuple inputs such as (x, mask), integer ids;
checks naming the input, gradcheck, serial/parallel/each/pick, summary, threads."""

import numpy as np
import pytest

import fnn
from fnn.core import Input


def masked_scale():
    """y = x * s * mask[..., None] on (x (N, T, D) float, mask (N, T) bool)."""
    def init(key, shapes):
        (n, t, d), _ = shapes
        return (n, t, d), {"s": np.full((d,), 2.0, np.float32)}

    def forward(params, xs):
        x, mask = xs
        m = mask[..., None].astype(x.dtype)
        return x * params["s"] * m, (x, m)

    def backward(params, saved, dy, input_grad):
        x, m = saved
        ds = (dy * x * m).reshape(-1, x.shape[-1]).sum(0)
        return {"s": ds}, ((dy * params["s"] * m, None) if input_grad else None)

    return fnn.layer("masked_scale", init, forward, backward,
                     inputs=(Input("x", rank=3), Input("mask", "bool", rank=2)))


def lookup(vocab):
    """A minimal layer on integer ids (N, T) -> (N, T, 2)."""
    def init(key, shape):
        return (*shape, 2), {"table": np.arange(vocab * 2.0).reshape(vocab, 2)}

    def forward(params, ids):
        return params["table"][ids], ids

    def backward(params, ids, dy, input_grad):
        grad = np.zeros_like(params["table"])
        np.add.at(grad, ids, dy)
        return {"table": grad}, None

    return fnn.layer("lookup", init, forward, backward, inputs=(Input("ids", "int", rank=2),))


def data(n=3, t=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d))
    mask = rng.random((n, t)) > 0.3
    return x, mask


def test_init_takes_a_tuple_of_shapes_and_apply_a_tuple_of_arrays():
    layer = masked_scale()
    shape, params = layer.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    assert shape == (-1, 4, 2) and layer.inputs[1].name == "mask"
    x, mask = data()
    y = layer.apply(params, (x, mask))
    np.testing.assert_allclose(y, 2 * x * mask[..., None])


@pytest.mark.parametrize("bad, words", [
    (lambda x, m: x, "takes a tuple of 2 arrays (x, mask)"),
    (lambda x, m: (x, m.astype(float)), "input 1 (mask): expected a bool array"),
    (lambda x, m: (x.astype(int), m), "input 0 (x): expected a floating-point array"),
    (lambda x, m: (x, m[:, :, None]), "input 1 (mask): expects arrays of rank 2"),
    (lambda x, m: (x, m[:2]), "inputs must share the batch size"),
    (lambda x, m: (x[:, :, :1], m), "does not fit params['s']"),
])
def test_bad_inputs_name_the_input(bad, words):
    layer = masked_scale()
    _, params = layer.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    x, mask = data()
    with pytest.raises(fnn.LayerError) as err:
        layer.apply(params, bad(x, mask))
    assert "masked_scale" in str(err.value) and words in str(err.value)


def test_init_errors_name_the_input():
    with pytest.raises(fnn.LayerError, match=r"input 1 \(mask\): expects shapes of rank 2"):
        masked_scale().init(fnn.key(0), ((-1, 4, 2), (-1, 4, 1)))
    with pytest.raises(fnn.LayerError, match="takes 2 inputs"):
        masked_scale().init(fnn.key(0), (-1, 4, 2))


def test_integer_inputs_only_where_declared():
    layer = lookup(5)
    _, params = layer.init(fnn.key(0), (-1, 3))
    ids = np.array([[0, 4, 2]])
    assert layer.apply(params, ids).shape == (1, 3, 2)
    with pytest.raises(fnn.LayerError, match="lookup: expected an integer array"):
        layer.apply(params, ids.astype(np.float32))
    _, lin = fnn.linear(2).init(fnn.key(0), (-1, 3))
    with pytest.raises(fnn.LayerError, match="floating-point"):
        fnn.linear(2).apply(lin, ids)


def test_gradcheck_skips_integer_and_bool_inputs():
    layer = masked_scale()
    _, params = layer.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    errors = fnn.assert_gradients_close(layer, params, data())
    assert sorted(errors) == ["no_dx/s", "params/s", "x/0"]
    model = fnn.serial(lookup(5), fnn.linear(3))
    _, params = model.init(fnn.key(0), (-1, 3))
    errors = fnn.assert_gradients_close(model, params, np.array([[0, 4, 2], [1, 1, 3]]))
    assert "x" not in errors and "params/00_lookup/table" in errors


def test_a_wrong_gradient_fails_gradcheck():
    layer = masked_scale()
    _, params = layer.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    broken = layer._replace(vjp=lambda p, x, **kw: _double_dx(layer.vjp(p, x, **kw)))
    with pytest.raises(AssertionError, match="x/0"):
        fnn.assert_gradients_close(broken, params, data())


def _double_dx(out):
    y, back = out

    def pullback(dy):
        grads, dx = back(dy)
        return grads, (None if dx is None else (2 * dx[0], None))

    return y, pullback


def test_serial_parallel_each_pick_and_summary():
    model = fnn.serial(fnn.parallel(masked_scale(), fnn.pick(0)), fnn.add(), fnn.linear(3))
    shape, params = model.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    assert shape == (-1, 4, 3) and model.inputs == masked_scale().inputs
    errors = fnn.assert_gradients_close(model, params, data())
    assert "x/0" in errors and "x/1" not in errors
    rows = fnn.summary(model, ((-1, 4, 2), (-1, 4)), print_fn=None)
    assert rows[-1]["output_shape"] == (-1, 4, 3)
    routed = fnn.serial(fnn.each(lookup(5), fnn.linear(2)), fnn.add())
    shape, params = routed.init(fnn.key(0), ((-1, 3), (-1, 3, 4)))
    assert shape == (-1, 3, 2)
    ids, x = np.array([[0, 4, 2]]), np.ones((1, 3, 4))
    y, pullback = routed.vjp(params, (ids, x))
    grads, dx = pullback(np.ones_like(y))
    assert dx[0] is None and dx[1].shape == x.shape
    rows = fnn.summary(routed, ((-1, 3), (-1, 3, 4)), print_fn=None)
    assert [r["output_shape"] for r in rows[1:3]] == [(-1, 3, 2), (-1, 3, 2)]


def test_threads_shard_every_input():
    model = fnn.serial(masked_scale(), fnn.linear(1))
    _, params = model.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    x, mask = data(n=8)
    y = np.zeros((8, 4, 1))
    one = fnn.value_and_grad(model, fnn.mse)(params, (x, mask), y)
    two = fnn.value_and_grad(model, fnn.mse, threads=2)(params, (x, mask), y)
    assert one[0] == pytest.approx(two[0], rel=1e-12)
    np.testing.assert_allclose(one[1]["01_linear"]["w"], two[1]["01_linear"]["w"], rtol=1e-10)


def _two_input_run(folder, epochs, threads, fail_at=None):
    rng = np.random.default_rng(0)
    x, mask = rng.normal(size=(48, 4, 2)).astype(np.float32), rng.random((48, 4)) > 0.3
    y = rng.normal(size=(48, 4, 1)).astype(np.float32)
    model = fnn.serial(masked_scale(), fnn.linear(8), fnn.tanh(), fnn.dropout(0.2),
                       fnn.linear(1))
    _, params = model.init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
    opt = fnn.adam(1e-2)
    step = fnn.supervised_step(model, fnn.mse, opt, threads=threads)
    calls = {"n": 0}

    def failing(s, batch):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("stop")
        return step(s, batch)

    return fnn.train(step._replace(fn=failing), fnn.batches(x, mask, y, batch_size=8, rng=1),
                     fnn.TrainState.create(params, opt, key=fnn.key(2)), epochs=epochs,
                     eval_fn=fnn.evaluator(model, (x[:16], mask[:16]), y[:16], loss=fnn.mse,
                                           batch_size=5),
                     progress=False, checkpoint=folder, checkpoint_every=4)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_two_input_model_trains_and_resumes_bitwise(tmp_path, threads):
    """batches(x, mask, y) feed (x, mask) to the model; the evaluator takes a tuple; a run
    stopped by an error and rerun ends where an uninterrupted one does."""
    reference, ref_hist = _two_input_run(tmp_path / "clean", 3, threads)
    assert ref_hist.eval["loss"][-1] < ref_hist.eval["loss"][0]
    with pytest.raises(fnn.TrainingError):
        _two_input_run(tmp_path / "run", 3, threads, fail_at=10)
    state, hist = _two_input_run(tmp_path / "run", 3, threads)
    assert hist.resumed and hist.train == ref_hist.train and hist.eval == ref_hist.eval
    for a, b in zip(fnn.tree.tree_leaves(state.params), fnn.tree.tree_leaves(reference.params)):
        np.testing.assert_array_equal(a, b)


def test_residual_names_the_way_for_tuple_inputs():
    with pytest.raises(fnn.LayerError, match=r"residual: .* takes one array.*pick\(0\)"):
        fnn.residual(masked_scale()).init(fnn.key(0), ((-1, 4, 2), (-1, 4)))
