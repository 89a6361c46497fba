"""Check a layer's or a loss's hand-written gradient against central finite differences.

Everything is cast to float64. For a layer, the scalar checked is ``<vjp(params, x)[0], r>``
with a fixed random cotangent ``r``; for a loss it is ``loss.value(x, y)``. The forward pass used
for the differences is ``vjp``'s (with the same ``key``), so dropout masks stay fixed.

The error of a leaf is ``max|analytic - numeric| / scale``, ``scale`` being the leaf's largest
entry (``max(max|analytic|, max|numeric|)``) but at least ``1e-3`` times the largest gradient
entry of the whole check: relative to the leaf, robust to entries that are nearly zero, and to
leaves whose true gradient is zero (a bias before a normalisation), where the differences'
rounding noise (~1e-10) would otherwise read as an error of 1.

>>> import numpy as np, fnn
>>> layer = fnn.linear(3)
>>> _, params = layer.init(fnn.key(0), (-1, 4))
>>> errors = fnn.gradcheck(layer, params, np.ones((2, 4)))
>>> max(errors.values()) < 1e-6
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optree

from fnn.core import Layer
from fnn.losses import Loss
from fnn.tree import path_str


def _f64(tree, keep_ints: bool = False):
    """Every leaf as float64; with ``keep_ints``, integer and bool arrays stay as they are
    (token ids, masks: inputs a layer declares, never differentiated)."""
    def cast(a):
        if keep_ints and np.asarray(a).dtype.kind in "iub":
            return np.asarray(a)
        return np.array(a, dtype=np.float64)

    return optree.tree_map(cast, tree)


def _input_pairs(x: Any, dx: Any, scalar_of, eps: float) -> dict:
    """:func:`_numeric_pairs` of the float parts of an input (``"x"``, or ``"x/<i>"`` for
    a tuple); integer and bool parts (token ids, masks) are skipped, their ``dx`` None."""
    if not isinstance(x, tuple):
        if x.dtype.kind != "f":
            return {}
        return _numeric_pairs(x, dx, scalar_of, eps, lambda path: "x")
    if dx is None or len(dx) != len(x):
        raise AssertionError(f"gradcheck: dx should be a tuple of {len(x)}, got {dx!r:.80}")
    pairs = {}
    for i, (xi, dxi) in enumerate(zip(x, dx)):
        if xi.dtype.kind != "f":
            if dxi is not None:
                raise AssertionError(f"gradcheck: input {i} is {xi.dtype}: its dx must be None")
            continue

        def part(v, i=i):
            return scalar_of(tuple(v if j == i else a for j, a in enumerate(x)))

        pairs.update(_numeric_pairs(xi, dxi, part, eps, lambda path, i=i: f"x/{i}"))
    return pairs


def _scale(*arrays: np.ndarray) -> float:
    return max(float(np.abs(a).max(initial=0.0)) for a in arrays)


def _relative(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Each leaf's error (module doc) from its ``(analytic, numeric)`` pair."""
    floor = max([_scale(*pair) for pair in pairs.values()] + [1e-12]) * 1e-3
    return {name: float(np.abs(a - n).max(initial=0.0) / max(_scale(a, n), floor))
            for name, (a, n) in pairs.items()}


