"""Losses over time (issue 22 item 5) and cross-entropy's options (issue 24): (N, T, V) logits
with (N, T) ids, ignore_index, label_smoothing, reduction; shards weighted by the tokens that
count; perplexity and bits per character. Torch oracles in float64."""

import math

import numpy as np
import pytest

import fnn
from fnn import metrics

N, T, V = 4, 5, 7


def _data(seed=0, pad=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, T, V)) * 2.0
    ids = rng.integers(1, V, size=(N, T))
    ids[1, 2:] = pad  # padding at the end of two sequences
    ids[3, 1:] = pad
    return logits, ids


def _torch_ce(logits, ids, **kw):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    z = torch.tensor(logits, requires_grad=True)
    target = torch.tensor(ids) if ids.dtype.kind in "iu" else torch.tensor(ids)
    out = F.cross_entropy(z.reshape(-1, V), target.reshape(-1) if ids.dtype.kind in "iu"
                          else target.reshape(-1, V), **kw)
    if out.ndim:
        return out.detach().numpy().reshape(ids.shape[:2]), None
    out.backward()
    return float(out.detach()), z.grad.numpy()


def test_cross_entropy_over_time_is_the_token_mean_like_torch():
    logits, ids = _data()
    value, grad = fnn.cross_entropy.vjp(logits, ids)
    want, want_grad = _torch_ce(logits, ids)
    assert value == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)
    assert grad.shape == (N, T, V)
    nll_value, nll_grad = fnn.nll.vjp(logits - np.log(np.exp(logits).sum(-1, keepdims=True)), ids)
    assert nll_value == pytest.approx(want, rel=1e-12) and nll_grad.shape == (N, T, V)


@pytest.mark.parametrize("ignore_index", [None, 0, -100])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_options_match_torch_value_and_gradient(ignore_index, smoothing, reduction):
    logits, ids = _data(pad=-100 if ignore_index == -100 else 0)
    loss = fnn.cross_entropy(ignore_index=ignore_index, label_smoothing=smoothing,
                             reduction=reduction)
    value, grad = loss.vjp(logits, ids)
    kw = {"label_smoothing": smoothing, "reduction": reduction}
    if ignore_index is not None:
        kw["ignore_index"] = ignore_index
    elif (ids < 0).any():
        pytest.skip("torch needs labels in range")
    want, want_grad = _torch_ce(logits, ids, **kw)
    assert value == pytest.approx(want, rel=1e-12)
    assert loss.value(logits, ids) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)


def test_reduction_none_gives_per_token_losses_like_torch_and_refuses_training():
    logits, ids = _data()
    loss = fnn.cross_entropy(ignore_index=0, label_smoothing=0.2, reduction="none")
    each = loss.value(logits, ids)
    want, _ = _torch_ce(logits, ids, ignore_index=0, label_smoothing=0.2, reduction="none")
    assert each.shape == (N, T)
    np.testing.assert_allclose(each, want, rtol=1e-12)
    assert (each[ids == 0] == 0).all()
    with pytest.raises(fnn.LossError, match="reduction='none' gives per-sample losses"):
        loss.vjp(logits, ids)
    with pytest.raises(ValueError, match="reduction 'none'"):
        fnn.value_and_grad(fnn.linear(V), loss, threads=2)


def test_label_smoothing_on_probability_rows_matches_torch():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, T, V))
    rows = rng.dirichlet(np.ones(V), size=(N, T))
    value, grad = fnn.cross_entropy(label_smoothing=0.3).vjp(logits, rows)
    want, want_grad = _torch_ce(logits, rows, label_smoothing=0.3)
    assert value == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)


def test_nothing_counts_gives_nan_and_zero_gradients_as_torch():
    logits, _ = _data()
    ids = np.zeros((N, T), np.int64)
    value, grad = fnn.cross_entropy(ignore_index=0).vjp(logits, ids)
    want, want_grad = _torch_ce(logits, ids, ignore_index=0)
    assert math.isnan(value) and math.isnan(want)
    np.testing.assert_array_equal(grad, want_grad)


def test_gradient_matches_central_differences():
    logits, ids = _data(seed=5)
    loss = fnn.cross_entropy(ignore_index=0, label_smoothing=0.1)
    _, grad = loss.vjp(logits, ids)
    h, num = 1e-6, np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += h
        down[i] -= h
        num[i] = (loss.value(up, ids) - loss.value(down, ids)) / (2 * h)
    np.testing.assert_allclose(grad, num, atol=1e-8)


