"""Mini-batches, a stateless training loop, early stopping, evaluation and a live loss plot.

``state, history = fnn.train(step_fn, data, state, epochs=...)`` folds a pure
``step_fn(state, batch) -> (state, metrics)`` over the batches of every epoch. The loop owns
shuffling (through ``data``), evaluation, early stopping, callbacks, the progress bar and the
divergence guard; it returns the final state and a :class:`History`. Nothing global changes.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from fnn.core import Key, Layer, fold_in, value_and_grad
from fnn.optim import Optimizer, apply_updates


class Batches:
    """Re-iterable mini-batches over aligned arrays; a fresh permutation every epoch.

    ``epoch(i)`` yields the batches of epoch ``i`` (deterministic from ``rng`` and ``i``);
    iterating the object itself walks epochs 0, 1, 2, ... The last partial batch is kept
    unless ``drop_last``.

    >>> import numpy as np, fnn
    >>> data = fnn.batches(np.arange(10.0), np.arange(10), batch_size=4, rng=0)
    >>> len(data), [len(x) for x, y in data.epoch(0)]
    (3, [4, 4, 2])
    """

    def __init__(self, *arrays, batch_size: int, shuffle: bool = True, rng: int | Key = 0,
                 drop_last: bool = False):
        if not arrays:
            raise ValueError("batches: pass at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        sizes = [len(a) if a.ndim else -1 for a in arrays]
        if len(set(sizes)) != 1:
            raise ValueError(f"batches: arrays must have the same length, got lengths {sizes}")
        if sizes[0] <= 0:
            raise ValueError("batches: the dataset is empty (0 samples)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
        self.arrays, self.n, self.batch_size = arrays, sizes[0], int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.key = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        self._next_epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, i: int) -> Iterable[tuple]:
        arrays = self.arrays
        if self.shuffle:  # one gather per epoch, then cheap slices (views)
            perm = np.random.default_rng(fold_in(self.key, i)).permutation(self.n)
            arrays = tuple(a[perm] for a in arrays)
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.n), self.batch_size):
            yield tuple(a[start:start + self.batch_size] for a in arrays)

    def __iter__(self):
        i, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return iter(self.epoch(i))


def batches(*arrays, batch_size: int, shuffle: bool = True, rng: int | Key = 0,
            drop_last: bool = False) -> Batches:
    """Mini-batches of aligned arrays (see :class:`Batches`)."""
    return Batches(*arrays, batch_size=batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last)


@dataclass
class History:
    """What :func:`train` saw: per-epoch means of the step metrics (``train``), the eval
    metrics (``eval``), seconds per epoch, and why and where it stopped."""

    train: dict[str, list[float]] = field(default_factory=dict)
    eval: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str = "completed"
    message: str = ""

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def log(self, section: dict[str, list[float]], metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            section.setdefault(k, []).append(float(v))


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` names an eval metric (a train metric when there is no ``eval_fn``); ``mode`` is
    ``"min"`` (losses) or ``"max"`` (accuracies). With ``restore_best`` the returned state is the
    best epoch's."""

    monitor: str = "loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self):
        if self.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {self.patience}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


def _epoch_batches(data, epoch: int, epochs: int):
    if hasattr(data, "epoch"):
        return data.epoch(epoch)
    if iter(data) is data and epochs > 1:
        raise TypeError("train: data is a one-shot iterator; pass fnn.batches(...) or a list")
    return data


def _batch_len(batch) -> int:
    """Samples in a batch (weights the epoch means); 1 when it cannot tell."""
    try:
        return len(batch[0] if isinstance(batch, (tuple, list)) else batch)
    except TypeError:
        return 1


def _nonfinite(metrics: dict) -> str | None:
    for k, v in metrics.items():
        if isinstance(v, (float, int, np.floating)) and not math.isfinite(v):
            return f"{k}={v}"
    return None


