"""Sequence ops (fnn.ops.embedding, fnn.ops.recurrent, fnn.ops.attention): every backward
against central finite differences in float64; PyTorch in float64 as the oracle
(torch.nn.RNN/GRU/LSTM with their weights set from ours, packed sequences for masks,
scaled_dot_product_attention, embedding); the numpy and compiled backends against each
other in float32 and float64."""

import numpy as np
import pytest

import fnn
from fnn.ops import attention as A
from fnn.ops import embedding as E
from fnn.ops import recurrent as R

needs_numba = pytest.mark.skipif(not fnn.ops.available(), reason="numba is not installed")
CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
BACKENDS = ["numpy", pytest.param("compiled", marks=needs_numba)]
VARIANTS = [dict(reverse=False, masked=False), dict(reverse=True, masked=False),
            dict(reverse=False, masked=True), dict(reverse=True, masked=True)]


def ids(variant):
    return ("rev" if variant["reverse"] else "fwd") + ("+mask" if variant["masked"] else "")


# --- running a cell with all its inputs, and its loss for finite differences ------------------

def make_inputs(cell, n=2, steps=4, size=3, masked=False, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    inputs = {"xw": rng.normal(size=(n, steps, g * size)),
              "h0": rng.normal(size=(n, size)),
              "w_hh": 0.5 * rng.normal(size=(size, g * size))}
    if cell == "lstm":
        inputs["c0"] = rng.normal(size=(n, size))
    if cell == "gru":
        inputs["b_hh"] = rng.normal(size=g * size)
    inputs = {k: a.astype(dtype) for k, a in inputs.items()}
    mask = None
    if masked:  # padding at both ends and in the middle; a row with no real step at all
        mask = rng.random((n + 1, steps)) < 0.6
        mask[0, :] = [True, False, True, True][:steps] + [True] * max(0, steps - 4)
        mask[-1, :] = False
        inputs = {k: (np.concatenate([a, rng.normal(size=(1, *a.shape[1:])).astype(dtype)])
                      if k in ("xw", "h0", "c0") else a) for k, a in inputs.items()}
    grads = {"dy": rng.normal(size=(inputs["xw"].shape[0], steps, size)).astype(dtype),
             "dh_n": rng.normal(size=(inputs["xw"].shape[0], size)).astype(dtype)}
    if cell == "lstm":
        grads["dc_n"] = rng.normal(size=(inputs["xw"].shape[0], size)).astype(dtype)
    return inputs, grads, mask


def forward(cell, inputs, reverse=False, mask=None):
    """``(y, h_n, c_n or None, tape)``."""
    if cell == "lstm":
        y, (h, c), tape = R.lstm(inputs["xw"], inputs["h0"], inputs["c0"], inputs["w_hh"],
                                 reverse=reverse, mask=mask)
        return y, h, c, tape
    if cell == "gru":
        y, h, tape = R.gru(inputs["xw"], inputs["h0"], inputs["w_hh"], inputs["b_hh"],
                           reverse=reverse, mask=mask)
    else:
        y, h, tape = R.rnn(inputs["xw"], inputs["h0"], inputs["w_hh"],
                           nonlinearity=cell[4:], reverse=reverse, mask=mask)
    return y, h, None, tape


def backward(cell, tape, grads):
    """Gradients keyed like the inputs."""
    if cell == "lstm":
        dxw, dw, dh0, dc0 = R.lstm_backward(tape, grads["dy"], grads["dh_n"], grads["dc_n"])
        return {"xw": dxw, "w_hh": dw, "h0": dh0, "c0": dc0}
    if cell == "gru":
        dxw, dw, db, dh0 = R.gru_backward(tape, grads["dy"], grads["dh_n"])
        return {"xw": dxw, "w_hh": dw, "h0": dh0, "b_hh": db}
    dxw, dw, dh0 = R.rnn_backward(tape, grads["dy"], grads["dh_n"])
    return {"xw": dxw, "w_hh": dw, "h0": dh0}


def loss(cell, inputs, grads, **kw):
    y, h, c, _ = forward(cell, inputs, **kw)
    value = np.sum(y * grads["dy"]) + np.sum(h * grads["dh_n"])
    return value + (np.sum(c * grads["dc_n"]) if c is not None else 0.0)


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar ``f()`` in each entry of ``x`` (changed in place
    and restored)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def assert_grad_close(exact, numeric, name, rtol=1e-6):
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(exact, numeric, rtol=rtol, atol=rtol * scale, err_msg=name)


# --- (a) finite differences ---------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_backward_matches_finite_differences(cell, variant):
    inputs, grads, mask = make_inputs(cell, masked=variant["masked"])
    kw = dict(reverse=variant["reverse"], mask=mask)
    with fnn.ops.using("numpy"):
        exact = backward(cell, forward(cell, inputs, **kw)[3], grads)
        for name, x in inputs.items():
            numeric = numeric_grad(lambda: loss(cell, inputs, grads, **kw), x)
            assert_grad_close(exact[name], numeric, f"{cell} {name}")
    if mask is not None:  # masked steps take no gradient; a row without real steps passes
        assert np.all(exact["xw"][~mask] == 0)  # the final state's gradient to h0
        np.testing.assert_array_equal(exact["h0"][-1], grads["dh_n"][-1])


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_without_output_gradients(cell):
    """``dy=None`` (only the final state is used) is ``dy = 0``; h0=None is zeros."""
    inputs, grads, _ = make_inputs(cell)
    tape = forward(cell, inputs)[3]
    zero = dict(grads, dy=np.zeros_like(grads["dy"]))
    expected = backward(cell, tape, zero)
    got = backward(cell, tape, dict(grads, dy=None))
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    states = [k for k in ("h0", "c0") if k in inputs]
    y0 = forward(cell, dict(inputs, **{k: np.zeros_like(inputs[k]) for k in states}))[0]
    np.testing.assert_array_equal(forward(cell, dict(inputs, **dict.fromkeys(states)))[0], y0)


ATTENTION_CASES = {
    "plain": dict(steps=3, keys=3),
    "causal": dict(steps=3, keys=3, causal=True),
    "causal_cache": dict(steps=2, keys=5, causal=True),
    "key_mask": dict(steps=3, keys=4, key_mask=True),
    "causal_key_mask_dropout": dict(steps=4, keys=4, causal=True, key_mask=True, dropout=True),
}


def attention_inputs(steps, keys, causal=False, key_mask=False, dropout=False, n=3, heads=2,
                     d=4, dv=3, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, heads, steps, d)).astype(dtype)
    k = rng.normal(size=(n, heads, keys, d)).astype(dtype)
    v = rng.normal(size=(n, heads, keys, dv)).astype(dtype)
    kw = dict(causal=causal)
    if key_mask:
        mask = rng.random((n, keys)) < 0.7
        mask[0] = False                     # a sample with no real key at all
        mask[1, 0] = mask[1, -1] = True
        kw["key_mask"] = mask
    if dropout:
        kw["dropout"] = ((rng.random((n, heads, steps, keys)) < 0.8) / 0.8).astype(dtype)
    dout = rng.normal(size=(n, heads, steps, dv)).astype(dtype)
    return q, k, v, dout, kw


