"""``fnn.summary(model, input_shape)``: a model described layer by layer, as Keras'
``model.summary()`` does — each layer's path in the params tree, what it is, its output shape,
its parameter count and the size of its state (running statistics), with totals and the
kernels in use.

>>> import fnn
>>> model = fnn.serial(fnn.conv1d(32, 3), fnn.max_pool1d(2, 2), fnn.flatten(),
...                    fnn.linear(100), fnn.relu(), fnn.linear(10))
>>> rows = fnn.summary(model, (-1, 256, 1), print_fn=None)
>>> [(r["path"], r["output_shape"], r["params"]) for r in rows[:2]]
[('00_conv1d', (-1, 254, 32), 96), ('01_max_pool1d', (-1, 127, 32), 0)]
>>> sum(r["params"] for r in rows)
407606
"""

from __future__ import annotations

from collections.abc import Callable

from fnn.checks import fmt_shape
from fnn.combinators import child_names
from fnn.core import Layer, init
from fnn.keys import fold_in, key
from fnn.tree import tree_leaves, tree_size

__all__ = ["summary"]


def _rows(layer: Layer, k, shape, path: str, depth: int, out: list) -> tuple:
    """Append a row per leaf layer (and one per combinator) under ``layer``; return its
    output shape."""
    out_shape, params, state = init(layer, k, shape)
    out.append({"path": path or "<model>", "layer": repr(layer) if not layer.children else
                f"{layer.label or layer.name}", "output_shape": out_shape,
                "params": tree_size(params) if not layer.children else 0,
                "state": tree_size(state) if not layer.children else 0,
                "dtype": str(tree_leaves(params)[0].dtype) if tree_leaves(params) else "",
                "depth": depth, "combinator": bool(layer.children)})
    if not layer.children:
        return out_shape
    names = child_names(layer.children)
    inner = shape
    for i, (name, child) in enumerate(zip(names, layer.children)):
        child_path = f"{path}/{name}" if path else name
        source = shape if layer.flow == "parallel" else shape[i] if layer.flow == "each" \
            else inner
        inner = _rows(child, fold_in(k, i), source, child_path, depth + 1, out)
    return out_shape


def summary(model: Layer, input_shape: tuple, *,
            print_fn: Callable[[str], object] | None = print) -> list[dict]:
    """Print (through ``print_fn``; None prints nothing) and return a table of ``model``:
    one row per layer with its path in the params tree, the layer, its output shape for inputs
    of ``input_shape`` (batch first, ``-1`` for any), its parameter count and its state size
    (numbers in its state tree: batch-norm's running statistics); then the totals and the
    kernel backend in use (:func:`fnn.ops.backend`). Combinators get a row of their own
    (counted in their children's rows). Returns the rows as dicts (``path``, ``layer``,
    ``output_shape``, ``params``, ``state``, ``dtype``, ``depth``, ``combinator``).

    >>> import fnn
    >>> rows = fnn.summary(fnn.serial(fnn.linear(4), fnn.relu()), (-1, 3), print_fn=None)
    >>> [(r["path"], r["layer"], r["output_shape"], r["params"]) for r in rows]
    [('00_linear', 'linear(4)', (-1, 4), 16), ('01_relu', 'relu()', (-1, 4), 0)]
    """
    if not isinstance(model, Layer):
        raise TypeError(f"summary: expected an fnn.Layer, got {type(model).__name__}")
    rows: list[dict] = []
    _rows(model, key(0), tuple(input_shape), "", 0, rows)
    if model.children:  # the model's own row adds nothing but its name
        rows = [r for r in rows if r["path"] != "<model>"]
        for r in rows:
            r["depth"] -= 1
    if print_fn is not None:
        print_fn(render(model, input_shape, rows))
    return rows


def render(model: Layer, input_shape: tuple, rows: list[dict]) -> str:
    """The text table :func:`summary` prints."""
    from fnn.ops import backend

    table = [("path", "layer", "output shape", "params", "state")]
    for r in rows:
        table.append(("  " * r["depth"] + r["path"].rsplit("/", 1)[-1], r["layer"],
                      fmt_shape(r["output_shape"]),
                      *((f"{r[c]:,}" if not r["combinator"] else "") for c in ("params", "state"))))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    text = [f"{model.name}: input {fmt_shape(tuple(input_shape))}", line]
    for i, row in enumerate(table):
        text.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w)
                              for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            text.append(line)
    total, stored = sum(r["params"] for r in rows), sum(r["state"] for r in rows)
    text += [line, f"total params: {total:,}   state: {stored:,}   kernels: {backend()}"]
    return "\n".join(text)
