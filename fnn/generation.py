"""Text generation: :func:`generate` samples token after token from a model mapping ids
``(N, T)`` to logits ``(N, T, V)``.

With ``cache=True`` (the default) the model runs one position at a time through the
:class:`fnn.core.Decoder` s its layers declare: recurrent layers carry their state, causal
attention its key/value cache, position embeddings their position, so each new token costs
O(T) (attention over the T tokens so far), not a forward pass over the whole context.
Position-wise layers (:data:`POSITIONWISE` kinds: linear, activations, norms, embeddings,
dropout) step with their ``apply``; :func:`fnn.serial` and :func:`fnn.residual` step their
children. ``cache=False`` reruns the full forward pass on the whole sequence for every token
(the baseline, same tokens).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn.checks import LayerError
from fnn.combinators import child_names
from fnn.core import Decoder, Layer
from fnn.keys import Key, fold_in
from fnn.tree import tree_leaves
from fnn.validate import integer, non_negative, positive_int

POSITIONWISE = frozenset({
    "linear", "layer_norm", "dropout", "embedding", "identity", "relu", "tanh", "gelu",
    "sigmoid", "stable_sigmoid", "softmax", "log_softmax", "elu", "leaky_relu", "softplus",
    "sine", "sinc", "gaussian"})


def _positionwise(layer: Layer) -> Decoder:
    return Decoder(lambda params, n, dtype: None,
                   lambda params, x_t, carry: (layer.apply(params, x_t), carry))


def _serial(layers: tuple, path: str) -> Decoder:
    names = child_names(layers)
    steps = [stepper(child, f"{path}/{name}" if path else name)
             for name, child in zip(names, layers)]

    def start(params, n, dtype):
        return tuple(s.start(params[name], n, dtype) for s, name in zip(steps, names))

    def step(params, x_t, carry):
        out = []
        for s, name, c in zip(steps, names, carry):
            x_t, c = s.step(params[name], x_t, c)
            out.append(c)
        return x_t, tuple(out)

    return Decoder(start, step)


def stepper(layer: Layer, path: str = "") -> Decoder:
    """The :class:`fnn.core.Decoder` running ``layer`` one position at a time: its own
    ``decode``, its children's for ``serial``/``residual``, ``apply`` for position-wise
    kinds; a :class:`fnn.LayerError` naming the layer otherwise.

    >>> import fnn
    >>> from fnn.generation import stepper
    >>> model = fnn.serial(fnn.embedding(5, 4), fnn.lstm(8), fnn.linear(5))
    >>> dec = stepper(model)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> import numpy as np
    >>> y, carry = dec.step(params, np.array([[1]]), dec.start(params, 1, np.float32))
    >>> y.shape
    (1, 1, 5)
    """
    if layer.decode is not None:
        return layer.decode
    if layer.flow == "serial":
        return _serial(layer.children, path)
    if layer.flow == "residual":
        body = _serial(layer.children, path)
        return Decoder(body.start, lambda params, x_t, carry: _plus(x_t, body.step(
            params, x_t, carry)))
    if not layer.children and layer.kind in POSITIONWISE:
        return _positionwise(layer)
    where = f"[{path}] " if path else ""
    raise LayerError(f"{where}{layer!r}: cannot run one position at a time (generation "
                     "with cache=True): it declares no decode= (fnn.core.Decoder) and is "
                     "not position-wise; use cache=False")


def _plus(x_t, out):
    y, carry = out
    return x_t + y, carry


def _float_dtype(params: Any) -> np.dtype:
    for leaf in tree_leaves(params):
        if np.asarray(leaf).dtype.kind == "f":
            return np.asarray(leaf).dtype
    return np.dtype(np.float32)


def sample(logits: np.ndarray, key: Key, temperature: float = 1.0,
           top_k: int | None = None) -> np.ndarray:
    """One id per row of ``logits (N, V)``: drawn from ``softmax(logits / temperature)``
    restricted to the ``top_k`` largest (all: None); ``temperature=0``: the arg-max.

    >>> import numpy as np, fnn
    >>> from fnn.generation import sample
    >>> sample(np.array([[0.0, 5.0, 1.0]]), fnn.key(0), temperature=0)
    array([1])
    >>> sample(np.array([[0.0, 5.0, 1.0]]), fnn.key(0), top_k=1)
    array([1])
    """
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = np.random.default_rng(key).random(len(z))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), z.shape[-1] - 1)


def generate(model: Layer, params: Any, prompt_ids: Any, steps: int, key: Key, *,
             temperature: float = 1.0, top_k: int | None = None,
             cache: bool = True) -> np.ndarray:
    """``prompt_ids (N, T0)`` (or ``(T0,)``) followed by ``steps`` sampled ids:
    ``(N, T0 + steps)`` (``(T0 + steps,)`` for a 1-D prompt). ``model`` maps ids ``(N, T)``
    to logits ``(N, T, V)``; token ``i`` is drawn by :func:`sample` with
    ``fold_in(key, i)``, so ``cache=True`` (one position at a time, module doc) and
    ``cache=False`` (the full forward for every token) give the same tokens.

    >>> import numpy as np, fnn
    >>> model = fnn.serial(fnn.embedding(5, 8), fnn.gru(8), fnn.linear(5))
    >>> _, params = model.init(fnn.key(0), (-1, 4))
    >>> out = fnn.generate(model, params, np.array([1, 2]), 6, fnn.key(1))
    >>> out.shape, bool((out == fnn.generate(model, params, np.array([1, 2]), 6, fnn.key(1),
    ...                                      cache=False)).all())
    ((8,), True)
    """
    steps = integer("generate", "steps", steps, minimum=0)
    temperature = non_negative("generate", "temperature", temperature)
    if top_k is not None:
        top_k = positive_int("generate", "top_k", top_k)
    ids = np.asarray(prompt_ids)
    flat = ids.ndim == 1
    ids = ids[None] if flat else ids
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[1] == 0:
        raise ValueError(f"generate: prompt_ids must be a non-empty integer array (N, T0), "
                         f"got {ids.dtype} {ids.shape}")
    out = np.empty((ids.shape[0], ids.shape[1] + steps), dtype=np.int64)
    out[:, :ids.shape[1]] = ids
    if cache:
        _cached(model, params, out, ids.shape[1], steps, key, temperature, top_k)
    else:
        for i in range(steps):
            t = ids.shape[1] + i
            logits = model.apply(params, out[:, :t])[:, -1]
            out[:, t] = sample(logits, fold_in(key, i), temperature, top_k)
    return out[0] if flat else out


def _cached(model: Layer, params: Any, out: np.ndarray, start: int, steps: int, key: Key,
            temperature: float, top_k: int | None) -> None:
    """:func:`generate` one position at a time, writing the ids into ``out``."""
    dec = stepper(model)
    carry = dec.start(params, out.shape[0], _float_dtype(params))
    logits: Any = None
    for t in range(start):  # the prompt
        logits, carry = dec.step(params, out[:, t:t + 1], carry)
    for i in range(steps):
        t = start + i
        out[:, t] = sample(logits[:, -1], fold_in(key, i), temperature, top_k)
        if i + 1 < steps:
            logits, carry = dec.step(params, out[:, t:t + 1], carry)


__all__ = ["POSITIONWISE", "generate", "sample", "stepper"]