@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention_backward_matches_finite_differences(case):
    q, k, v, dout, kw = attention_inputs(**ATTENTION_CASES[case])
    with fnn.ops.using("numpy"):
        out, p = A.attention(q, k, v, **kw)
        grads = A.attention_backward(q, k, v, p, dout, dropout=kw.get("dropout"))
        for name, x, exact in zip("qkv", (q, k, v), grads):
            numeric = numeric_grad(lambda: np.sum(A.attention(q, k, v, **kw)[0] * dout), x)
            assert_grad_close(exact, numeric, f"{case} d{name}")
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)
    if "key_mask" in kw:  # sample 0 sees no key: zero output, zero gradients
        assert not out[0].any() and not p[0].any()
        assert not grads[0][0].any() and not grads[1][0].any() and not grads[2][0].any()


def test_attention_scale_and_masked_keys():
    q, k, v, dout, kw = attention_inputs(3, 4, key_mask=True, seed=3)
    out, p = A.attention(q, k, v, scale=0.3, **kw)
    assert np.all(p[~kw["key_mask"][:, None, None, :].repeat(3, 2).repeat(2, 1)] == 0)
    s = 0.3 * q[1] @ k[1].swapaxes(-1, -2)
    s[..., ~kw["key_mask"][1]] = -np.inf
    expected = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(p[1], expected / expected.sum(-1, keepdims=True), rtol=1e-12)
    dq = A.attention_backward(q, k, v, p, dout, scale=0.3)[0]
    numeric = numeric_grad(lambda: np.sum(A.attention(q, k, v, scale=0.3, **kw)[0] * dout), q)
    assert_grad_close(dq, numeric, "dq, scale 0.3")


