"""Normalisation layers: batch-norm (with running statistics, the one layer with state),
layer-norm and group-norm. Inputs are channels-last: ``(N, D)``, ``(N, L, C)``, ``(N, H, W, C)``.

Each normalises ``x`` to ``xhat = (x - mean) / sqrt(var + eps)`` (biased ``var``) and, with
``affine=True`` (the default), returns ``xhat * scale + bias`` with learned ``scale`` (ones at
init) and ``bias`` (zeros) per channel. The numerics are in :mod:`fnn.ops.norm`.

* :func:`batch_norm` — statistics per channel over the batch (and the spatial axes). ``vjp``
  (training) uses the batch's statistics and returns the updated running ones as its new state;
  ``apply`` (inference) uses the running ones. As in PyTorch: ``running = (1 - momentum) *
  running + momentum * batch``, the running variance from the unbiased batch variance.
  Sharded (``threads=n``) batches are normalised with the statistics of the whole batch.
* :func:`layer_norm` — statistics per sample over the last axes (default: the channels).
* :func:`group_norm` — statistics per sample and group of channels, over the spatial axes.
"""

from __future__ import annotations

import numpy as np

from fnn import initializers
from fnn.checks import LayerError, fmt_shape
from fnn.core import Layer
from fnn.keys import split
from fnn.layers.base import layer
from fnn.ops.norm import layer_norm as last_axis_norm
from fnn.ops.norm import layer_norm_backward, moments, normalize, normalize_backward
from fnn.threads import allreduce, shard_weight
from fnn.validate import boolean, fraction, non_negative, positive_int


def _affine_params(key, channels, affine: bool, scale_init, bias_init) -> dict:
    if not affine:
        return {}
    ks, kb = split(key)
    return {"scale": scale_init(ks, channels), "bias": bias_init(kb, channels)}


def _label(name: str, first: str, momentum, eps, affine, defaults) -> str:
    args = [first] if first else []
    for arg, value, default in (("momentum", momentum, defaults[0]), ("eps", eps, 1e-5),
                                ("affine", affine, True)):
        if value is not None and value != default:
            args.append(f"{arg}={value!r}")
    return f"{name}({', '.join(args)})"


def batch_norm(*, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True,
               scale_init="ones", bias_init="zeros") -> Layer:
    """Batch normalisation over the channel (last) axis: ``(N, ..., C)`` to the same shape.

    Params ``scale, bias: (C,)`` (none with ``affine=False``); state ``mean, var: (C,)``, the
    running statistics (zeros and ones at init). Matches ``torch.nn.BatchNorm1d/2d(C,
    momentum, eps, affine)`` in training and eval mode.

    >>> import numpy as np, fnn
    >>> bn = fnn.batch_norm()
    >>> shape, params, state = bn.init(fnn.key(0), (-1, 3))
    >>> x = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]], np.float32)
    >>> y, pullback, state = bn.vjp(params, x, state=state)   # training: the batch's statistics
    >>> y.round(3)
    array([[-1., -1., -1.],
           [ 1.,  1.,  1.]], dtype=float32)
    >>> state["mean"]                                          # 0.9 * 0 + 0.1 * batch mean
    array([0.1, 0.2, 0.4], dtype=float32)
    >>> bn.apply(params, x, state=state).shape                 # inference: the running ones
    (2, 3)
    """
    label = _label("batch_norm", "", momentum, eps, affine, (0.1,))
    momentum = fraction(label, "momentum", momentum)
    eps = non_negative(label, "eps", eps)
    affine = boolean(label, "affine", affine)
    scale_init, bias_init = initializers.get(scale_init), initializers.get(bias_init)

    def init(key, shape):
        channels = shape[-1:]
        state = {"mean": np.zeros(channels, np.float32), "var": np.ones(channels, np.float32)}
        return shape, _affine_params(key, channels, affine, scale_init, bias_init), state

    def out(params, xhat):
        return xhat * params["scale"] + params["bias"] if affine else xhat

    def forward(params, x, state):
        axes = tuple(range(x.ndim - 1))
        mean, var, n = moments(x, axes, allreduce)
        if n < 2:
            raise LayerError(f"{label}: training needs more than one value per channel, got "
                             f"input {x.shape} (use apply for inference)")
        xhat, inv = normalize(x, mean, var, eps)
        dtype = state["mean"].dtype
        new_state = {
            "mean": ((1 - momentum) * state["mean"] + momentum * mean.ravel()).astype(dtype),
            "var": ((1 - momentum) * state["var"]
                    + momentum * var.ravel() * (n / (n - 1))).astype(dtype),
        }
        return out(params, xhat), (xhat, inv, n), new_state

    def backward(params, saved, dy, input_grad):
        xhat, inv, n = saved
        axes = tuple(range(dy.ndim - 1))
        grads = {"scale": (dy * xhat).sum(axis=axes), "bias": dy.sum(axis=axes)} if affine else {}
        if not input_grad:
            return grads, None
        g = dy * params["scale"] if affine else dy
        return grads, normalize_backward(g, xhat, inv, axes, n, allreduce, shard_weight())

    def apply(params, x, state):
        xhat, _ = normalize(x, state["mean"].astype(x.dtype), state["var"].astype(x.dtype), eps)
        return out(params, xhat)

    return layer(label, init, forward, backward, apply=apply, stateful=True, kind="batch_norm",
                 config={"momentum": momentum, "eps": eps, "affine": affine})


