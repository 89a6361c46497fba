"""How each built-in layer's params (and state) are laid out in a PyTorch ``state_dict``:
:data:`LAYOUTS`, ``kind -> Layout``, read by :mod:`fnn.interop.torch_weights`.

A :class:`Layout` converts one layer both ways: ``to_torch(layer, params, state, ctx) ->
{suffix: array}`` (the keys after the torch module's prefix: ``"weight"``, ``"bias"``,
``"running_mean"``, ...) and ``to_fnn(layer, tensors, ctx) -> (params, state)``. ``ctx`` says
what layout change the data itself went through around a ``linear``: ``ctx.flat_in`` is the
``(*spatial, C)`` shape a flatten before it flattened (torch flattens channels-first), and
``ctx.unflat_out`` the shape a reshape after it makes of its output (torch: ``(C,
*spatial)``).

>>> import numpy as np, fnn
>>> from fnn.interop.torch_layouts import LAYOUTS, Context
>>> layer = fnn.conv2d(4, 3, bias=True)
>>> _, params = layer.init(fnn.key(0), (-1, 8, 8, 2))
>>> {k: v.shape for k, v in LAYOUTS["conv"].to_torch(layer, params, {}, Context()).items()}
{'weight': (4, 2, 3, 3), 'bias': (4,)}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class Context(NamedTuple):
    """The layout changes around a layer (see the module doc); None when there are none."""

    flat_in: tuple | None = None
    unflat_out: tuple | None = None


class Layout(NamedTuple):
    """A layer kind's torch form: ``to_torch``, ``to_fnn``, the ``state_dict`` suffixes it
    may meet without using them (``num_batches_tracked``) and whether its keys carry a
    layer index (``weight_ih_l0``: the ``_l<k>`` of a stack of torch layers, ``levels``)."""

    to_torch: Callable
    to_fnn: Callable
    ignored: tuple[str, ...] = ()
    levels: bool = False


def channels_first_order(spatial_channels: tuple) -> np.ndarray:
    """``p`` such that fnn's feature ``i`` (channels-last ``(*spatial, C)``, flattened) is
    torch's feature ``p[i]`` (channels-first ``(C, *spatial)``).

    >>> from fnn.interop.torch_layouts import channels_first_order
    >>> channels_first_order((2, 3)).tolist()   # (H=2, C=3): fnn (h, c) -> torch (c, h)
    [0, 2, 4, 1, 3, 5]
    """
    *spatial, c = spatial_channels
    order = np.arange(int(np.prod(spatial_channels))).reshape(c, *spatial)
    return np.moveaxis(order, 0, -1).ravel()


def _kernel_to_torch(w: np.ndarray) -> np.ndarray:
    """fnn ``(*k, a, b)`` -> torch ``(b, a, *k)``."""
    nd = w.ndim - 2
    return np.ascontiguousarray(np.transpose(w, (nd + 1, nd, *range(nd))))


def _kernel_to_fnn(w: np.ndarray) -> np.ndarray:
    """torch ``(b, a, *k)`` -> fnn ``(*k, a, b)``."""
    return np.ascontiguousarray(np.transpose(w, (*range(2, w.ndim), 1, 0)))


def _linear_to_torch(layer, params, state, ctx):
    w = params["w"]  # (in, out)
    out = {}
    if ctx.flat_in is not None:
        w = w[np.argsort(channels_first_order(ctx.flat_in))]
    b = params.get("b")
    if ctx.unflat_out is not None:
        back = np.argsort(channels_first_order(ctx.unflat_out))
        w, b = w[:, back], (None if b is None else b[back])
    out["weight"] = np.ascontiguousarray(w.T)
    if b is not None:
        out["bias"] = b
    return out


def _linear_to_fnn(layer, tensors, ctx):
    w = tensors["weight"].T  # (in, out)
    b = tensors.get("bias")
    if ctx.flat_in is not None:
        w = w[channels_first_order(ctx.flat_in)]
    if ctx.unflat_out is not None:
        order = channels_first_order(ctx.unflat_out)
        w, b = w[:, order], (None if b is None else b[order])
    params = {"w": np.ascontiguousarray(w)}
    return ({**params, "b": b} if b is not None else params), {}


def _conv_to_torch(layer, params, state, ctx):
    out = {"weight": _kernel_to_torch(params["w"])}
    return {**out, "bias": params["b"]} if "b" in params else out


def _conv_to_fnn(layer, tensors, ctx):
    params = {"w": _kernel_to_fnn(tensors["weight"])}
    return ({**params, "b": tensors["bias"]} if "bias" in tensors else params), {}


def _affine_to_torch(layer, params, state, ctx):
    out = {"weight": params["scale"], "bias": params["bias"]} if "scale" in params else {}
    if state:
        out.update(running_mean=state["mean"], running_var=state["var"])
    return out


def _affine_to_fnn(layer, tensors, ctx):
    params = {"scale": tensors["weight"], "bias": tensors["bias"]} if "weight" in tensors else {}
    state = ({"mean": tensors["running_mean"], "var": tensors["running_var"]}
             if "running_mean" in tensors else {})
    return params, state


def _table_to_torch(layer, params, state, ctx):
    return {"weight": params["table"]}


def _table_to_fnn(layer, tensors, ctx):
    return {"table": tensors["weight"]}, {}


def _directions(layer) -> tuple[str, ...]:
    return ("", "_reverse") if layer.config["bidirectional"] else ("",)


def _recurrent_to_torch(layer, params, state, ctx):
    """``weight_ih_l0 = w_ih.T``, ``weight_hh_l0 = w_hh.T``, the biases as they are (the
    gate order is torch's in fnn); a stack of torch layers is a serial of fnn ones, the
    ``_l<k>`` suffixes are matched by :func:`fnn.from_torch`."""
    out = {}
    for s in _directions(layer):
        out.update({f"weight_ih_l0{s}": np.ascontiguousarray(params["w_ih" + s].T),
                    f"weight_hh_l0{s}": np.ascontiguousarray(params["w_hh" + s].T),
                    f"bias_ih_l0{s}": params["b_ih" + s], f"bias_hh_l0{s}": params["b_hh" + s]})
    return out


def _recurrent_to_fnn(layer, tensors, ctx):
    params = {}
    for s in _directions(layer):
        params.update({"w_ih" + s: np.ascontiguousarray(tensors[f"weight_ih_l0{s}"].T),
                       "w_hh" + s: np.ascontiguousarray(tensors[f"weight_hh_l0{s}"].T),
                       "b_ih" + s: tensors[f"bias_ih_l0{s}"], "b_hh" + s: tensors[f"bias_hh_l0{s}"]})
    return params, {}


def _attention_to_torch(layer, params, state, ctx):
    return {"in_proj_weight": np.ascontiguousarray(params["w_qkv"].T),
            "in_proj_bias": params["b_qkv"],
            "out_proj.weight": np.ascontiguousarray(params["w_o"].T),
            "out_proj.bias": params["b_o"]}


def _attention_to_fnn(layer, tensors, ctx):
    return {"w_qkv": np.ascontiguousarray(tensors["in_proj_weight"].T),
            "b_qkv": tensors["in_proj_bias"],
            "w_o": np.ascontiguousarray(tensors["out_proj.weight"].T),
            "b_o": tensors["out_proj.bias"]}, {}


#: ``kind -> Layout`` of every built-in layer kind with params
LAYOUTS: dict[str, Layout] = {
    "linear": Layout(_linear_to_torch, _linear_to_fnn),
    "conv": Layout(_conv_to_torch, _conv_to_fnn),
    "batch_norm": Layout(_affine_to_torch, _affine_to_fnn, ("num_batches_tracked",)),
    "layer_norm": Layout(_affine_to_torch, _affine_to_fnn),
    "group_norm": Layout(_affine_to_torch, _affine_to_fnn),
    "embedding": Layout(_table_to_torch, _table_to_fnn),  # nn.Embedding
    "positional_embedding": Layout(_table_to_torch, _table_to_fnn),  # an nn.Embedding of positions
    **{cell: Layout(_recurrent_to_torch, _recurrent_to_fnn, levels=True)
       for cell in ("rnn", "gru", "lstm")},
    "multi_head_attention": Layout(_attention_to_torch, _attention_to_fnn),
}

__all__ = ["LAYOUTS", "Context", "Layout", "channels_first_order"]