def test_split_and_merge_heads():
    x = np.random.default_rng(0).normal(size=(2, 5, 12))
    heads = A.split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4) and np.shares_memory(heads, x)
    np.testing.assert_array_equal(heads[1, 2, 4], x[1, 4, 8:12])
    np.testing.assert_array_equal(A.merge_heads(heads), x)
    with pytest.raises(ValueError, match="multiple"):
        A.split_heads(x, 5)


def test_embedding_scatter_add_against_add_at():
    rng = np.random.default_rng(0)
    ids = rng.integers(-7, 7, size=(4, 9))
    dy = rng.normal(size=(4, 9, 5))
    for backend in ["numpy"] + (["compiled"] if fnn.ops.available() else []):
        for pad in (None, 3, -2):
            with fnn.ops.using(backend):
                got = E.scatter_add(ids, dy, 7, padding_idx=pad)
            expected = np.zeros((7, 5))
            np.add.at(expected, ids % 7, dy)
            if pad is not None:
                expected[pad] = 0
            np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15, err_msg=backend)
    np.testing.assert_array_equal(E.gather(rng.normal(size=(7, 5)), ids).shape, (4, 9, 5))
    with pytest.raises(IndexError):
        E.scatter_add(np.array([[7]]), np.ones((1, 1, 5)), 7)
    assert not E.scatter_add(np.zeros((0, 3), int), np.ones((0, 3, 2)), 4).any()


# --- generation: single steps with a carried state ----------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_single_steps_continue_a_sequence(cell):
    inputs, _, _ = make_inputs(cell, n=3, steps=5, size=4)
    y, h_n, c_n, _ = forward(cell, inputs)
    h, c = inputs["h0"], inputs.get("c0")
    for t in range(5):
        xw_t = inputs["xw"][:, t]
        if cell == "lstm":
            h, c = R.lstm_step(xw_t, h, c, inputs["w_hh"])
        elif cell == "gru":
            h = R.gru_step(xw_t, h, inputs["w_hh"], inputs["b_hh"])
        else:
            h = R.rnn_step(xw_t, h, inputs["w_hh"], nonlinearity=cell[4:])
        np.testing.assert_array_equal(h, y[:, t])
    np.testing.assert_array_equal(h, h_n)
    if cell == "lstm":
        np.testing.assert_array_equal(c, c_n)


def test_recurrent_argument_errors():
    with pytest.raises(ValueError, match="xw must be"):
        R.lstm(np.zeros((2, 3, 8)), None, None, np.zeros((3, 12)))
    with pytest.raises(ValueError, match="mask must be"):
        R.gru(np.zeros((2, 3, 6)), None, np.zeros((2, 6)), np.zeros(6), mask=np.ones((3, 2)))
    with pytest.raises(ValueError, match="nonlinearity"):
        R.rnn(np.zeros((2, 3, 2)), None, np.zeros((2, 2)), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="state must be"):
        R.rnn(np.zeros((2, 3, 2)), np.zeros((3, 2)), np.zeros((2, 2)))


# --- (b) PyTorch oracles, float64 ---------------------------------------------------------------