def test_bad_inputs_get_clear_errors():
    logits, ids = _data()
    with pytest.raises(fnn.LossError, match=r"integer labels for predictions \(4, 5, 7\) must "
                                            r"have shape \(4, 5\), got \(4, 4\)"):
        fnn.cross_entropy.value(logits, ids[:, :4])
    bad = ids.copy()
    bad[0, 0] = V
    with pytest.raises(fnn.LossError, match=r"labels must lie in \[0, 7\)"):
        fnn.cross_entropy(ignore_index=0).value(logits, bad)
    with pytest.raises(fnn.LossError, match=r"labels must lie in \[0, 7\)"):
        fnn.cross_entropy.value(logits, bad)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fnn.cross_entropy(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        fnn.cross_entropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index must be an int"):
        fnn.cross_entropy(ignore_index=0.5)
    with pytest.raises(TypeError, match="mine: this loss takes no options"):
        fnn.Loss(fnn.mse.value, fnn.mse.vjp, "mine")(reduction="sum")
    with pytest.raises(ValueError, match="mse: reduction must be one of"):
        fnn.mse(reduction="avg")
    assert fnn.cross_entropy() is fnn.cross_entropy


def _token_model():
    model = fnn.serial(fnn.linear(6), fnn.tanh(), fnn.linear(V))
    _, params = model.init(fnn.key(0), (-1, T, 3))
    params = fnn.tree.tree_map(lambda a: a.astype(np.float64), params)
    x = np.random.default_rng(1).normal(size=(N, T, 3))
    return model, params, x


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_shards_and_chunks_weigh_by_the_tokens_that_count(reduction):
    """Padding sits in the second half of the batch: weighting the shards by rows would give
    another loss and gradient than the whole batch's."""
    model, params, x = _token_model()
    _, ids = _data()
    loss = fnn.cross_entropy(ignore_index=0, reduction=reduction)
    whole = fnn.value_and_grad(model, loss)
    value, grads = whole(params, x, ids)
    for f in (fnn.value_and_grad(model, loss, threads=2), fnn.value_and_grad(model, loss, chunk=1),
              fnn.value_and_grad(model, loss, threads=2, chunk=1)):
        v, g = f(params, x, ids)
        assert v == pytest.approx(value, rel=1e-12)
        for a, b in zip(fnn.tree.tree_leaves(g), fnn.tree.tree_leaves(grads)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert loss.terms(ids) == int((ids != 0).sum())


def test_a_shard_where_nothing_counts_is_skipped():
    model, params, x = _token_model()
    _, ids = _data()
    ids[2:] = 0  # the second shard is all padding (its own loss is nan)
    loss = fnn.cross_entropy(ignore_index=0)
    value, grads = fnn.value_and_grad(model, loss)(params, x, ids)
    v, g = fnn.value_and_grad(model, loss, threads=2)(params, x, ids)
    assert v == pytest.approx(value, rel=1e-12) and math.isfinite(v)
    np.testing.assert_allclose(g["02_linear"]["w"], grads["02_linear"]["w"], rtol=1e-10)
    ids[:] = 0
    v, g = fnn.value_and_grad(model, loss, threads=2)(params, x, ids)
    assert math.isnan(v) and not np.any(g["02_linear"]["w"])


def test_perplexity_and_bits_per_character():
    logits, ids = _data()
    want, _ = _torch_ce(logits, ids, ignore_index=0)
    assert metrics.perplexity(logits, ids, ignore_index=0) == pytest.approx(math.exp(want))
    assert metrics.bits_per_character(logits, ids, ignore_index=0) == pytest.approx(
        want / math.log(2))
    assert metrics.token_cross_entropy(logits, ids) == pytest.approx(_torch_ce(logits, ids)[0])


def test_evaluator_reports_perplexity_for_the_history():
    model, params, x = _token_model()
    _, ids = _data()
    ppl = lambda pred, y: metrics.perplexity(pred, y, ignore_index=0)  # noqa: E731
    eval_fn = fnn.evaluator(model, x, ids, loss=fnn.cross_entropy(ignore_index=0),
                            metrics={"perplexity": ppl, "bpc": metrics.bits_per_character})
    out = eval_fn(params)
    assert eval_fn.metric_names == ("loss", "perplexity", "bpc")
    assert out["perplexity"] == pytest.approx(math.exp(out["loss"]))
    assert eval_fn.fingerprint["loss"] == "cross_entropy(ignore_index=0)"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_options_match_torch(reduction):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    logits, ids = _data()
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    loss = fnn.nll(ignore_index=0, reduction=reduction)
    z = torch.tensor(logp, requires_grad=True)
    out = F.nll_loss(z.reshape(-1, V), torch.tensor(ids).reshape(-1), ignore_index=0,
                     reduction=reduction)
    if reduction == "none":
        np.testing.assert_allclose(loss.value(logp, ids), out.detach().numpy().reshape(N, T),
                                   rtol=1e-12)
        return
    out.backward()
    value, grad = loss.vjp(logp, ids)
    assert value == pytest.approx(float(out.detach()), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, torch_fn", [("mse", "mse_loss"), ("bce", "binary_cross_entropy"),
                                            ("bce_with_logits",
                                             "binary_cross_entropy_with_logits")])
def test_dense_reductions_match_torch(name, torch_fn):
    """fnn's losses sum over the feature axes and average over the batch: torch's "sum" is
    fnn's "sum", torch's per-element "none" summed over the features is fnn's "none"."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    pred = rng.uniform(0.05, 0.95, size=(6, 3, 2)) if name == "bce" else rng.normal(size=(6, 3, 2))
    target = rng.uniform(size=(6, 3, 2))
    fn = getattr(F, torch_fn)
    z = torch.tensor(pred, requires_grad=True)
    out = fn(z, torch.tensor(target), reduction="sum")
    out.backward()
    value, grad = getattr(fnn, name)(reduction="sum").vjp(pred, target)
    assert value == pytest.approx(float(out.detach()), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-14)
    each = fn(torch.tensor(pred), torch.tensor(target), reduction="none").numpy().sum(axis=(1, 2))
    np.testing.assert_allclose(getattr(fnn, name)(reduction="none").value(pred, target), each,
                               rtol=1e-12)
    assert getattr(fnn, name)(reduction="mean") is getattr(fnn, name)
    with pytest.raises(fnn.LossError, match="reduction='none'"):
        getattr(fnn, name)(reduction="none").vjp(pred, target)
