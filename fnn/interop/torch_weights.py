"""PyTorch weights both ways: :func:`from_torch` turns a ``torch.nn`` module's
``state_dict`` into params (and state) of the equivalent fnn model, :func:`to_torch` turns
fnn params (and state) into a ``state_dict``, the layouts converted (:mod:`fnn.interop.torch_layouts`):
kernels ``(C_out, C_in, *k)`` <-> ``(*k, C_in, C_out)``, linear ``weight`` = ``w.T``, the
features of a channels-first flatten (or unflatten) reordered for fnn's channels-last ones,
batch-norm's running statistics into and out of fnn's state.

Layers are matched in order: the fnn model's layers with params (or state), as
:func:`fnn.summary` lists them, take the ``state_dict``'s modules in the order of its keys
(registration order: ``features.0``, ``features.3``, ``classifier.1``, ...). Everything that
does not fit is named in one :class:`WeightsMismatch`: a missing key, a shape, an extra key.

>>> import numpy as np, fnn
>>> model = fnn.serial(fnn.linear(3), fnn.relu(), fnn.linear(2))
>>> state_dict = {"fc1.weight": np.ones((3, 4)), "fc1.bias": np.zeros(3),
...               "fc2.weight": np.ones((2, 3)), "fc2.bias": np.zeros(2)}
>>> params, state = fnn.from_torch(model, state_dict, (-1, 4))
>>> params["00_linear"]["w"].shape, state
((4, 3), {})
>>> sorted(fnn.to_torch(model, params, (-1, 4), like=state_dict, tensors="numpy"))
['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fnn._extras import require
from fnn.combinators import child_names
from fnn.core import Layer, init
from fnn.initializers import shapes_only
from fnn.interop.torch_layouts import LAYOUTS, Context, Layout
from fnn.keys import key as make_key

#: kinds that keep the order of features (a flatten's layout change passes through them)
ELEMENTWISE = {"relu", "tanh", "sigmoid", "stable_sigmoid", "leaky_relu", "elu", "softplus",
               "sine", "sinc", "gaussian", "gelu", "identity", "dropout"}


class WeightsMismatch(ValueError):
    """A ``state_dict`` that does not fit the fnn model: every missing key, shape and extra
    key is named."""


class Site(NamedTuple):
    """A layer with params or state: its params path, the layer, its input shape, the
    template params and state ``init`` gives, and the layout changes around it."""

    path: str
    layer: Layer
    shape: Any
    params: dict
    state: dict
    ctx: Context


def _out_shape(layer: Layer, shape: Any) -> Any:
    with shapes_only():
        return layer.init(make_key(0), shape)[0]


def _leaves(layer: Layer, shape: Any, path: str) -> Iterator[tuple[str, Layer | None, Any]]:
    """``(path, layer, input_shape)`` of every non-combinator layer, in order; where branches
    (``parallel``, ``each``) open, start and close, ``(path, None, "open" | "branch" |
    "close")``."""
    if layer.flow is None:
        yield path, layer, shape
        return
    where = f"{path}/" if path else ""
    branches = layer.flow in ("parallel", "each")
    if branches:
        yield path, None, "open"
    for i, (child, name) in enumerate(zip(layer.children, child_names(layer.children))):
        if branches:
            yield path, None, "branch"
        yield from _leaves(child, shape[i] if layer.flow == "each" else shape, where + name)
        if not branches:
            shape = _out_shape(child, shape)
    if branches:
        yield path, None, "close"


def _contexts(leaves: list[tuple[str, Layer | None, Any]]) -> list[Context]:
    """Each leaf's :class:`Context`: a linear after a flatten of ``(N, *S, C)`` (through
    element-wise layers; into every branch of a parallel) reads channels-first features, one
    before a reshape to ``(N, *S, C)`` writes them."""
    ctx = [Context() for _ in leaves]
    flat, last_linear = None, None
    entering: list = []  # the flatten seen where each open group of branches started
    for i, (_, layer, shape) in enumerate(leaves):
        if layer is None:
            if shape == "open":
                entering.append(flat)
            elif shape == "branch":
                flat = entering[-1]
            else:
                entering.pop()
                flat = None
            last_linear = None
            continue
        kind = layer.kind
        if kind == "linear":
            ctx[i] = Context(flat_in=flat)
            flat, last_linear = None, i
        elif kind == "flatten":
            flat, last_linear = (tuple(shape[1:]) if len(shape) > 2 else None), None
        elif kind == "reshape" and last_linear is not None:
            target = _out_shape(layer, shape)
            if len(target) > 2:
                ctx[last_linear] = ctx[last_linear]._replace(unflat_out=tuple(target[1:]))
            flat, last_linear = None, None
        elif kind not in ELEMENTWISE:
            flat, last_linear = None, None
    return ctx


def sites(model: Layer, input_shape: tuple) -> list[Site]:
    """The layers of ``model`` with params or state, in order, with their templates.

    >>> import fnn
    >>> from fnn.interop.torch_weights import sites
    >>> [(s.path, s.ctx.flat_in) for s in sites(fnn.serial(fnn.conv1d(2, 3), fnn.flatten(),
    ...                                                     fnn.linear(4)), (-1, 8, 1))]
    [('00_conv1d', None), ('02_linear', (6, 2))]
    """
    leaves = list(_leaves(model, tuple(input_shape), ""))
    found = []
    for (path, layer, shape), ctx in zip(leaves, _contexts(leaves)):
        if layer is None:
            continue
        with shapes_only():
            out = layer.init(make_key(0), shape)
        params, state = out[1], (out[2] if layer.stateful else {})
        if params or state:
            found.append(Site(path, layer, shape, params, state, ctx))
    return found


def _layout(site: Site) -> Layout:
    layout = LAYOUTS.get(site.layer.kind or "")
    if layout is None:
        raise WeightsMismatch(f"fnn.interop.torch_weights: layer {site.layer!r} at {site.path!r} "
                              f"(kind {site.layer.kind!r}) has no known PyTorch layout")
    return layout


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def natural_key(name: str) -> tuple:
    """Sort key putting ``"features.2.weight"`` before ``"features.10.weight"``.

    >>> from fnn.interop.torch_weights import natural_key
    >>> sorted(["10.weight", "2.bias", "2.weight", "fc.bias"], key=natural_key)
    ['2.bias', '2.weight', '10.weight', 'fc.bias']
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in name.split("."))


