"""Translation: cross-attention and Luong attention (gradchecks, torch oracles), the
encoder-decoder recipes (training, threads, checkpoints, summary, decoding) and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fnn
from fnn.layers.cross_attention import cross_attention_weights, luong_attention_weights

SHAPES = ((-1, 4, 6), (-1, 5, 3), (-1, 5))


def attention_inputs(seed: int = 0, n: int = 3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 6)).astype(dtype)
    memory = rng.normal(size=(n, 5, 3)).astype(dtype)
    lengths = np.array([5, 2, 4, 1, 3][:n])
    mask = np.arange(5)[None] < lengths[:, None]
    return x, memory, mask


def random_params(layer, shapes, seed=0):
    """The layer's params with random (non-zero) biases, in float64."""
    _, params = layer.init(fnn.key(seed), shapes)
    rng = np.random.default_rng(seed + 100)
    return {k: (v + 0.3 * rng.normal(size=v.shape)).astype(np.float64) for k, v in params.items()}


@pytest.mark.parametrize("layer", [fnn.cross_attention(1), fnn.cross_attention(2, dim=4),
                                   fnn.luong_attention(), fnn.luong_attention(dim=5)])
def test_attention_layers_pass_gradcheck(layer):
    params = random_params(layer, SHAPES)
    errors = fnn.gradcheck(layer, params, attention_inputs())
    assert {"x/0", "x/1"} <= set(errors) and "x/2" not in errors
    assert max(errors.values()) < 1e-6, errors


def test_padded_memory_positions_change_nothing():
    for layer in (fnn.cross_attention(2), fnn.luong_attention()):
        params = random_params(layer, SHAPES)
        x, memory, mask = attention_inputs()
        noisy = np.where(mask[..., None], memory, 1e3)
        y, back = layer.vjp(params, (x, memory, mask))
        y2, back2 = layer.vjp(params, (x, noisy, mask))
        np.testing.assert_allclose(y, y2, atol=1e-12)
        dy = np.ones_like(y)
        _, (dx, dm, dmask) = back(dy)
        assert dmask is None
        assert np.abs(dm[~mask]).max() == 0
        np.testing.assert_allclose(back2(dy)[1][0], dx, atol=1e-9)


def test_cross_attention_against_torch():
    torch = pytest.importorskip("torch")
    heads, layer = 2, fnn.cross_attention(2)
    params = random_params(layer, SHAPES, seed=3)
    x, memory, mask = attention_inputs(3)
    mha = torch.nn.MultiheadAttention(6, heads, kdim=3, vdim=3, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():
        mha.q_proj_weight.copy_(torch.from_numpy(params["wq"].T))
        mha.k_proj_weight.copy_(torch.from_numpy(params["wk"].T))
        mha.v_proj_weight.copy_(torch.from_numpy(params["wv"].T))
        mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
            [params["bq"], params["bk"], params["bv"]])))
        mha.out_proj.weight.copy_(torch.from_numpy(params["wo"].T))
        mha.out_proj.bias.copy_(torch.from_numpy(params["bo"]))
    tx, tm = (torch.tensor(a, requires_grad=True) for a in (x, memory))
    ty, tp = mha(tx, tm, tm, key_padding_mask=torch.from_numpy(~mask),
                 average_attn_weights=False)
    y, back = layer.vjp(params, (x, memory, mask))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cross_attention_weights(params, (x, memory, mask), heads),
                               tp.detach().numpy(), atol=1e-12)
    dy = np.random.default_rng(1).normal(size=y.shape)
    ty.backward(torch.from_numpy(dy))
    grads, (dx, dm, _) = back(dy)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm, tm.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["wq"], mha.q_proj_weight.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(grads["wo"], mha.out_proj.weight.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(np.concatenate([grads["bq"], grads["bk"], grads["bv"]]),
                               mha.in_proj_bias.grad.numpy(), atol=1e-10)


def test_luong_attention_against_torch():
    torch = pytest.importorskip("torch")
    layer = fnn.luong_attention()
    params = random_params(layer, SHAPES, seed=4)
    x, memory, mask = attention_inputs(4)
    tx, tm = (torch.tensor(a, requires_grad=True) for a in (x, memory))
    tw = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    scores = torch.einsum("ntd,de,nse->nts", tx, tw["wa"], tm)
    scores = scores.masked_fill(~torch.from_numpy(mask)[:, None, :], float("-inf"))
    a = torch.softmax(scores, dim=-1)
    ty = torch.tanh(torch.cat([a @ tm, tx], dim=-1) @ tw["wc"] + tw["bc"])
    y, back = layer.vjp(params, (x, memory, mask))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(luong_attention_weights(params, (x, memory, mask)),
                               a.detach().numpy(), atol=1e-12)
    dy = np.random.default_rng(2).normal(size=y.shape)
    ty.backward(torch.from_numpy(dy))
    grads, (dx, dm, _) = back(dy)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm, tm.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], tw[k].grad.numpy(), rtol=1e-9, atol=1e-12)


def test_attention_layers_name_bad_inputs():
    layer = fnn.cross_attention(2)
    _, params = layer.init(fnn.key(0), SHAPES)
    x, memory, mask = attention_inputs(dtype=np.float32)
    with pytest.raises(fnn.LayerError, match=r"input 2 \(mask\).*\(N, S\) = \(3, 5\)"):
        layer.apply(params, (x, memory, mask[:, :4]))
    with pytest.raises(fnn.LayerError, match=r"input 2 \(mask\): expected a bool array"):
        layer.apply(params, (x, memory, mask.astype(np.float32)))
    with pytest.raises(fnn.LayerError, match="tuple of 3 arrays"):
        layer.apply(params, x)
    with pytest.raises(fnn.LayerError, match="not a multiple of 4 heads"):
        fnn.cross_attention(4).init(fnn.key(0), SHAPES)
