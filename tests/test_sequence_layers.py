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
    pytest.importorskip("torch")
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


# --- recurrent layers ---------------------------------------------------------------------------

CELLS = {"rnn": lambda h, **kw: fnn.rnn(h, **kw), "rnn_relu": lambda h, **kw: fnn.rnn(
    h, "relu", **kw), "gru": lambda h, **kw: fnn.gru(h, **kw),
    "lstm": lambda h, **kw: fnn.lstm(h, **kw)}


def _torch_module(torch, cell, d, h, layers=1, bidirectional=False):
    kind = {"rnn": "RNN", "rnn_relu": "RNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    kw = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    return getattr(torch.nn, kind)(d, h, num_layers=layers, bidirectional=bidirectional,
                                   batch_first=True, dtype=torch.float64, **kw)


def _load_torch(module, flat, layers, bidirectional):
    """Set a torch module's weights from oracle's flat tensors (fnn layout: w.T)."""
    for layer in range(layers):
        prefix = f"{layer:02d}_{_name(flat)}/" if layers > 1 else ""
        for s in ("", "_reverse")[:1 + bidirectional]:
            for fk, tk in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                           ("b_hh", "bias_hh")):
                value = flat[prefix + fk + s]
                setattr(module, f"{tk}_l{layer}{s}", value.T if fk[0] == "w" else value)


def _name(flat):
    return next(iter(flat)).split("/")[0].split("_", 1)[1] if "/" in next(iter(flat)) else ""


def _torch_fn(torch, cell, d, h, layers=1, bidirectional=False, last=False):
    def fn(p, x, *states):
        module = _torch_module(torch, cell, d, h, layers, bidirectional)
        for name in list(module._parameters):
            del module._parameters[name]
        _load_torch(module, p, layers, bidirectional)
        module._flat_weights = [getattr(module, n) for n in module._flat_weights_names]
        init = None
        if states:
            init = tuple(s.reshape(s.shape[0], -1, h).transpose(0, 1).contiguous()
                         for s in states)
            init = init[0] if len(init) == 1 else init
        y, hn = module(x, init) if init is not None else module(x)
        if last:
            hn = hn[0] if cell == "lstm" else hn
            return hn.transpose(0, 1).reshape(x.shape[0], -1)
        return y
    return fn


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("options", [{}, {"bidirectional": True}, {"return_sequences": False},
                                     {"initial_state": True}, {"mask": True},
                                     {"return_state": True, "bidirectional": True}])
def test_recurrent_gradcheck(cell, options):
    layer = CELLS[cell](3, **options)
    n, t, d = 2, 4, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, t, d))
    shapes: list = [(-1, t, d)]
    inputs: list = [x]
    states = 2 if cell == "lstm" else 1
    if options.get("initial_state"):
        shapes += [(-1, 3)] * states
        inputs += [0.5 * rng.normal(size=(n, 3)) for _ in range(states)]
    if options.get("mask"):
        shapes.append((-1, t))
        inputs.append(np.array([[True] * 4, [True, True, False, False]]))
    _, params = layer.init(fnn.key(0), tuple(shapes) if len(shapes) > 1 else shapes[0])
    x_in = tuple(inputs) if len(inputs) > 1 else x
    errors = fnn.assert_gradients_close(layer, f64(params), x_in)
    assert "params/w_hh" in errors and ("x" in errors or "x/0" in errors)
    if cell == "rnn_relu":
        return


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_torch_oracle(cell, bidirectional):
    torch = pytest.importorskip("torch")
    layer = CELLS[cell](5, bidirectional=bidirectional)
    _, params = layer.init(fnn.key(2), (-1, 6, 4))
    x = np.random.default_rng(1).normal(size=(3, 6, 4))
    oracle(layer, params, x, _torch_fn(torch, cell, 4, 5, bidirectional=bidirectional))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_two_layer_stack_torch_oracle(cell, bidirectional):
    torch = pytest.importorskip("torch")
    model = fnn.serial(CELLS[cell](5, bidirectional=bidirectional),
                       CELLS[cell](5, bidirectional=bidirectional))
    _, params = model.init(fnn.key(3), (-1, 6, 4))
    x = np.random.default_rng(1).normal(size=(3, 6, 4))
    oracle(model, params, x, _torch_fn(torch, cell, 4, 5, 2, bidirectional))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_last_state_and_initial_state_torch_oracle(cell):
    torch = pytest.importorskip("torch")
    layer = CELLS[cell](5, bidirectional=True, return_sequences=False, initial_state=True)
    states = 2 if cell == "lstm" else 1
    _, params = layer.init(fnn.key(4), ((-1, 6, 4),) + ((-1, 2, 5),) * states)
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 6, 4)),) + tuple(rng.normal(size=(3, 2, 5)) for _ in range(states))
    oracle(layer, params, x, _torch_fn(torch, cell, 4, 5, 1, True, last=True))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_mask_matches_each_sequence_alone(cell):
    layer = CELLS[cell](4, bidirectional=True, mask=True, return_sequences=False)
    alone = CELLS[cell](4, bidirectional=True, return_sequences=False)
    _, params = layer.init(fnn.key(0), ((-1, 5, 3), (-1, 5)))
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    lengths = [5, 2]
    mask = np.arange(5)[None] < np.array(lengths)[:, None]
    y = layer.apply(f64(params), (x, mask))
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(y[i], alone.apply(f64(params), x[i:i + 1, :n])[0],
                                   rtol=1e-12, atol=1e-12)