def read_state_dict(source: Any) -> dict[str, np.ndarray]:
    """A ``state_dict`` as numpy arrays by key, from a ``torch.nn.Module``, a mapping of
    tensors or arrays, or a file: ``.safetensors`` (read without torch) or a ``torch.save``
    file (``torch.load(weights_only=True)``: no arbitrary unpickling; the ``torch`` extra).
    A ``.safetensors`` file does not keep a ``state_dict``'s order (its keys are sorted): they
    are taken in natural order (``features.2`` before ``features.10``, which is
    ``nn.Sequential``'s); give :func:`from_torch` ``order=`` when the module's order differs."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.suffix == ".safetensors":  # its keys come sorted: natural order is the best guess
            from fnn.io import load

            loaded = load(path)
            return {k: loaded[k] for k in sorted(loaded, key=natural_key)}
        torch = require("torch", "fnn.from_torch (a torch.save file)")
        source = torch.load(path, map_location="cpu", weights_only=True)
    if hasattr(source, "state_dict") and callable(source.state_dict):
        source = source.state_dict()
    if not isinstance(source, Mapping):
        raise TypeError("from_torch: expects a state_dict (a mapping of tensors), a torch.nn."
                        f"Module or a file, got {type(source).__name__}")
    return {str(k): _numpy(v) for k, v in source.items()}


def _take(site: Site, expected: dict, layout: Layout, keys: list[str], start: int,
          problems: list[str]) -> tuple[dict, int]:
    """The keys of ``site``'s torch module, found from ``keys[start]`` on, by the suffix
    (``"weight"``) they stand for, and the index of the next unclaimed key. A recurrent
    layer's suffixes take the layer index of the first key (``weight_ih_l1``)."""
    first = keys[start]
    names = {s: s for s in (*expected, *layout.ignored)}  # suffix -> as written in torch
    level = re.search(r"_l(\d+)(_reverse)?$", first) if layout.levels else None
    if level is not None:
        names = {s: s.replace("_l0", f"_l{level.group(1)}") for s in names}
    suffix = next((s for s, t in names.items() if first == t or first.endswith("." + t)), None)
    if suffix is None:
        problems.append(f"{site.path} ({site.layer!r}) expects keys ending in "
                        f"{list(expected)}, but the next key is {first!r}")
        return {}, start + 1
    prefix = first[: len(first) - len(names[suffix])]
    wanted = {prefix + t: s for s, t in names.items()}
    found, i = {}, start
    while i < len(keys) and keys[i] in wanted:
        found[wanted[keys[i]]] = keys[i]
        i += 1
    for s in expected:
        if s not in found:
            problems.append(f"missing key {prefix + names[s]!r} for {site.path} ({site.layer!r})")
    return found, i


