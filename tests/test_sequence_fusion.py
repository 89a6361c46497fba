"""An embedding followed by a recurrent layer runs as one fused step in fnn.serial (the input
projection through the table, its gradients summed per id): the same numbers as the two
layers run apart, to rounding; gradchecks; the fallback for large vocabularies; errors."""

import numpy as np
import optree
import pytest

import fnn
from fnn.layers.fusion import plan

OPTIONS = [{}, {"bidirectional": True}, {"return_sequences": False},
           {"return_state": True, "bidirectional": True}]
CELLS = {"rnn": fnn.rnn, "gru": fnn.gru, "lstm": fnn.lstm}


def _apart(model, params, ids):
    """The model's two layers run one after the other (no fusion): ``(y, grads)`` of
    ``sum(cos(y))``."""
    emb, rec = model.children
    pa, pb = params["00_embedding"], params["01_" + rec.name]
    x, back_a = emb.vjp(pa, ids)
    y, back_b = rec.vjp(pb, x)
    grads_b, dx = back_b(optree.tree_map(np.sin, y))
    grads_a, _ = back_a(dx)
    return y, {"00_embedding": grads_a, "01_" + rec.name: grads_b}


def _fused(model, params, ids):
    y, pullback = model.vjp(params, ids)
    return y, pullback(optree.tree_map(np.sin, y))[0]


def _case(cell, options, vocab=5, padding_idx=None, dtype=np.float64, n=3, t=6):
    model = fnn.serial(fnn.embedding(vocab, 4, padding_idx=padding_idx),
                       CELLS[cell](3, **options))
    _, params = model.init(fnn.key(0), (-1, t))
    params = optree.tree_map(lambda a: a.astype(dtype), params)
    ids = np.random.default_rng(1).integers(0, vocab, size=(n, t))
    if padding_idx is not None:
        ids[0, :2] = padding_idx
    return model, params, ids


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("options", OPTIONS)
def test_fused_pair_is_the_two_layers(backend, cell, options):
    if backend == "compiled" and not fnn.ops.available():
        pytest.skip("numba is not installed")
    model, params, ids = _case(cell, options, padding_idx=1 if cell == "lstm" else None)
    assert plan(model.children)[0][1] is not None  # fused
    with fnn.ops.using(backend):
        ours, theirs = _fused(model, params, ids), _apart(model, params, ids)
        np.testing.assert_allclose(model.apply(params, ids) if not options.get("return_state")
                                   else model.apply(params, ids)[0],
                                   ours[0] if not options.get("return_state") else ours[0][0],
                                   rtol=1e-12, atol=1e-12)
    for a, b in zip(optree.tree_leaves(ours), optree.tree_leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if cell == "lstm":  # the padding row gets no gradient, the others do
        table = ours[1]["00_embedding"]["table"]
        assert not table[1].any() and table[ids[ids != 1][0]].any()


def test_fused_pair_float32_agrees_to_rounding():
    model, params, ids = _case("lstm", {}, vocab=7, dtype=np.float32, n=8, t=16)
    ours, theirs = _fused(model, params, ids), _apart(model, params, ids)
    for a, b in zip(optree.tree_leaves(ours), optree.tree_leaves(theirs)):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_fused_pair_gradchecks(cell):
    model, params, ids = _case(cell, {"bidirectional": True})
    errors = fnn.assert_gradients_close(model, params, ids)
    assert "params/00_embedding/table" in errors and "params/01_" + cell + "/w_ih" in errors


def test_large_vocabulary_runs_the_two_layers():
    model, params, ids = _case("gru", {}, vocab=40)  # 18 ids: fewer than twice the rows
    ours, theirs = _fused(model, params, ids), _apart(model, params, ids)
    for a, b in zip(optree.tree_leaves(ours), optree.tree_leaves(theirs)):
        np.testing.assert_array_equal(a, b)


def test_not_fused_with_a_mask_or_initial_state():
    for options in ({"mask": True}, {"initial_state": True}):
        layers = (fnn.embedding(5, 4), fnn.lstm(3, **options))
        assert plan(layers)[0][1] is None


def test_fused_pair_errors_name_the_layer():
    model, params, ids = _case("lstm", {})
    bad = ids.copy()
    bad[1, 2] = 9
    with pytest.raises(fnn.LayerError, match=r"00_embedding.*ids must be in \[0, 5\), got 9"):
        model.vjp(params, bad)
    wrong = {**params, "01_lstm": {**params["01_lstm"], "w_ih": np.zeros((5, 12))}}
    with pytest.raises(fnn.LayerError, match="01_lstm.*w_ih"):
        model.vjp(wrong, ids)
