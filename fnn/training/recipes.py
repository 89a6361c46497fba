"""Ready-made pieces for the usual supervised run: :class:`TrainState`, the step
(:func:`supervised_step`), evaluation (:func:`evaluator`, :func:`predict`) and the whole recipe
in one call (:func:`fit`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnn.core import GradFn, Layer, init
from fnn.gradients import value_and_grad
from fnn.keys import Key, fold_in
from fnn.optim import Optimizer, apply_gradients, ema_params
from fnn.optim import stats as optimizer_stats
from fnn.training.data import batches, key_json
from fnn.training.history import EarlyStopping, History
from fnn.training.hyperparameters import hyperparameters
from fnn.training.labels import accuracy as checked_accuracy
from fnn.training.labels import check_labels, check_not_pair, classifies
from fnn.training.loop import train
from fnn.training.steps import EvalFn, StepFn
from fnn.tree import flatten_with_paths
from fnn.validate import batch_size as check_batch_size

__all__ = ["TrainState", "check_params", "evaluator", "fit", "predict", "supervised_step"]


class TrainState(NamedTuple):
    """The usual training state: params, optimiser state, a base key for dropout, step count,
    and the model's own state (batch-norm's running statistics; ``None`` for a model without).

    >>> import fnn
    >>> _, params = fnn.linear(2).init(fnn.key(0), (-1, 3))
    >>> state = fnn.TrainState.create(params, fnn.sgd(0.1), key=fnn.key(1))
    >>> state.step, sorted(state.params), state.model_state
    (0, ['b', 'w'], None)
    """

    params: Any
    opt_state: Any
    key: Key | None = None
    step: int = 0
    model_state: Any = None

    @classmethod
    def create(cls, params: Any, optimizer: Optimizer, key: Key | None = None,
               model_state: Any = None) -> TrainState:
        check_params(params, "TrainState.create")
        return cls(params, optimizer.init(params), key, 0, model_state)


def check_params(params: Any, where: str) -> None:
    """Every params leaf must be a floating-point array: a clear error naming the path.

    >>> import numpy as np, fnn
    >>> fnn.training.check_params({"w": np.zeros(2, np.int64)}, "demo")
    Traceback (most recent call last):
    ...
    TypeError: demo: params/w has dtype int64; params must be floating-point arrays (convert with .astype(np.float32))
    """
    for path, leaf in flatten_with_paths(params).items():
        kind = np.asarray(leaf).dtype.kind
        if kind != "f":
            raise TypeError(f"{where}: params/{path} has dtype {np.asarray(leaf).dtype}; params "
                            "must be floating-point arrays (convert with .astype(np.float32))")


def supervised_step(model: Layer, loss: Any, optimizer: Optimizer, *, threads: int = 1,
                    chunk: int | None = None) -> StepFn:
    """A ready ``step_fn(state: TrainState, (x, y)) -> (state, metrics)``: ``metrics`` are the
    batch's ``"loss"`` and what the optimiser used (:func:`fnn.optim.stats`: the learning rate
    ``"lr"``, and ``"grad_norm"`` before clipping when it clips), so the history records them.
    It is a :class:`fnn.StepFn` declaring its metric names and its fingerprint (model, loss,
    optimiser, threads, chunk), which checkpoints record.

    The step's dropout key is ``fold_in(state.key, state.step)`` when ``state.key`` is set.
    ``threads``: batch shards run at once; ``chunk``: at most that many samples at a time
    (see :func:`fnn.value_and_grad`). A model with state (``model.stateful``, e.g. with
    :func:`fnn.batch_norm`) trains on ``state.model_state`` and the step returns the new one.
    A model of several inputs (:class:`fnn.Input`) takes batches ``((x1, x2), y)``, or the
    flat ``(x1, x2, y)`` of ``fnn.batches(x1, x2, y)``: every array but the last is an input.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(1)
    >>> _, params = model.init(fnn.key(0), (-1, 2))
    >>> step = fnn.supervised_step(model, fnn.mse, fnn.sgd(0.1))
    >>> state, metrics = step(fnn.TrainState.create(params, fnn.sgd(0.1)),
    ...                       (np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)))
    >>> state.step, sorted(metrics), type(step).__name__, step.metric_names
    (1, ['loss', 'lr'], 'StepFn', ('loss',))
    """
    grad_fn = value_and_grad(model, loss, threads=threads, chunk=chunk)
    return gradient_step(model, grad_fn, optimizer,
                         step_fingerprint(model, loss, optimizer, threads, chunk))


def step_fingerprint(model: Layer, loss: Any, optimizer: Optimizer, threads: int,
                     chunk: int | None) -> dict:
    """What a supervised step's checkpoints record of it: model, loss, optimiser and its
    hyper-parameters (lr, betas, decay, ...), threads, chunk."""
    return {"kind": "supervised_step", "model": model.name,
            "loss": getattr(loss, "name", repr(loss)),
            "optimizer": type(optimizer).__name__, "threads": threads, "chunk": chunk,
            "hyperparameters": hyperparameters(optimizer)}


def gradient_step(model: Layer, grad_fn: Any, optimizer: Optimizer,
                  fingerprint: dict) -> StepFn:
    """The step of :func:`supervised_step` around any value-and-grad function ``grad_fn``
    (:func:`fnn.value_and_grad`'s, or one across processes: :mod:`fnn.distributed`)."""
    stateful = model.stateful
    grads_of = grad_fn.fn if type(grad_fn) is GradFn else grad_fn  # one call fewer per step

    def step(state: TrainState, batch: Any) -> tuple[TrainState, dict]:
        x, y = batch if len(batch) == 2 else (tuple(batch[:-1]), batch[-1])
        key = fold_in(state.key, state.step) if state.key is not None else None
        model_state = state.model_state
        if stateful:
            if model_state is None:
                raise ValueError(f"supervised_step: the model {model.name} has state (batch "
                                 "statistics) but the TrainState has none: create it with "
                                 "TrainState.create(params, optimizer, model_state=state), the "
                                 "state being the third value of fnn.init(model, key, shape)")
            value, grads, model_state = grads_of(state.params, x, y, key=key, state=model_state)
        else:
            value, grads = grads_of(state.params, x, y, key=key)
        params, opt_state = apply_gradients(optimizer, grads, state.opt_state, state.params)
        metrics = {"loss": value, **optimizer_stats(opt_state)}  # lr, grad_norm when clipping
        return TrainState(params, opt_state, state.key, state.step + 1, model_state), metrics

    return StepFn(step, metric_names=("loss",), fingerprint=fingerprint)


def predict(model: Layer, params: Any, x: Any, *, state: Any = None,
            batch_size: int = 1024) -> np.ndarray:
    """``model.apply`` over ``x`` in chunks of ``batch_size`` (bounded memory); ``state``: the
    model's state (running statistics), for a model that has one.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(2)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> fnn.predict(model, params, np.ones((5, 3), np.float32), batch_size=2).shape
    (5, 2)
    """
    batch_size = check_batch_size("predict", batch_size)
    if len(x) == 0 or (isinstance(x, tuple) and len(x[0]) == 0):
        raise ValueError("predict: x is empty")
    if model.stateful and state is None:
        raise ValueError(f"predict: the model {model.name} has state (running statistics): "
                         "pass state= (TrainState.model_state, or init's third value)")
    extra = {"state": state} if model.stateful else {}
    rows = len(x[0]) if isinstance(x, tuple) else len(x)  # a tuple: a model's several inputs
    return np.concatenate(
        [model.apply(params, _rows_of(x, i, i + batch_size), **extra)
         for i in range(0, rows, batch_size)])


def _rows_of(x: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``x``, or of each input of a tuple ``x``."""
    return tuple(a[start:stop] for a in x) if isinstance(x, tuple) else x[start:stop]


def evaluator(model: Layer, x: Any, y: Any, *, loss: Any = None, accuracy: bool = False,
              batch_size: int = 1024, metrics: dict[str, Callable] | None = None,
              ema: bool = False) -> EvalFn:
    """``eval_fn(state) -> {"loss": ..., "accuracy": ...}`` on held-out ``(x, y)``: a
    :class:`fnn.EvalFn` declaring its metric names (and its fingerprint: rows, loss, accuracy),
    so :func:`fnn.train` checks early stopping's monitor without calling it.

    ``state`` may be a :class:`TrainState` or a params tree (for a model with state, a
    ``(params, model_state)`` pair). The set is checked here (not empty, ``x`` and ``y`` of
    one length), so a bad one fails before training starts. ``metrics``: more
    ``{name: fn(pred, y) -> float}`` (``fnn.metrics.perplexity``, ``bits_per_character``).
    ``ema=True`` evaluates a TrainState's moving average of the weights
    (:func:`fnn.optim.with_ema`) instead of its params.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(2)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> eval_fn = fnn.evaluator(model, np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]),
    ...                         loss=fnn.cross_entropy, accuracy=True)
    >>> sorted(eval_fn(params)), eval_fn.metric_names
    (['accuracy', 'loss'], ('loss', 'accuracy'))
    """
    n_x, n_y = (len(x[0]) if isinstance(x, tuple) else len(x)), len(y)
    if n_x == 0:
        raise ValueError("evaluator: the evaluation set is empty (0 rows)")
    if n_x != n_y:
        raise ValueError(f"evaluator: x has {n_x} rows but y has {n_y}")
    extra = dict(metrics or {})
    if loss is None and not accuracy and not extra:
        raise ValueError("evaluator: nothing to measure; pass loss=, accuracy=True or metrics=")
    batch_size = check_batch_size("evaluator", batch_size)
    if classifies(loss, accuracy):
        check_labels("evaluator", model, x, y)  # here, not after the first epoch

    def eval_fn(state: Any) -> dict:
        if isinstance(state, TrainState):
            params, model_state = state.params, state.model_state
            if ema:
                params = _ema(state)
        elif ema:
            raise ValueError("evaluator: ema=True evaluates a TrainState's moving average; got "
                             f"a {type(state).__name__}")
        elif model.stateful:
            if not (isinstance(state, tuple) and len(state) == 2):
                raise ValueError(f"evaluator: the model {model.name} has state; evaluate a "
                                 "TrainState or a (params, model_state) pair")
            params, model_state = state
        else:
            params, model_state = state, None
        pred = predict(model, params, x, state=model_state, batch_size=batch_size)
        out = {}
        if loss is not None:
            out["loss"] = loss.value(pred, y)
        if accuracy:
            out["accuracy"] = checked_accuracy("evaluator", pred, y)  # NaN rows: NaN
        out.update({name: float(fn(pred, y)) for name, fn in extra.items()})
        return out

    names = ("loss",) * (loss is not None) + ("accuracy",) * bool(accuracy) + tuple(extra)
    fingerprint = {"rows": n_x, "loss": getattr(loss, "name", None), "accuracy": bool(accuracy),
                   **({"metrics": sorted(extra)} if extra else {}), **({"ema": True} if ema else {})}
    return EvalFn(eval_fn, metric_names=names, fingerprint=fingerprint)


def _ema(state: TrainState) -> Any:
    """The moving average of the weights kept in ``state.opt_state`` (fnn.optim.with_ema)."""
    averaged = ema_params(state.opt_state)
    if averaged is None:
        raise ValueError("evaluator: ema=True but the optimiser keeps no moving average of the "
                         "weights; wrap it: fnn.optim.with_ema(optimizer, decay)")
    return averaged


def fit(
    model: Layer,
    loss: Any,
    optimizer: Optimizer,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int = 32,
    validation: tuple | None = None,
    accuracy: bool = False,
    early_stopping: EarlyStopping | None = None,
    seed: int | Key = 0,
    params: Any = None,
    model_state: Any = None,
    dropout_key: bool = False,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    drop_last: bool = False,
    threads: int = 1,
    checkpoint: str | None = None,
    checkpoint_every: int | str = "epoch",
) -> tuple[Any, History]:
    """The usual recipe in one call: init (unless ``params`` is given), shuffle with ``seed``,
    train with ``loss``/``optimizer``, evaluate on ``validation=(x_val, y_val)`` every epoch
    (its loss, and accuracy with ``accuracy=True``), optional early stopping.
    Returns ``(params, history)``; for a model with state (``model.stateful``: batch-norm),
    ``((params, model_state), history)``.

    ``drop_last=True`` skips each epoch's last partial batch: when it holds only a few rows
    (6561 rows at batch 32 leave one), its noisy step at a large learning rate can spoil the
    end-of-epoch evaluation and with it early stopping. ``threads=2`` runs each batch as two
    shards on two cores (see :func:`fnn.value_and_grad`). ``checkpoint=DIR`` makes the run
    resumable (see :func:`train`).

    >>> import fnn
    >>> d = fnn.datasets.digits()
    >>> model = fnn.serial(fnn.linear(32), fnn.relu(), fnn.linear(10))
    >>> params, hist = fnn.fit(model, fnn.cross_entropy, fnn.adam(1e-2), d.x_train, d.y_train,
    ...                        epochs=3, validation=(d.x_test, d.y_test), accuracy=True,
    ...                        progress=False)
    >>> hist.eval["accuracy"][-1] > 0.8
    True
    """
    base = _seed_key(seed)
    init_key, data_key, drop_key = fold_in(base, 0), fold_in(base, 1), fold_in(base, 2)
    check_not_pair("fit", model, params)
    if classifies(loss):
        check_labels("fit", model, x, y)  # before the first epoch
    if params is None or (model.stateful and model_state is None):
        _, fresh, fresh_state = init(model, init_key, (-1, *np.shape(x)[1:]))
        params = fresh if params is None else params
        model_state = fresh_state if model_state is None else model_state
    eval_fn = None
    if validation is not None:
        eval_fn = evaluator(model, *validation, loss=loss, accuracy=accuracy)
    state, history = train(
        supervised_step(model, loss, optimizer, threads=threads),
        batches(x, y, batch_size=batch_size, rng=data_key, drop_last=drop_last),
        TrainState.create(params, optimizer, drop_key if dropout_key else None,
                          model_state if model.stateful else None),
        epochs=epochs, eval_fn=eval_fn, early_stopping=early_stopping, callbacks=callbacks,
        progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        config={"seed": key_json(base), "dropout_key": dropout_key},
    )
    if model.stateful:
        return (state.params, state.model_state), history
    return state.params, history


def _seed_key(seed: int | Key) -> Key:
    """``fit``'s seed: an int, or a key (e.g. the one ``fnn.sweep`` hands a trial) used as is,
    so ``fit(seed=fnn.key(s))`` is ``fit(seed=s)``."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