def from_torch(model: Layer, state_dict: Any, input_shape: tuple, *, dtype: Any = None,
               order: Any = None) -> tuple[dict, dict]:
    """``(params, state)`` of the fnn ``model`` (for inputs ``input_shape``, batch first)
    from a PyTorch ``state_dict`` (a module, a mapping, or a ``.safetensors``/``torch.save``
    file: :func:`read_state_dict`), the layouts converted (module doc); ``dtype``: cast
    every array (default: keep the file's); ``order``: the order to take the keys in (a list
    of keys, or a module or ``state_dict`` having them in order), when the source's is not
    the module's. Raises :class:`WeightsMismatch` naming every missing key, extra key and
    shape that does not fit.

    >>> import numpy as np, fnn
    >>> fnn.from_torch(fnn.serial(fnn.linear(2)), {"weight": np.ones((3, 4))}, (-1, 4))
    Traceback (most recent call last):
    ...
    fnn.interop.torch_weights.WeightsMismatch: from_torch: the state_dict does not fit serial(linear(2)): missing key 'bias' for 00_linear (linear(2)); 'weight' has shape (3, 4), 00_linear (linear(2)) expects (2, 4)
    """
    tensors = read_state_dict(state_dict)
    if order is not None:
        first = list(order) if isinstance(order, (list, tuple)) else list(read_state_dict(order))
        tensors = {**{k: tensors[k] for k in first if k in tensors}, **tensors}
    keys, problems = list(tensors), []
    params: dict = {}
    state: dict = {}
    i = 0
    for site in sites(model, input_shape):
        layout = _layout(site)
        expected = layout.to_torch(site.layer, site.params, site.state, site.ctx)
        if i >= len(keys):
            problems.append(f"missing keys {list(expected)} for {site.path} ({site.layer!r}): "
                            "the state_dict has no more")
            continue
        found, i = _take(site, expected, layout, keys, i, problems)
        group = {}
        for suffix, key in found.items():
            if suffix in layout.ignored:
                continue
            value, want = tensors[key], np.shape(expected[suffix])
            if value.shape != want:
                problems.append(f"{key!r} has shape {value.shape}, {site.path} "
                                f"({site.layer!r}) expects {want}")
            group[suffix] = value if dtype is None else value.astype(dtype)
        if len(group) == len(expected) and not problems:
            params[site.path], new_state = layout.to_fnn(site.layer, group, site.ctx)
            if site.layer.stateful:
                state[site.path] = new_state
    if i < len(keys):
        problems.append(f"extra keys {keys[i:]} (no fnn layer left to take them)")
    if problems:
        raise WeightsMismatch(f"from_torch: the state_dict does not fit {model!r}: "
                              + "; ".join(problems))
    return _complete(model, input_shape, params, state)


