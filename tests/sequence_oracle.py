"""Shared helpers of the sequence-layer tests: a torch oracle comparing outputs and every
gradient of an fnn layer with a torch function in float64."""

from __future__ import annotations

import numpy as np


def f64(tree):
    if isinstance(tree, dict):
        return {k: f64(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float64)


def oracle(layer, params, x, torch_fn, *, grad_keys=None, seed=1, rtol=1e-9, atol=1e-10):
    """Compare ``layer.vjp(params, x)`` with ``torch_fn(tparams, tx)`` (tensors with grad):
    the output and the gradients of every param (flat paths "a/b") and of float inputs.
    ``x``: an array or a tuple; integer and bool parts are passed through untouched."""
    import torch

    params = f64(params)
    y, pullback = layer.vjp(params, x)
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal(y.shape)
    grads, dx = pullback(dy)

    flat_p, flat_g = {}, {}

    def walk(p, g, prefix):
        for k in p:
            if isinstance(p[k], dict):
                walk(p[k], g[k], prefix + k + "/")
            else:
                flat_p[prefix + k] = p[k]
                flat_g[prefix + k] = g[k]

    walk(params, grads, "")
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in flat_p.items()}
    xs = x if isinstance(x, tuple) else (x,)
    tx = tuple(torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in xs)
    ty = torch_fn(tp, *tx)
    np.testing.assert_allclose(ty.detach().numpy(), y, rtol=rtol, atol=atol, err_msg="output")
    ty.backward(torch.tensor(dy))
    for k in grad_keys or flat_p:
        np.testing.assert_allclose(flat_g[k], tp[k].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"grad {k}")
    dxs = dx if isinstance(x, tuple) else (dx,)
    for i, (a, t) in enumerate(zip(xs, tx)):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(dxs[i], t.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"grad of input {i}")
    return y, grads, dx