def _per_sample(label: str, init, axes_of, eps: float, affine: bool, regroup=None, *,
                kind: str, config: dict) -> Layer:
    """A normalisation with statistics per sample over ``axes_of(x)`` of ``regroup(x)`` (the
    input itself by default), scale and bias over the channels."""
    regroup = regroup or (lambda x: x)

    def forward(params, x):
        xr = regroup(x)
        axes = axes_of(xr)
        mean, var, n = moments(xr, axes)
        xhat_r, inv = normalize(xr, mean, var, eps)  # regrouped, as the backward wants it
        xhat = xhat_r.reshape(x.shape)
        y = xhat * params["scale"] + params["bias"] if affine else xhat
        return y, (xhat, xhat_r, inv, axes, n)

    def backward(params, saved, dy, input_grad):
        xhat, xhat_r, inv, axes, n = saved
        lead = tuple(range(dy.ndim - np.ndim(params["scale"]))) if affine else ()
        grads = {"scale": (dy * xhat).sum(axis=lead), "bias": dy.sum(axis=lead)} if affine else {}
        if not input_grad:
            return grads, None
        g = regroup(dy * params["scale"] if affine else dy)
        return grads, normalize_backward(g, xhat_r, inv, axes, n).reshape(dy.shape)

    return layer(label, init, forward, backward, kind=kind,
                 config={**config, "eps": eps, "affine": affine})


def layer_norm(axes=-1, *, eps: float = 1e-5, affine: bool = True, scale_init="ones",
               bias_init="zeros") -> Layer:
    """Layer normalisation: each sample normalised over its last axes ``axes`` (an int or a
    tuple of the last axes, e.g. ``(-3, -2, -1)`` for a whole ``(H, W, C)`` image); params
    ``scale, bias`` of those axes' shape. Matches ``torch.nn.LayerNorm(x.shape[axes])``.

    >>> import numpy as np, fnn
    >>> ln = fnn.layer_norm()
    >>> _, params = ln.init(fnn.key(0), (-1, 4))
    >>> ln.apply(params, np.array([[1.0, 2.0, 3.0, 4.0]])).round(3)
    array([[-1.342, -0.447,  0.447,  1.342]])
    """
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    label = _label("layer_norm", "" if axes == (-1,) else f"axes={axes}", None, eps, affine, (None,))
    k = len(axes)
    if not axes or sorted(axes) != list(range(-k, 0)):
        raise ValueError(f"{label}: axes must be the last axes as negative ints, e.g. -1 or "
                         f"(-2, -1), got {axes!r}")
    eps = non_negative(label, "eps", eps)
    affine = boolean(label, "affine", affine)
    scale_init, bias_init = initializers.get(scale_init), initializers.get(bias_init)

    def init(key, shape):
        if len(shape) < k + 1:
            raise LayerError(f"{label}: needs inputs with {k} axes after the batch, got "
                             f"input_shape {fmt_shape(shape)}")
        return shape, _affine_params(key, shape[-k:], affine, scale_init, bias_init)

    if axes == (-1,) and affine:  # the usual case: the kernels of fnn.ops.norm.layer_norm
        return _last_axis(label, init, eps)
    return _per_sample(label, init, lambda x: tuple(range(x.ndim - k, x.ndim)), eps, affine,
                       kind="layer_norm", config={"axes": axes})


def _last_axis(label: str, init, eps: float) -> Layer:
    """``layer_norm()`` over the last axis with scale and bias (one compiled pass per row
    forward and backward on the compiled backend; the same numpy code as the other
    layer-norms otherwise)."""

    def forward(params, x):
        y, xhat, inv = last_axis_norm(x, params["scale"], params["bias"], eps)
        return y, (xhat, inv)

    def backward(params, saved, dy, input_grad):
        xhat, inv = saved
        dscale, dbias, dx = layer_norm_backward(dy, xhat, inv, params["scale"])
        return {"scale": dscale, "bias": dbias}, (dx if input_grad else None)

    return layer(label, init, forward, backward, kind="layer_norm",
                 config={"axes": (-1,), "eps": eps, "affine": True})


def group_norm(groups: int, *, eps: float = 1e-5, affine: bool = True, scale_init="ones",
               bias_init="zeros") -> Layer:
    """Group normalisation: the channels of ``(N, ..., C)`` split into ``groups`` groups of
    ``C // groups`` consecutive channels, each sample normalised per group over the spatial
    axes and the group's channels; params ``scale, bias: (C,)``. Matches
    ``torch.nn.GroupNorm(groups, C)`` (on channels-first data).

    >>> import numpy as np, fnn
    >>> gn = fnn.group_norm(2)
    >>> _, params = gn.init(fnn.key(0), (-1, 5, 4))
    >>> y = gn.apply(params, np.random.default_rng(0).normal(size=(3, 5, 4)))
    >>> bool(np.allclose(y.reshape(3, 5, 2, 2).mean(axis=(1, 3)), 0))
    True
    """
    label = _label("group_norm", str(positive_int("group_norm", "groups", groups)), None, eps,
                   affine, (None,))
    eps = non_negative(label, "eps", eps)
    affine = boolean(label, "affine", affine)
    scale_init, bias_init = initializers.get(scale_init), initializers.get(bias_init)

    def init(key, shape):
        if shape[-1] % groups:
            raise LayerError(f"{label}: the channels ({shape[-1]}) must split into {groups} "
                             f"equal groups, got input_shape {fmt_shape(shape)}")
        return shape, _affine_params(key, shape[-1:], affine, scale_init, bias_init)

    def regroup(x):
        return x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)

    def axes_of(xr):  # (N, *S, G, C/G): the spatial axes and the group's channels
        return (*range(1, xr.ndim - 2), xr.ndim - 1)

    return _per_sample(label, init, axes_of, eps, affine, regroup, kind="group_norm",
                       config={"groups": int(groups)})


__all__ = ["batch_norm", "group_norm", "layer_norm"]
