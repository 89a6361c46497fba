"""Nothing silent (issue 24): resumed runs that are not the same run, user layers that break
the contract, evaluation, fit and data mistakes, each refused with a clear error before any
work (or warned about)."""

import numpy as np
import pytest

import fnn


def _problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    return x, y


def _run(folder, x, y, opt, epochs=1, data=None):
    model = fnn.linear(2)
    _, params = model.init(fnn.key(0), (-1, 3))
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    data = fnn.batches(x, y, batch_size=16, rng=1) if data is None else data
    return fnn.train(step, data, fnn.TrainState.create(params, opt), epochs=epochs,
                     progress=False, checkpoint=folder)


# ----------------------------------------------------------------------- resumed runs


def test_resuming_with_another_learning_rate_is_refused(tmp_path):
    x, y = _problem()
    _run(tmp_path, x, y, fnn.adam(1e-2))
    with pytest.raises(ValueError, match=r"belongs to another run.*\n.*hyperparameters.*"
                                         r"0\.01 in the checkpoint, 0\.001 now"):
        _run(tmp_path, x, y, fnn.adam(1e-3), epochs=2)
    with pytest.raises(ValueError, match=r"hyperparameters.*b1.*0\.9 in the checkpoint"):
        _run(tmp_path, x, y, fnn.adam(1e-2, b1=0.8), epochs=2)
    _, history = _run(tmp_path, x, y, fnn.adam(1e-2), epochs=2)  # the same one resumes
    assert history.resumed


def test_resuming_with_labels_changed_outside_the_sample_is_refused(tmp_path):
    x, y = _problem(n=1000)
    _run(tmp_path, x, y, fnn.sgd(0.1))
    rows = np.unique(np.linspace(0, len(x) - 1, 256).astype(int))
    changed = y.copy()
    i = next(i for i in range(len(y)) if i not in set(rows))  # a row the old sample skipped
    changed[i] = 1 - changed[i]
    with pytest.raises(ValueError, match=r"data\.crc32"):
        _run(tmp_path, x, changed, fnn.sgd(0.1), epochs=2)


def test_resuming_with_a_changed_list_of_batches_is_refused(tmp_path):
    x, y = _problem()
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    _run(tmp_path, x, y, fnn.sgd(0.1), data=data)
    changed = [(bx.copy(), by) for bx, by in data]
    changed[2][0][0, 0] += 1.0
    with pytest.raises(ValueError, match=r"data\.crc32"):
        _run(tmp_path, x, y, fnn.sgd(0.1), epochs=2, data=changed)
    _, history = _run(tmp_path, x, y, fnn.sgd(0.1), epochs=2, data=list(data))
    assert history.resumed


def test_data_whose_contents_the_fingerprint_cannot_see_is_warned_about(tmp_path):
    x, y = _problem()

    class Stream:
        def __iter__(self):
            return iter([(x[:16], y[:16]), (x[16:32], y[16:32])])

        def __len__(self):
            return 2

    with pytest.warns(UserWarning, match="does not cover the contents of data of type Stream"):
        _run(tmp_path, x, y, fnn.sgd(0.1), data=Stream())


def test_checkpoints_of_older_fnn_without_the_new_fields_still_resume(tmp_path):
    from fnn.checkpoint import fingerprint_differences

    now = {"data": {"crc32": 5, "samples": 3}, "step_fn": {"hyperparameters": {"lr": 1}}}
    old = {"data": {"samples": 3}, "step_fn": {}}
    assert fingerprint_differences(old, now) == []
    assert fingerprint_differences({"data": {"samples": 4}, "step_fn": {}}, now) == [
        "data.samples: 4 in the checkpoint, 3 now"]


# ----------------------------------------------------------------------- user layers


def _scale(backward=None, forward=None, init=None):
    """A user layer y = x * s (one learned factor per feature)."""

    def default_init(key, shape):
        return shape, {"s": np.ones(shape[-1:], np.float32)}

    def default_forward(params, x):
        return x * params["s"], x

    def default_backward(params, x, dy, input_grad):
        return {"s": (dy * x).sum(axis=0)}, dy * params["s"] if input_grad else None

    return fnn.layer("scale", init or default_init, forward or default_forward,
                     backward or default_backward)


