"""Attention layers: multi-head self-attention (causal, padding masks, dropout), position
embeddings, the transformer block: gradchecks, torch oracles, errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

import fnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sequence_oracle import f64, oracle  # noqa: E402


def _x(n=2, t=5, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, t, d))


def _mask(n=2, t=5):
    lengths = np.array([t, max(1, t - 2)])[:n]
    return np.arange(t)[None] < lengths[:, None]


def _params(layer, shape, seed=1):
    _, params = layer.init(fnn.key(seed), shape)
    rng = np.random.default_rng(seed)
    return {k: v + 0.1 * rng.normal(size=v.shape) for k, v in f64(params).items()}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", [False, True])
def test_attention_gradcheck(causal, mask):
    layer = fnn.multi_head_attention(2, causal=causal, mask=mask)
    shape = ((-1, 5, 8), (-1, 5)) if mask else (-1, 5, 8)
    params = _params(layer, shape)
    x = (_x(), _mask()) if mask else _x()
    errors = fnn.assert_gradients_close(layer, params, x)
    assert {"params/w_qkv", "params/b_o", "x/0" if mask else "x"} <= set(errors)


def test_attention_dropout_gradcheck_and_key():
    layer = fnn.multi_head_attention(2, causal=True, dropout=0.3)
    params = _params(layer, (-1, 5, 8))
    fnn.assert_gradients_close(layer, params, _x(), key=fnn.key(3))
    y1, _ = layer.vjp(params, _x(), key=fnn.key(3))
    y2, _ = layer.vjp(params, _x(), key=fnn.key(4))
    assert not np.allclose(y1, y2)
    assert layer.apply(params, _x()).shape == (2, 5, 8)
    with pytest.raises(fnn.LayerError, match="needs a random key"):
        layer.vjp(params, _x())


def _torch_mha(torch, heads, causal, with_mask):
    def fn(p, x, mask=None):
        t = x.shape[1]
        attn_mask = torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None
        y, _ = torch.nn.functional.multi_head_attention_forward(
            x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), x.shape[2], heads,
            p["w_qkv"].T, p["b_qkv"], None, None, False, 0.0, p["w_o"].T, p["b_o"],
            training=False, key_padding_mask=None if mask is None else ~mask,
            need_weights=False, attn_mask=attn_mask)
        return y.transpose(0, 1)
    return fn


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", [False, True])
def test_attention_torch_oracle(causal, mask):
    torch = pytest.importorskip("torch")
    layer = fnn.multi_head_attention(4, causal=causal, mask=mask)
    shape = ((-1, 6, 8), (-1, 6)) if mask else (-1, 6, 8)
    params = _params(layer, shape)
    x = (_x(3, 6), np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], bool)) \
        if mask else _x(3, 6)
    oracle(layer, params, x, _torch_mha(torch, 4, causal, mask))


def test_attention_params_are_torch_multihead_attention():
    torch = pytest.importorskip("torch")
    layer = fnn.multi_head_attention(2, causal=True)
    params = _params(layer, (-1, 5, 8))
    module = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.tensor(params["w_qkv"].T))
        module.in_proj_bias.copy_(torch.tensor(params["b_qkv"]))
        module.out_proj.weight.copy_(torch.tensor(params["w_o"].T))
        module.out_proj.bias.copy_(torch.tensor(params["b_o"]))
    x = torch.tensor(_x())
    mask = torch.ones(5, 5, dtype=torch.bool).triu(1)
    expected, _ = module(x, x, x, attn_mask=mask, need_weights=False)
    np.testing.assert_allclose(layer.apply(params, _x()), expected.detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_attention_errors():
    with pytest.raises(fnn.LayerError, match=r"3 heads do not divide the width 8"):
        fnn.multi_head_attention(3).init(fnn.key(0), (-1, 5, 8))
    layer = fnn.multi_head_attention(2, mask=True)
    _, params = layer.init(fnn.key(0), ((-1, 5, 8), (-1, 5)))
    with pytest.raises(fnn.LayerError, match=r"input mask should have shape \(N, 5\)"):
        layer.apply(params, (_x(), np.ones((2, 4), bool)))
    with pytest.raises(fnn.LayerError, match=r"input 1 \(mask\): expected a bool array"):
        layer.apply(params, (_x(), np.ones((2, 5))))
    with pytest.raises(fnn.LayerError, match=r"input mask should have shape"):
        layer.init(fnn.key(0), ((-1, 5, 8), (-1, 6)))


# --- positions ----------------------------------------------------------------------------------

def test_positional_embedding_gradcheck_and_torch_oracle():
    pytest.importorskip("torch")
    layer = fnn.positional_embedding(7)
    params = _params(layer, (-1, 5, 8))
    errors = fnn.assert_gradients_close(layer, params, _x())
    assert sorted(errors) == ["no_dx/table", "params/table", "x"]
    oracle(layer, params, _x(), lambda p, x: x + p["table"][:5])


def test_sinusoidal_embedding_values_and_gradient():
    layer = fnn.sinusoidal_embedding(10)
    x = _x(t=4, d=6)
    y = layer.apply({}, x)
    t, i = 3, 2
    np.testing.assert_allclose(y[0, t, 2 * i] - x[0, t, 2 * i], np.sin(t / 10000 ** (2 * i / 6)))
    np.testing.assert_allclose(y[0, t, 2 * i + 1] - x[0, t, 2 * i + 1],
                               np.cos(t / 10000 ** (2 * i / 6)))
    fnn.assert_gradients_close(layer, {}, x)


@pytest.mark.parametrize("make", [fnn.positional_embedding, fnn.sinusoidal_embedding])
def test_sequences_longer_than_the_table(make):
    layer = make(4)
    with pytest.raises(fnn.LayerError, match=r"T = 5 steps are longer than the position "
                                             r"table \(4 positions\)"):
        layer.init(fnn.key(0), (-1, 5, 8))
    _, params = layer.init(fnn.key(0), (-1, 4, 8))
    with pytest.raises(fnn.LayerError, match=r"\(4\): sequences of T = 5"):
        layer.apply(params, _x())


# --- the transformer block ----------------------------------------------------------------------

def test_transformer_block_gradcheck_and_torch_oracle():
    torch = pytest.importorskip("torch")
    block = fnn.transformer_block(2, 8)
    _, params = block.init(fnn.key(0), (-1, 5, 8))
    params = fnn.tree.tree_map(lambda a: np.asarray(a, np.float64), params)
    fnn.assert_gradients_close(block, params, _x())
    f = torch.nn.functional
    mha = _torch_mha(torch, 2, True, False)

    def reference(p, x):
        a, m = "00_residual/", "01_residual/"
        h = f.layer_norm(x, (8,), p[a + "00_layer_norm/scale"], p[a + "00_layer_norm/bias"])
        x = x + mha({k.split("/")[-1]: v for k, v in p.items()
                     if k.startswith(a + "01_multi")}, h)
        h = f.layer_norm(x, (8,), p[m + "00_layer_norm/scale"], p[m + "00_layer_norm/bias"])
        h = f.gelu(h @ p[m + "01_linear/w"] + p[m + "01_linear/b"], approximate="tanh")
        return x + h @ p[m + "03_linear/w"] + p[m + "03_linear/b"]

    oracle(block, params, _x(), reference)


def test_masked_transformer_blocks_stack_and_match_the_unmasked_block():
    blocks = fnn.serial(fnn.transformer_block(2, 8, causal=False, mask=True),
                        fnn.transformer_block(2, 8, causal=False, mask=True), fnn.pick(0))
    shape, params = blocks.init(fnn.key(0), ((-1, 5, 8), (-1, 5)))
    assert shape == (-1, 5, 8)
    params = fnn.tree.tree_map(lambda a: np.asarray(a, np.float64), params)
    errors = fnn.assert_gradients_close(blocks, params, (_x(), _mask()))
    assert "x/0" in errors and "x/1" not in errors
    full = np.ones((2, 5), bool)
    plain = fnn.serial(fnn.transformer_block(2, 8, causal=False),
                       fnn.transformer_block(2, 8, causal=False))

    def unmasked(block):  # the same weights, in the unmasked block's tree
        x_path = block["00_serial"]
        attend = x_path["00_parallel"]["01_serial"]
        return {"00_residual": {"00_layer_norm": attend["00_parallel"]["00_serial"]
                                ["01_layer_norm"],
                                "01_multi_head_attention": attend["01_multi_head_attention"]},
                "01_residual": x_path["02_residual"]}

    plain_params = {f"{i:02d}_transformer_block": unmasked(params[f"{i:02d}_transformer_block"])
                    for i in range(2)}
    np.testing.assert_allclose(blocks.apply(params, (_x(), full)),
                               plain.apply(plain_params, _x()), rtol=1e-12)
    masked = blocks.apply(params, (_x(), _mask()))
    changed = _x()
    changed[1, 3:] = 100.0  # padding: changes nothing of the real positions
    np.testing.assert_allclose(blocks.apply(params, (changed, _mask()))[1, :3], masked[1, :3],
                               rtol=1e-12)