def torch_rnn(cell, d, size):
    torch = pytest.importorskip("torch")
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    kw = {} if cell in ("lstm", "gru") else {"nonlinearity": cell[4:]}
    return cls(d, size, batch_first=True, bidirectional=True, dtype=torch.float64, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_against_torch(cell, masked, backend):
    """Both directions of a bidirectional torch layer (reverse=True is the backward one);
    a mask of right padding is torch's packed sequences."""
    torch = pytest.importorskip("torch")
    with fnn.ops.using(backend):
        check_against_torch(torch, cell, masked)


def check_against_torch(torch, cell, masked):
    n, steps, d, size, g = 4, 6, 5, 3, GATES[cell]
    rng = np.random.default_rng(2)
    module = torch_rnn(cell, d, size)
    params = {}
    for suffix in ("", "_reverse"):
        for name, shape in (("weight_ih", (d, g * size)), ("weight_hh", (size, g * size)),
                            ("bias_ih", (g * size,)), ("bias_hh", (g * size,))):
            params[name + suffix] = 0.5 * rng.normal(size=shape)
            with torch.no_grad():
                getattr(module, f"{name}_l0{suffix}").copy_(torch.tensor(params[name + suffix].T))
    x = rng.normal(size=(n, steps, d))
    h0, c0 = rng.normal(size=(2, n, size)), rng.normal(size=(2, n, size))
    dy, dh, dc = rng.normal(size=(n, steps, 2 * size)), *rng.normal(size=(2, 2, n, size))
    lengths = np.array([steps, 1, 4, steps - 1]) if masked else np.full(n, steps)
    mask = np.arange(steps) < lengths[:, None] if masked else None
    if masked:
        dy[~mask] = 0.0  # torch's padded outputs are constant zeros

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    inp = tx
    if masked:
        inp = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths),
                                                      batch_first=True, enforce_sorted=False)
    out, state = module(inp, (th0, tc0) if cell == "lstm" else th0)
    if masked:
        out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                      total_length=steps)[0]
    t_h, t_c = state if cell == "lstm" else (state, None)
    total = (out * torch.tensor(dy)).sum() + (t_h * torch.tensor(dh)).sum()
    if cell == "lstm":
        total = total + (t_c * torch.tensor(dc)).sum()
    total.backward()

    dx = np.zeros_like(x)
    for side, suffix in enumerate(("", "_reverse")):
        w_ih, b_ih = params["weight_ih" + suffix], params["bias_ih" + suffix]
        b_hh = params["bias_hh" + suffix]
        xw = x @ w_ih + b_ih + (0 if cell == "gru" else b_hh)
        inputs = {"xw": xw, "h0": h0[side], "w_hh": params["weight_hh" + suffix]}
        inputs.update({"c0": c0[side]} if cell == "lstm" else {})
        inputs.update({"b_hh": b_hh} if cell == "gru" else {})
        y, h, c, tape = forward(cell, inputs, reverse=bool(side), mask=mask)
        part = slice(side * size, (side + 1) * size)
        np.testing.assert_allclose(y, out[..., part].detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h, t_h[side].detach().numpy(), rtol=1e-12, atol=1e-14)
        if cell == "lstm":
            np.testing.assert_allclose(c, t_c[side].detach().numpy(), rtol=1e-12, atol=1e-14)
        grads = {"dy": dy[..., part], "dh_n": dh[side], "dc_n": dc[side]}
        ours = backward(cell, tape, grads)
        dxw = ours["xw"].reshape(n * steps, g * size)
        dx += ours["xw"] @ w_ih.T
        theirs = {name: getattr(module, f"{name}_l0{suffix}").grad.numpy().T
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        mine = {"weight_ih": x.reshape(n * steps, d).T @ dxw, "weight_hh": ours["w_hh"],
                "bias_ih": dxw.sum(0), "bias_hh": ours.get("b_hh", dxw.sum(0))}
        for name in theirs:
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-10, atol=1e-12,
                                       err_msg=name + suffix)
        np.testing.assert_allclose(ours["h0"], th0.grad[side].numpy(), rtol=1e-10, atol=1e-12)
        if cell == "lstm":
            np.testing.assert_allclose(ours["c0"], tc0.grad[side].numpy(), rtol=1e-10,
                                       atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["causal", "key_mask", "causal_cache", "scale", "plain"])
def test_attention_against_torch_sdpa(case, backend):
    torch = pytest.importorskip("torch")
    with fnn.ops.using(backend):
        check_sdpa(torch, case)


def check_sdpa(torch, case):
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    steps, keys = (3, 7) if case == "causal_cache" else (6, 6)
    q, k, v, dout, _ = attention_inputs(steps, keys, n=3, heads=2, d=5, dv=4, seed=4)
    kw, tkw = {}, {}
    if case == "causal":
        kw, tkw = dict(causal=True), dict(is_causal=True)
    elif case == "causal_cache":
        from torch.nn.attention.bias import causal_lower_right

        kw, tkw = dict(causal=True), dict(attn_mask=causal_lower_right(steps, keys))
    elif case == "key_mask":
        key_mask = np.random.default_rng(5).random((3, keys)) < 0.6
        key_mask[:, 2] = True               # torch gives NaN for rows without any key
        kw, tkw = dict(key_mask=key_mask), dict(attn_mask=torch.tensor(key_mask)[:, None, None])
    elif case == "scale":
        kw, tkw = dict(scale=0.7), dict(scale=0.7)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = sdpa(tq, tk, tv, **tkw)
    tout.backward(torch.tensor(dout))
    out, p = A.attention(q, k, v, **kw)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-13)
    grads = A.attention_backward(q, k, v, p, dout, scale=kw.get("scale"))
    for name, ours, t in zip("qkv", grads, (tq, tk, tv)):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-11, atol=1e-13, err_msg=name)