def test_recurrent_bad_inputs():
    layer = fnn.lstm(4, initial_state=True, mask=True)
    _, params = layer.init(fnn.key(0), ((-1, 5, 3), (-1, 4), (-1, 4), (-1, 5)))
    x, h = np.zeros((2, 5, 3)), np.zeros((2, 4))
    with pytest.raises(fnn.LayerError, match=r"lstm\(4.*input 3 \(mask\): expected a bool"):
        layer.apply(params, (x, h, h, np.ones((2, 5))))
    with pytest.raises(fnn.LayerError, match=r"input mask should have shape \(N, 5\)"):
        layer.apply(params, (x, h, h, np.ones((2, 6), bool)))
    with pytest.raises(fnn.LayerError, match=r"input h0 should have shape \(N, 4\)"):
        layer.apply(params, (x, np.zeros((2, 3)), h, np.ones((2, 5), bool)))
    with pytest.raises(fnn.LayerError, match="takes a tuple of 4 arrays"):
        layer.apply(params, x)
    with pytest.raises(ValueError, match="nonlinearity"):
        fnn.rnn(3, "sigmoid")


# --- scan: your own cell over time --------------------------------------------------------------

def elman_cell(hidden):
    """h' = tanh(x w_ih + b_ih + h w_hh + b_hh), output h' (fnn.rnn's params)."""
    def init(key, shapes):
        (n, d), _ = shapes
        _, params = fnn.rnn(hidden).init(key, (-1, 1, d))
        return ((n, hidden), (n, hidden)), params

    def forward(p, xs):
        x, h = xs
        out = np.tanh(x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"])
        return (out, out), (x, h, out)

    def backward(p, saved, dys, input_grad):
        x, h, out = saved
        g = sum(d for d in dys if d is not None) * (1 - out * out)
        grads = {"w_ih": x.T @ g, "w_hh": h.T @ g, "b_ih": g.sum(0), "b_hh": g.sum(0)}
        return grads, ((g @ p["w_ih"].T, g @ p["w_hh"].T) if input_grad else None)

    return fnn.layer("elman", init, forward, backward,
                     inputs=(fnn.Input("x", rank=2), fnn.Input("h", rank=2)))


def test_scan_of_a_cell_is_the_recurrent_layer():
    model = fnn.scan(elman_cell(5), 5)
    shape, params = model.init(fnn.key(0), (-1, 6, 3))
    assert shape == (-1, 6, 5) and sorted(params) == ["b_hh", "b_ih", "w_hh", "w_ih"]
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    p64 = f64(params)
    np.testing.assert_allclose(model.apply(p64, x), fnn.rnn(5).apply(p64, x), rtol=1e-12)
    y, pullback = model.vjp(p64, x)
    dy = np.random.default_rng(1).normal(size=y.shape)
    grads, dx = pullback(dy)
    y2, pullback2 = fnn.rnn(5).vjp(p64, x)
    grads2, dx2 = pullback2(dy)
    np.testing.assert_allclose(dx, dx2, rtol=1e-10)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads2[k], rtol=1e-10, err_msg=k)
    fnn.assert_gradients_close(model, p64, x)


def test_scan_generates_and_reports_bad_cells():
    model = fnn.serial(fnn.embedding(6, 4), fnn.scan(elman_cell(5), 5), fnn.linear(6))
    _, params = model.init(fnn.key(0), (-1, 3))
    out = fnn.generate(model, params, np.array([1, 2]), 5, fnn.key(0))
    np.testing.assert_array_equal(
        out, fnn.generate(model, params, np.array([1, 2]), 5, fnn.key(0), cache=False))
    with pytest.raises(fnn.LayerError, match=r"the cell must map \(x_t, h\) to \(y_t, h'\)"):
        fnn.scan(fnn.parallel(fnn.pick(0), fnn.pick(0)), 5).init(fnn.key(0), (-1, 4, 3))
    with pytest.raises(fnn.LayerError, match=r"\[cell\] linear\(3\)"):
        fnn.scan(fnn.linear(3), 5).init(fnn.key(0), (-1, 4, 3))