def _complete(model: Layer, input_shape: tuple, params: dict, state: dict) -> tuple[Any, Any]:
    """The model's params and state trees, each layer's entry from ``params``/``state``
    (by params path) or, for a layer without params, the ``{}`` of ``init``."""
    with shapes_only():
        _, template, template_state = init(model, make_key(0), tuple(input_shape))

    def fill(t: Any, path: str, converted: dict) -> Any:
        if path in converted:
            return converted[path]
        if isinstance(t, dict):
            return {k: fill(v, f"{path}/{k}" if path else k, converted) for k, v in t.items()}
        return t

    return fill(template, "", params), fill(template_state, "", state)


def _checked(site: Site, tree: Any, template: dict, what: str) -> dict:
    """The entry of ``site`` in ``tree`` (params or state), with the template's keys and
    shapes, else a :class:`WeightsMismatch` naming the path."""
    node = tree
    for p in site.path.split("/") if site.path else []:
        node = node.get(p) if isinstance(node, dict) else None
    shapes = {k: np.shape(v) for k, v in node.items()} if isinstance(node, dict) else None
    want = {k: np.shape(v) for k, v in template.items()}
    if shapes != want:
        raise WeightsMismatch(f"to_torch: {what} at {site.path or '<root>'!r} ({site.layer!r}) "
                              f"should have shapes {want}, got {shapes}")
    return node


def to_torch(model: Layer, params: Any, input_shape: tuple, *, state: Any = None,
             like: Any = None, tensors: str = "torch") -> dict:
    """A PyTorch ``state_dict`` of ``params`` (and ``state``: batch-norm's running
    statistics; ``num_batches_tracked``, a counter fnn does not keep, is written 0), the
    layouts converted (module doc). Keys: those of ``like`` (a torch module or
    ``state_dict`` of the equivalent network, also checked for shapes: a mismatch is a
    :class:`WeightsMismatch`), else the fnn params paths (``"00_linear.weight"``).
    ``tensors="torch"`` (the ``torch`` extra) or ``"numpy"``.

    >>> import fnn
    >>> model = fnn.serial(fnn.conv1d(4, 3, bias=True), fnn.batch_norm())
    >>> _, params, state = fnn.init(model, fnn.key(0), (-1, 10, 2))
    >>> out = fnn.to_torch(model, params, (-1, 10, 2), state=state, tensors="numpy")
    >>> {k: v.shape for k, v in out.items()}    # doctest: +NORMALIZE_WHITESPACE
    {'00_conv1d.weight': (4, 2, 3), '00_conv1d.bias': (4,), '01_batch_norm.weight': (4,),
     '01_batch_norm.bias': (4,), '01_batch_norm.running_mean': (4,),
     '01_batch_norm.running_var': (4,), '01_batch_norm.num_batches_tracked': ()}
    """
    out: dict[str, np.ndarray] = {}
    for site in sites(model, input_shape):
        layout = _layout(site)
        p = _checked(site, params, site.params, "params")
        s = _checked(site, state, site.state, "state") if site.layer.stateful else {}
        converted = layout.to_torch(site.layer, p, s, site.ctx)
        for suffix, value in converted.items():
            out[f"{site.path.replace('/', '.')}.{suffix}" if site.path else suffix] = value
        if "num_batches_tracked" in layout.ignored and s:
            out[f"{site.path.replace('/', '.')}.num_batches_tracked"] = np.array(0, np.int64)
    if like is not None:
        theirs = read_state_dict(like)
        names = list(theirs)
        if len(names) != len(out) or any(np.shape(v) != theirs[n].shape
                                         for n, v in zip(names, out.values())):
            ours = [f"{k} {np.shape(v)}" for k, v in out.items()]
            raise WeightsMismatch(f"to_torch: {model!r} gives {ours}, the template has "
                                  f"{[f'{k} {v.shape}' for k, v in theirs.items()]}")
        out = dict(zip(names, out.values()))
    if tensors == "numpy":
        return out
    torch = require("torch", "fnn.to_torch")
    return {k: torch.from_numpy(np.array(v)) for k, v in out.items()}


__all__ = ["WeightsMismatch", "from_torch", "read_state_dict", "sites", "to_torch"]
