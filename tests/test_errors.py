"""Every bad input gets an error naming the layer (and its path), the expected and the actual."""

import numpy as np
import pytest

import fnn

MODEL = fnn.serial(fnn.linear(16), fnn.tanh(), fnn.serial(fnn.linear(8), fnn.relu()),
                   fnn.linear(10))


def _params():
    return MODEL.init(fnn.key(0), (-1, 64))[1]


def test_wrong_input_size_at_apply_names_path_expected_and_actual():
    with pytest.raises(fnn.LayerError) as err:
        MODEL.apply(_params(), np.zeros((4, 65), np.float32))
    assert str(err.value) == ("[00_linear] linear(16): input (4, 65) does not fit params['w'] of "
                              "shape (64, 16) (an input (N, 65) needs (65, 16)): it has 65 "
                              "features (its last axis), but the params were made for 64 "
                              "features (inputs (N, 64))")


def test_wrong_size_deep_inside_reports_the_full_path():
    params = _params()
    params["02_serial"]["00_linear"]["w"] = np.zeros((15, 8), np.float32)
    # the input of 02_serial/00_linear comes from the model, so the params are at fault
    with pytest.raises(fnn.LayerError, match=r"^\[02_serial/00_linear\] linear\(8\): params\['w'\] "
                                             r"has shape \(15, 8\), but the layer before it gives "
                                             r"inputs \(4, 16\), which need params\['w'\] of shape "
                                             r"\(16, 8\): the params do not fit the model"):
        MODEL.apply(params, np.zeros((4, 64), np.float32))
    with pytest.raises(fnn.LayerError, match=r"^\[02_serial/00_linear\] linear\(8\): params\['w'\]"):
        MODEL.vjp(params, np.zeros((4, 64), np.float32))
    conv = fnn.serial(fnn.conv2d(4, 3), fnn.relu(), fnn.conv2d(2, 3))
    cparams = conv.init(fnn.key(0), (-1, 8, 8, 1))[1]
    cparams["02_conv2d"]["w"] = np.zeros((3, 3, 5, 2), np.float32)
    with pytest.raises(fnn.LayerError, match=r"^\[02_conv2d\] conv2d.*params\['w'\] has shape "
                                             r"\(3, 3, 5, 2\), but the layer before it gives inputs "
                                             r"\(2, 6, 6, 4\), which need params\['w'\] of shape "
                                             r"\(3, 3, 4, 2\)"):
        conv.apply(cparams, np.zeros((2, 8, 8, 1), np.float32))


def test_wrong_rank_at_init():
    with pytest.raises(fnn.LayerError, match=r"\[00_linear\] linear\(16\): expects inputs of "
                                             r"rank >= 2 .*got input_shape \(N,\)"):
        MODEL.init(fnn.key(0), (-1,))
    with pytest.raises(fnn.LayerError, match="must be a tuple of ints"):
        MODEL.init(fnn.key(0), "64")
    with pytest.raises(fnn.LayerError, match=r"cannot reshape \(N, 10\).*to \(N, 3, 3\)"):
        fnn.serial(fnn.reshape((3, 3))).init(fnn.key(0), (-1, 10))


def test_params_tree_not_matching_the_model():
    params = _params()
    del params["03_linear"]
    params["03_dense"] = {}
    with pytest.raises(fnn.LayerError, match=r"missing \['03_linear'\], unexpected \['03_dense'\]"):
        MODEL.apply(params, np.zeros((2, 64), np.float32))
    params = _params()
    del params["00_linear"]["b"]
    with pytest.raises(fnn.LayerError, match=r"\[00_linear\] linear\(16\): params should have keys "
                                             r"\['b', 'w'\]; missing \['b'\]"):
        MODEL.vjp(params, np.zeros((2, 64), np.float32))
    params = _params()
    params["00_linear"]["bias"] = np.zeros(16, np.float32)
    with pytest.raises(fnn.LayerError, match=r"\[00_linear\] linear\(16\): params should have keys "
                                             r"\['b', 'w'\]; unexpected \['bias'\]"):
        MODEL.apply(params, np.zeros((2, 64), np.float32))
    params = _params()
    params["03_linear"]["w"] = params["03_linear"]["w"].astype(int)
    with pytest.raises(fnn.LayerError, match=r"\[03_linear\] linear\(10\): params\['w'\] should be a "
                                             r"floating-point array, got int64"):
        MODEL.apply(params, np.zeros((2, 64), np.float32))
    with pytest.raises(TypeError, match=r"TrainState.create: params/03_linear/w has dtype int64"):
        fnn.TrainState.create(params, fnn.sgd(0.1))
    params = _params()
    params["00_linear"]["b"] = np.zeros(3, np.float32)
    with pytest.raises(fnn.LayerError, match=r"input \(2, 64\) does not fit params\['b'\] of shape "
                                             r"\(3,\) \(an input \(N, 64\) needs \(16,\)\)"):
        MODEL.apply(params, np.zeros((2, 64), np.float32))
    with pytest.raises(fnn.LayerError, match="serial: params should be a dict"):
        MODEL.apply([1, 2], np.zeros((2, 64), np.float32))
    with pytest.raises(fnn.LayerError, match=r"\[01_tanh\] tanh: has no parameters"):
        params = _params()
        params["01_tanh"] = {"w": np.zeros(1)}
        MODEL.apply(params, np.zeros((2, 64), np.float32))


@pytest.mark.parametrize("x", [np.zeros((2, 64), int), np.zeros((2, 64), bool),
                               np.array([[None] * 64] * 2, dtype=object)],
                         ids=["int", "bool", "object"])
def test_non_float_inputs(x):
    with pytest.raises(fnn.LayerError, match=r"\[00_linear\] linear\(16\): expected a floating-point "
                                             r"array, got dtype .* \(convert with x.astype"):
        MODEL.apply(_params(), x)
    with pytest.raises(fnn.LayerError, match="floating-point"):
        fnn.tanh().apply({}, x)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="out_dim must be a positive int"):
        fnn.linear(0)
    with pytest.raises(ValueError, match=r"dropout: rate must be a number in \[0, 1\), got 1.5"):
        fnn.dropout(1.5)
    with pytest.raises(TypeError, match="expects one or more fnn.Layer"):
        fnn.serial(fnn.linear(3), "tanh")
    with pytest.raises(fnn.LayerError, match=r"add: branches must have equal shapes"):
        fnn.serial(fnn.parallel(fnn.linear(3), fnn.linear(2)), fnn.add()).init(fnn.key(0), (-1, 4))
    with pytest.raises(fnn.LayerError, match=r"residual: the body maps \(N, 4\) to \(N, 3\)"):
        fnn.residual(fnn.linear(3)).init(fnn.key(0), (-1, 4))