def test_a_user_backward_returning_a_gradient_of_another_shape_is_refused():
    def keepdims(params, x, dy, input_grad):
        return {"s": (dy * x).sum(axis=0, keepdims=True)}, dy * params["s"]

    layer = _scale(backward=keepdims)
    _, params = layer.init(fnn.key(0), (-1, 3))
    x = np.ones((4, 3), np.float32)
    _, pullback = layer.vjp(params, x)
    with pytest.raises(fnn.LayerError, match=r"scale: backward returned grads\['s'\] of shape "
                                             r"\(1, 3\) for params\['s'\] of shape \(3,\)"):
        pullback(np.ones((4, 3), np.float32))
    model = fnn.serial(fnn.linear(3), layer)
    _, mparams = model.init(fnn.key(0), (-1, 3))
    step = fnn.supervised_step(model, fnn.mse, fnn.sgd(0.1))
    with pytest.raises(fnn.LayerError, match=r"scale: backward returned grads"):
        step(fnn.TrainState.create(mparams, fnn.sgd(0.1)), (x, x))

    def missing(params, x, dy, input_grad):
        return {"scale": (dy * x).sum(axis=0)}, dy

    _, pullback = _scale(backward=missing).vjp(params, x)
    with pytest.raises(fnn.LayerError, match=r"grads with the params' keys \['s'\], got "
                                             r"\['scale'\]"):
        pullback(np.ones((4, 3), np.float32))

    def wrong_dx(params, x, dy, input_grad):
        return {"s": (dy * x).sum(axis=0)}, dy[:, :2]

    _, pullback = _scale(backward=wrong_dx).vjp(params, x)
    with pytest.raises(fnn.LayerError, match=r"dx of shape \(4, 2\) for an input of shape "
                                             r"\(4, 3\)"):
        pullback(np.ones((4, 3), np.float32))


def test_a_user_forward_modifying_x_in_place_does_not_touch_the_callers_data():
    def in_place(params, x):
        x *= params["s"]
        return x, x

    layer = _scale(forward=in_place)
    params = {"s": np.full(3, 2.0, np.float32)}
    x = np.ones((4, 3), np.float32)
    with pytest.raises(fnn.LayerError, match=r"scale: forward modified its input x in place"):
        layer.vjp(params, x)
    with pytest.raises(fnn.LayerError, match=r"modified its input x in place"):
        layer.apply(params, x)
    assert (x == 1).all()  # the caller's training data is untouched


@pytest.mark.parametrize("bad, got", [
    (lambda key, shape: {"s": np.ones(3)}, "got a dict"),
    (lambda key, shape: ({"s": np.ones(3)}, shape), "output_shape must be a tuple of ints"),
    (lambda key, shape: (shape, {"s": np.ones(3)}, {}), r"got a tuple of 3 \(tuple, dict, dict\)"),
    (lambda key, shape: (shape, [np.ones(3)]), "params must be a dict of arrays, got a list"),
])
def test_a_user_init_returning_the_wrong_tuple_is_named(bad, got):
    with pytest.raises(fnn.LayerError, match=rf"scale: init must return \(output_shape, "
                                             rf"params\).*{got}"):
        _scale(init=bad).init(fnn.key(0), (-1, 3))


def test_a_guarded_user_layer_still_trains_and_passes_its_gradient_check():
    layer = _scale()
    x = np.random.default_rng(0).normal(size=(4, 3))
    fnn.assert_gradients_close(layer, {"s": np.full(3, 1.5)}, x)


# ----------------------------------------------------------------------- unclear errors


def test_a_zero_size_batch_in_a_conv_net_is_named():
    model = fnn.serial(fnn.conv2d(4, 3), fnn.relu(), fnn.flatten(), fnn.linear(2))
    _, params = model.init(fnn.key(0), (-1, 8, 8, 3))
    with pytest.raises(fnn.LayerError, match=r"\[00_conv2d\] conv2d\(4, 3\): got an empty batch "
                                             r"\(input shape \(0, 8, 8, 3\)\)"):
        model.vjp(params, np.zeros((0, 8, 8, 3), np.float32))
    with pytest.raises(fnn.LayerError, match=r"max_pool2d.*empty batch"):
        fnn.max_pool2d(2).vjp({}, np.zeros((0, 8, 8, 3), np.float32))