def test_embedding_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    table, ids = rng.normal(size=(11, 6)), rng.integers(0, 11, size=(3, 8))
    dy = rng.normal(size=(3, 8, 6))
    for pad in (None, 4):
        weight = torch.tensor(table, requires_grad=True)
        y = torch.nn.functional.embedding(torch.tensor(ids), weight, padding_idx=pad)
        y.backward(torch.tensor(dy))
        np.testing.assert_array_equal(E.gather(table, ids), y.detach().numpy())
        for backend in ["numpy"] + (["compiled"] if fnn.ops.available() else []):
            with fnn.ops.using(backend):
                np.testing.assert_allclose(E.scatter_add(ids, dy, 11, padding_idx=pad),
                                           weight.grad.numpy(), rtol=1e-13, atol=1e-14)


# --- (c) numpy and compiled backends agree -----------------------------------------------------

# float32 results differ in the last bits per step (exp, tanh), which the recurrence carries on
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def assert_agree(ref, out, dtype, name):
    assert ref.dtype == out.dtype == dtype and ref.shape == out.shape, name
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=name)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_backends_agree(cell, variant, dtype):
    inputs, grads, mask = make_inputs(cell, n=5, steps=7, size=19, masked=variant["masked"],
                                      dtype=dtype, seed=3)
    results = {}
    for backend in ("numpy", "compiled"):
        with fnn.ops.using(backend):
            y, h, c, tape = forward(cell, inputs, reverse=variant["reverse"], mask=mask)
            results[backend] = dict(y=y, h=h, **backward(cell, tape, grads))
    for name, ref in results["numpy"].items():
        assert_agree(ref, results["compiled"][name], dtype, f"{cell} {name}")


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention_backends_agree(case, dtype):
    q, k, v, dout, kw = attention_inputs(**ATTENTION_CASES[case], dtype=dtype, d=16, seed=6)
    results = {}
    for backend in ("numpy", "compiled"):
        with fnn.ops.using(backend):
            out, p = A.attention(q, k, v, **kw)
            results[backend] = (out, p, *A.attention_backward(q, k, v, p, dout,
                                                              dropout=kw.get("dropout")))
    for name, ref, got in zip(("out", "p", "dq", "dk", "dv"), *results.values()):
        assert_agree(ref, got, dtype, f"{case} {name}")


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_exp_tanh_sigmoid_against_numpy(dtype):
    from fnn.ops import vector_math as K

    limit = 87.0 if dtype == np.float32 else 708.0
    x = np.concatenate([np.random.default_rng(0).uniform(-limit, limit, 20000),
                        np.linspace(-3, 3, 20001), [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    eps = np.finfo(dtype).eps
    for kernel, reference in ((K.exp_, np.exp), (K.tanh_, np.tanh),
                              (K.sigmoid_, lambda a: 1 / (1 + np.exp(-a)))):
        out = np.empty_like(x)
        kernel(x, out)
        with np.errstate(over="ignore"):
            expected = reference(x.astype(np.float64))
        np.testing.assert_allclose(out, expected, rtol=4 * eps, atol=0, err_msg=kernel.__name__)
    special = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4], dtype)
    out = np.empty_like(special)
    K.tanh_(special, out)
    np.testing.assert_array_equal(out, [np.nan, 1, -1, 1, -1])
    K.sigmoid_(special, out)
    assert np.isnan(out[0]) and out[1] == 1 and out[3] == 1 and 0 <= out[2] < 1e-37
    K.exp_(special[:1], out[:1])
    assert np.isnan(out[0])


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_add_backends_agree_bit_for_bit_when_ids_repeat(dtype):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 13, size=(8, 40))  # ~25 rows per id: numpy sums each id's run
    dy = rng.normal(size=(8, 40, 33)).astype(dtype)
    out = {}
    for backend in ("numpy", "compiled"):
        with fnn.ops.using(backend):
            out[backend] = E.scatter_add(ids, dy, 13, padding_idx=2)
    assert out["numpy"].dtype == dtype and not out["numpy"][2].any()
    assert out["numpy"].tobytes() == out["compiled"].tobytes()
