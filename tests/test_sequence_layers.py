"""Sequence layers: embedding, last-axis layers on (N, T, D), recurrent layers (gradchecks,
torch oracles, errors)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sequence_oracle import f64, oracle  # noqa: E402


def ids_of(n=3, t=5, vocab=7, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=(n, t))


# --- embedding ----------------------------------------------------------------------------------

def test_embedding_gathers_rows_and_gradchecks():
    layer = fnn.embedding(7, 4)
    shape, params = layer.init(fnn.key(0), (-1, 5))
    assert shape == (-1, 5, 4) and params["table"].dtype == np.float32
    ids = ids_of()
    np.testing.assert_array_equal(layer.apply(params, ids), params["table"][ids])
    errors = fnn.assert_gradients_close(layer, params, ids)
    assert sorted(errors) == ["no_dx/table", "params/table"]


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    layer = fnn.embedding(7, 3, padding_idx=0)
    _, params = layer.init(fnn.key(0), (-1, 5))
    assert not params["table"][0].any() and params["table"][1].any()
    ids = ids_of()
    ids[0, 0] = 0
    y, pullback = layer.vjp(params, ids)
    grads, dx = pullback(np.ones_like(y))
    assert dx is None and not grads["table"][0].any()
    assert grads["table"][ids[0, 1]].sum() > 0


def test_embedding_torch_oracle():
    torch = pytest.importorskip("torch")
    layer = fnn.embedding(7, 4, padding_idx=2)
    _, params = layer.init(fnn.key(1), (-1, 5))
    oracle(layer, params, ids_of(),
           lambda p, ids: torch.nn.functional.embedding(ids, p["table"], padding_idx=2))


@pytest.mark.parametrize("ids, words", [
    (np.array([[0, 7]]), r"embedding\(7, 4\): ids must be in \[0, 7\), got 7 at \(0, 1\)"),
    (np.array([[-1, 3]]), r"ids must be in \[0, 7\), got -1 at \(0, 0\)"),
    (np.array([[0.0, 1.0]]), r"embedding\(7, 4\): expected an integer array, got dtype float64"),
])
def test_embedding_bad_ids(ids, words):
    layer = fnn.serial(fnn.embedding(7, 4), fnn.linear(2))
    _, params = layer.init(fnn.key(0), (-1, 2))
    for run in (lambda: layer.apply(params, ids), lambda: layer.vjp(params, ids)):
        with pytest.raises(fnn.LayerError, match=words):
            run()


def test_embedding_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        fnn.embedding(0, 3)
    with pytest.raises(ValueError, match="padding_idx"):
        fnn.embedding(5, 3, padding_idx=5)


# --- layers acting on the last axis, on (N, T, D) -----------------------------------------------

def _x(shape=(3, 5, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def test_linear_on_sequences_torch_oracle():
    torch = pytest.importorskip("torch")
    layer = fnn.linear(6)
    _, params = layer.init(fnn.key(0), (-1, 5, 4))
    fnn.assert_gradients_close(layer, f64(params), _x())
    oracle(layer, params, _x(), lambda p, x: x @ p["w"] + p["b"])


@pytest.mark.parametrize("name, torch_name", [
    ("tanh", "tanh"), ("relu", "relu"), ("sigmoid", "sigmoid"), ("gelu", "gelu"),
    ("softmax", "softmax"), ("log_softmax", "log_softmax")])
def test_activations_on_sequences_torch_oracle(name, torch_name):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    fns = {"tanh": torch.tanh, "relu": f.relu, "sigmoid": torch.sigmoid,
           "gelu": lambda x: f.gelu(x, approximate="tanh"),
           "softmax": lambda x: f.softmax(x, -1), "log_softmax": lambda x: f.log_softmax(x, -1)}
    layer = getattr(fnn, name)()
    oracle(layer, {}, _x(), lambda p, x: fns[torch_name](x))
    fnn.assert_gradients_close(layer, {}, _x() + 0.01)


def test_layer_norm_on_sequences_torch_oracle():
    torch = pytest.importorskip("torch")
    layer = fnn.layer_norm()
    _, params = layer.init(fnn.key(0), (-1, 5, 4))
    rng = np.random.default_rng(3)
    params = {k: v + rng.normal(size=v.shape) for k, v in f64(params).items()}
    fnn.assert_gradients_close(layer, params, _x())
    oracle(layer, params, _x(), lambda p, x: torch.nn.functional.layer_norm(
        x, (4,), p["scale"], p["bias"], eps=1e-5))


def test_dropout_on_sequences():
    layer = fnn.dropout(0.5)
    x = _x()
    y, pullback = layer.vjp({}, x, key=fnn.key(0))
    keep = y != 0
    assert 0.2 < keep.mean() < 0.8
    np.testing.assert_allclose(y[keep], 2 * x[keep])
    np.testing.assert_allclose(pullback(np.ones_like(x))[1], 2.0 * keep)
    np.testing.assert_array_equal(layer.apply({}, x), x)