def test_channel_and_rank_mistakes_show_the_input_and_say_channels():
    model = fnn.serial(fnn.conv2d(4, 3), fnn.relu())
    _, params = model.init(fnn.key(0), (-1, 8, 8, 3))
    with pytest.raises(fnn.LayerError, match=r"conv2d\(4, 3\): input \(2, 8, 8, 5\) does not "
                                             r"fit .*: it has 5 channels \(its last axis\), but "
                                             r"the params were made for 3 channels \(inputs "
                                             r"\(N, 8, 8, 3\)\)"):
        model.apply(params, np.zeros((2, 8, 8, 5), np.float32))
    with pytest.raises(fnn.LayerError, match=r"channels go last.*x\[\.\.\., None\] \(the input "
                                             r"has shape \(2, 8, 8\)\)"):
        model.apply(params, np.zeros((2, 8, 8), np.float32))
    dense = fnn.serial(fnn.linear(4), fnn.linear(2))
    _, dparams = dense.init(fnn.key(0), (-1, 3))
    with pytest.raises(fnn.LayerError, match=r"input \(5, 7\) does not fit .*: it has 7 features "
                                             r"\(its last axis\), but the params were made for 3"):
        dense.apply(dparams, np.zeros((5, 7), np.float32))


def test_fit_on_a_stateful_model_then_its_pair_used_as_params():
    x, y = _problem()
    model = fnn.serial(fnn.linear(4), fnn.batch_norm(), fnn.linear(2))
    pair, _ = fnn.fit(model, fnn.cross_entropy, fnn.sgd(0.1), x, y, epochs=1, progress=False)
    with pytest.raises(fnn.LayerError, match=r"got tuple of 2: a \(params, model_state\) pair\? "
                                             r"fnn.fit returns one"):
        model.apply(pair, x)
    with pytest.raises(ValueError, match=r"fit: params is a \(params, model_state\) pair.*"
                                         r"params=pair\[0\], model_state=pair\[1\]"):
        fnn.fit(model, fnn.cross_entropy, fnn.sgd(0.1), x, y, epochs=1, progress=False,
                params=pair)


def test_drop_last_leaving_no_batch_is_named():
    x, y = _problem(n=20)
    with pytest.raises(ValueError, match=r"drop_last=True leaves no batch: 20 samples are "
                                         r"fewer than batch_size=32"):
        fnn.fit(fnn.linear(2), fnn.cross_entropy, fnn.sgd(0.1), x, y, epochs=1,
                progress=False, drop_last=True)


def test_labels_out_of_range_are_found_before_the_first_epoch():
    x, y = _problem()
    bad = y.copy()
    bad[50] = 7
    calls = []
    with pytest.raises(ValueError, match=r"fit: y has labels outside \[0, 2\) for the model's 2 "
                                         r"outputs: 7 \(row 50\)"):
        fnn.fit(fnn.linear(2), fnn.cross_entropy, fnn.sgd(0.1), x, bad, epochs=1,
                progress=False, callbacks=[lambda *a: calls.append(1)])
    with pytest.raises(ValueError, match=r"evaluator: y has labels outside \[0, 2\)"):
        fnn.fit(fnn.linear(2), fnn.cross_entropy, fnn.sgd(0.1), x, y, epochs=1,
                progress=False, validation=(x, bad))
    assert calls == []
    seq = np.zeros((4, 5, 2), np.float32)  # a sequence model: (N, T) labels, (N, T, V) outputs
    labels = np.zeros((4, 5), np.int64)
    labels[2, 3] = 9
    with pytest.raises(ValueError, match=r"evaluator: y has labels outside \[0, 3\).*9 \(row 2\)"):
        fnn.evaluator(fnn.linear(3), seq, labels, loss=fnn.cross_entropy)


def test_evaluator_labels_and_nan_rows():
    x, y = _problem()
    model = fnn.linear(2)
    _, params = model.init(fnn.key(0), (-1, 3))
    bad = y.copy()
    bad[3] = 2
    with pytest.raises(ValueError, match=r"evaluator: y has labels outside \[0, 2\).*2 \(row 3\)"):
        fnn.evaluator(model, x, bad, accuracy=True)
    nan_x = x.copy()
    nan_x[:5] = np.nan
    eval_fn = fnn.evaluator(model, nan_x, y, accuracy=True)
    with pytest.warns(RuntimeWarning, match=r"5 of 64 rows of predictions are NaN"):
        assert np.isnan(eval_fn(params)["accuracy"])
    assert 0 <= fnn.evaluator(model, x, y, accuracy=True)(params)["accuracy"] <= 1