def train(
    step_fn: Callable[[Any, Any], tuple[Any, dict]],
    data,
    state,
    *,
    epochs: int,
    eval_fn: Callable[[Any], dict] | None = None,
    early_stopping: EarlyStopping | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
) -> tuple[Any, History]:
    """Run ``epochs`` passes of ``step_fn`` over ``data``; return ``(state, history)``.

    * ``data``: :func:`batches` (reshuffled per epoch) or any re-iterable of batches.
    * ``eval_fn(state) -> {name: value}`` runs after every epoch (e.g. :func:`evaluator`).
    * ``early_stopping``: an :class:`EarlyStopping`.
    * ``callbacks``: ``cb(epoch, state, history)`` after every epoch; returning ``True`` stops.
    * Divergence guard: a non-finite metric stops the loop, warns, and returns the last state
      whose metrics were finite. Ctrl-C stops it too and returns the last completed step's state.

    >>> import numpy as np, fnn
    >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    >>> y = x @ np.array([[1.0], [2.0], [-1.0]], np.float32)
    >>> model = fnn.linear(1)
    >>> _, params = model.init(fnn.key(0), x.shape)
    >>> step = fnn.supervised_step(model, fnn.mse, fnn.sgd(0.05))
    >>> state = fnn.TrainState.create(params, fnn.sgd(0.05))
    >>> state, hist = fnn.train(step, fnn.batches(x, y, batch_size=16), state, epochs=30,
    ...                         progress=False)
    >>> hist.train["loss"][-1] < 1e-3
    True
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"train: epochs must be a non-negative int, got {epochs!r}")
    history = History()
    best_value, best_state, wait = None, state, 0
    try:
        steps_per_epoch = len(data)
    except TypeError:
        steps_per_epoch = None
    if steps_per_epoch == 0:
        raise ValueError("train: data has no batches (empty dataset)")
    bar = tqdm(
        total=steps_per_epoch * epochs if steps_per_epoch else None,
        disable=not progress, unit="step", dynamic_ncols=True, file=sys.stderr,
    )
    try:
        for epoch in range(epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            count = steps = 0
            for batch in _epoch_batches(data, epoch, epochs):
                new_state, metrics = step_fn(state, batch)
                bad = _nonfinite(metrics)
                if bad:
                    history.stop_reason = "diverged"
                    history.message = (
                        f"training diverged at epoch {epoch + 1}, step {steps + 1}: {bad}; "
                        "returning the last state with finite metrics (lower the learning rate?)"
                    )
                    warnings.warn(history.message, RuntimeWarning, stacklevel=2)
                    return state, history
                state = new_state
                n = _batch_len(batch)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * n
                count += n
                steps += 1
                bar.update(1)
            if steps == 0:
                raise ValueError("train: data yielded no batches (empty dataset)")
            history.seconds.append(time.perf_counter() - t0)
            history.log(history.train, {k: v / count for k, v in sums.items()})
            if eval_fn is not None:
                history.log(history.eval, eval_fn(state))
            bar.set_postfix(_postfix(history), refresh=False)

            stop = any(cb(epoch, state, history) is True for cb in callbacks)
            if stop:
                history.stop_reason = "callback"
            if early_stopping is not None:
                source = history.eval if eval_fn is not None else history.train
                if early_stopping.monitor not in source:
                    raise KeyError(
                        f"EarlyStopping: no metric {early_stopping.monitor!r}; "
                        f"have {sorted(source)}"
                    )
                value = source[early_stopping.monitor][-1]
                if early_stopping.improved(value, best_value):
                    best_value, best_state, wait = value, state, 0
                    history.best_epoch = epoch
                else:
                    wait += 1
                    if wait >= early_stopping.patience:
                        history.stop_reason = "early_stopping"
                        stop = True
            if stop:
                break
    except KeyboardInterrupt:
        history.stop_reason = "interrupted"
        history.message = "interrupted: returning the state of the last completed step"
        warnings.warn(history.message, RuntimeWarning, stacklevel=2)
    finally:
        bar.close()
    if early_stopping is not None and early_stopping.restore_best and history.best_epoch is not None:
        return best_state, history
    return state, history


def _postfix(history: History) -> dict[str, str]:
    out = {k: f"{v[-1]:.4g}" for k, v in history.train.items()}
    out.update({f"eval_{k}": f"{v[-1]:.4g}" for k, v in history.eval.items()})
    return out


class TrainState(NamedTuple):
    """The usual training state: params, optimiser state, a base key for dropout, step count."""

    params: Any
    opt_state: Any
    key: Key | None = None
    step: int = 0

    @classmethod
    def create(cls, params, optimizer: Optimizer, key: Key | None = None) -> TrainState:
        return cls(params, optimizer.init(params), key, 0)


def supervised_step(model: Layer, loss, optimizer: Optimizer, *, threads: int = 1,
                    chunk: int | None = None) -> Callable:
    """A ready ``step_fn(state: TrainState, (x, y)) -> (state, {"loss": value})``.

    The step's dropout key is ``fold_in(state.key, state.step)`` when ``state.key`` is set.
    ``threads``: batch shards run at once; ``chunk``: at most that many samples at a time
    (see :func:`fnn.value_and_grad`)."""
    grad_fn = value_and_grad(model, loss, threads=threads, chunk=chunk)

    def step(state: TrainState, batch):
        x, y = batch
        key = fold_in(state.key, state.step) if state.key is not None else None
        value, grads = grad_fn(state.params, x, y, key=key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.key, state.step + 1), {"loss": value}

    return step


def predict(model: Layer, params, x, *, batch_size: int = 1024) -> np.ndarray:
    """``model.apply`` over ``x`` in chunks of ``batch_size`` (bounded memory)."""
    if len(x) == 0:
        raise ValueError("predict: x is empty")
    return np.concatenate(
        [model.apply(params, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    )


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the integer label (or the one-hot's arg-max)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=-1)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def evaluator(model: Layer, x, y, *, loss=None, accuracy: bool = False,
              batch_size: int = 1024) -> Callable[[Any], dict]:
    """``eval_fn(state) -> {"loss": ..., "accuracy": ...}`` on held-out ``(x, y)``.

    ``state`` may be a :class:`TrainState` or a params tree."""
    score = globals()["accuracy"]

    def eval_fn(state) -> dict:
        params = state.params if isinstance(state, TrainState) else state
        pred = predict(model, params, x, batch_size=batch_size)
        out = {}
        if loss is not None:
            out["loss"] = loss.value(pred, y)
        if accuracy:
            out["accuracy"] = score(pred, y)
        return out

    return eval_fn


def fit(
    model: Layer,
    loss,
    optimizer: Optimizer,
    x,
    y,
    *,
    epochs: int,
    batch_size: int = 32,
    validation: tuple | None = None,
    accuracy: bool = False,
    early_stopping: EarlyStopping | None = None,
    seed: int = 0,
    params=None,
    dropout_key: bool = False,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    drop_last: bool = False,
    threads: int = 1,
) -> tuple[Any, History]:
    """The usual recipe in one call: init (unless ``params`` is given), shuffle with ``seed``,
    train with ``loss``/``optimizer``, evaluate on ``validation=(x_val, y_val)`` every epoch
    (its loss, and accuracy with ``accuracy=True``), optional early stopping.
    Returns ``(params, history)``.

    ``drop_last=True`` skips each epoch's last partial batch: when it holds only a few rows
    (6561 rows at batch 32 leave one), its noisy step at a large learning rate can spoil the
    end-of-epoch evaluation and with it early stopping. ``threads=2`` runs each batch as two
    shards on two cores (see :func:`fnn.value_and_grad`).

    >>> import fnn
    >>> d = fnn.datasets.digits()
    >>> model = fnn.serial(fnn.linear(32), fnn.relu(), fnn.linear(10))
    >>> params, hist = fnn.fit(model, fnn.cross_entropy, fnn.adam(1e-2), d.x_train, d.y_train,
    ...                        epochs=3, validation=(d.x_test, d.y_test), accuracy=True,
    ...                        progress=False)
    >>> hist.eval["accuracy"][-1] > 0.8
    True
    """
    init_key, data_key, drop_key = fold_in(_seed_key(seed), 0), fold_in(_seed_key(seed), 1), \
        fold_in(_seed_key(seed), 2)
    if params is None:
        _, params = model.init(init_key, (-1, *np.shape(x)[1:]))
    eval_fn = None
    if validation is not None:
        eval_fn = evaluator(model, *validation, loss=loss, accuracy=accuracy)
    state, history = train(
        supervised_step(model, loss, optimizer, threads=threads),
        batches(x, y, batch_size=batch_size, rng=data_key, drop_last=drop_last),
        TrainState.create(params, optimizer, drop_key if dropout_key else None),
        epochs=epochs, eval_fn=eval_fn, early_stopping=early_stopping, callbacks=callbacks,
        progress=progress,
    )
    return state.params, history


def _seed_key(seed: int) -> Key:
    return np.random.SeedSequence(seed)