def gradcheck(
    fn: Layer | Loss,
    params: Any = None,
    x: Any = None,
    y: Any = None,
    *,
    key=None,
    state: Any = None,
    eps: float = 1e-6,
    seed: int = 0,
) -> dict[str, float]:
    """Relative error per leaf, keyed ``"params/<path>"``, ``"x"`` (or ``"x/<i>"`` for tuple
    inputs) — for a layer ``gradcheck(layer, params, x)``, for a loss
    ``gradcheck(loss, None, y_pred, y_true)``. Also ``"no_dx/<path>"``: the params gradient
    of ``vjp(..., input_grad=False)`` (whose pullback must return ``dx = None``) against
    ``vjp``'s. A layer with state (``layer.stateful``) needs ``state=`` (the training pass's
    batch statistics are what is differentiated).

    Shapes: ``x`` is whatever the layer takes (``(N, ...)``, or a tuple for multi-input
    layers); ``params`` the layer's tree. Errors below ~1e-6 mean the pullback is right;
    a wrong pullback gives errors of order 1.

    >>> import numpy as np, fnn
    >>> conv = fnn.conv1d(2, 3, padding="same")
    >>> _, params = conv.init(fnn.key(0), (-1, 8, 1))
    >>> x = np.random.default_rng(0).normal(size=(2, 8, 1))
    >>> errors = fnn.gradcheck(conv, params, x)
    >>> sorted(errors)
    ['no_dx/w', 'params/w', 'x']
    >>> max(errors.values()) < 1e-6
    True
    >>> loss_errors = fnn.gradcheck(fnn.cross_entropy, None, x[:, :, 0], np.array([1, 3]))
    >>> loss_errors["x"] < 1e-6
    True
    """
    declared = isinstance(fn, Layer) and (bool(fn.inputs) or isinstance(x, tuple))
    x = _f64(x, keep_ints=declared)
    if isinstance(fn, Loss):
        y64 = np.asarray(y) if np.asarray(y).dtype.kind in "iu" else _f64(y)
        _, analytic_x = fn.vjp(x, y64)
        return _relative({"x": (analytic_x, _numeric(lambda xx: fn.value(xx, y64), x, eps))})
    if not isinstance(fn, Layer):
        raise TypeError(f"gradcheck: expected an fnn.Layer or loss, got {type(fn).__name__}")
    params = _f64(params if params is not None else {})
    if fn.stateful and state is None:
        raise TypeError(f"gradcheck: {fn.name} has state; pass state= (the third value of init)")
    extra = {"state": _f64(state)} if fn.stateful else {}

    def vjp(p, xx, input_grad=True):
        return fn.vjp(p, xx, key=key, input_grad=input_grad, **extra)[:2]

    out, pullback = vjp(params, x)
    rng = np.random.default_rng(seed)
    cotangent = optree.tree_map(lambda o: rng.standard_normal(np.shape(o)), out)
    dparams, dx = pullback(cotangent)

    def scalar(p, xx):
        o, _ = vjp(p, xx)
        return sum(float(np.vdot(a, r)) for a, r in zip(optree.tree_leaves(o),
                                                          optree.tree_leaves(cotangent)))

    paths = optree.tree_flatten_with_path(params)[0]
    dleaves = optree.tree_leaves(dparams)
    if len(dleaves) != len(paths):
        raise AssertionError(f"gradcheck: dparams has {len(dleaves)} leaves, params {len(paths)}")
    pairs = _numeric_pairs(params, dparams, lambda p: scalar(p, x), eps,
                           lambda path: "params/" + path_str(path))
    if declared:
        pairs.update(_input_pairs(x, dx, lambda xx: scalar(params, xx), eps))
    else:
        pairs.update(_numeric_pairs(x, dx, lambda xx: scalar(params, xx), eps,
                                    lambda path: "x" + ("/" + path_str(path) if path else "")))
    _, params_only = vjp(params, x, input_grad=False)  # skipping dx changes no params gradient
    param_grads, no_dx = params_only(cotangent)
    if no_dx is not None:
        raise AssertionError(f"gradcheck: {fn.name}'s pullback returned a dx with input_grad=False")
    for path, grad, same in zip(paths, dleaves, optree.tree_leaves(param_grads)):
        pairs["no_dx/" + path_str(path)] = (np.asarray(same), np.asarray(grad))
    return _relative(pairs)


def assert_gradients_close(fn: Layer | Loss, params: Any = None, x: Any = None, y: Any = None,
                           *, tol: float = 1e-6, key=None, state: Any = None,
                           eps: float = 1e-6, seed: int = 0) -> dict[str, float]:
    """:func:`gradcheck` as a pass/fail: an ``AssertionError`` naming every leaf whose relative
    error exceeds ``tol`` (with the error), else the errors. ``1e-6`` suits smooth layers in
    float64; kinks (relu at 0, max-pool ties) need inputs away from them, not a looser ``tol``.

    >>> import numpy as np, fnn
    >>> layer = fnn.linear(3)
    >>> _, params = layer.init(fnn.key(0), (-1, 4))
    >>> errors = fnn.assert_gradients_close(layer, params, np.ones((2, 4)))
    >>> sorted(errors)
    ['no_dx/b', 'no_dx/w', 'params/b', 'params/w', 'x']
    """
    errors = gradcheck(fn, params, x, y, key=key, state=state, eps=eps, seed=seed)
    bad = {k: v for k, v in errors.items() if not v <= tol}
    if bad:
        name = getattr(fn, "name", type(fn).__name__)
        raise AssertionError(
            f"{name}: the hand-written gradient differs from central differences (relative "
            f"error > {tol:g}) at " + ", ".join(f"{k} ({v:.2e})" for k, v in sorted(bad.items())))
    return errors


def _numeric_pairs(tree: Any, grads: Any, scalar_of, eps: float,
                   name) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name(path): (analytic, numeric)}`` for every leaf of ``tree``: ``grads``' leaf
    against central differences of ``scalar_of(tree with that leaf changed)``."""
    paths, leaves, treedef = optree.tree_flatten_with_path(tree)
    pairs = {}
    for i, (path, leaf, grad) in enumerate(zip(paths, leaves, optree.tree_leaves(grads))):
        def f_leaf(v, i=i):
            new = list(leaves)
            new[i] = v
            return scalar_of(optree.tree_unflatten(treedef, new))

        pairs[name(path)] = (np.asarray(grad), _numeric(f_leaf, leaf, eps))
    return pairs


def _numeric(f, at: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of scalar ``f`` at ``at`` (float64), one entry at a time."""
    grad = np.zeros_like(at)
    flat_grad = grad.reshape(-1)
    for i in range(at.size):
        plus, minus = at.copy(), at.copy()
        plus.reshape(-1)[i] += eps
        minus.reshape(-1)[i] -= eps
        flat_grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad
