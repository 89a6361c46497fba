"""Mini-batches, a fault-proof training loop with exact resume, early stopping, evaluation.

``state, history = fnn.train(step_fn, data, state, epochs=...)`` folds a pure
``step_fn(state, batch) -> (state, metrics)`` over the batches of every epoch. The loop owns
shuffling (through ``data``), evaluation, early stopping, callbacks, the progress bar, the
divergence guard and checkpoints; it returns the final state and a :class:`History`. Nothing
global changes.

Nothing is lost on failure: an exception raised by a step, a batch, ``eval_fn`` or a callback
stops the loop and is re-raised as :class:`TrainingError`, which carries the last good state and
the history (after writing a checkpoint when checkpointing is on); Ctrl-C returns them. With
``checkpoint=DIR`` re-running the same script continues where it stopped, mid-epoch, with the
same result as a run that was never interrupted (see :mod:`fnn.checkpoint`).

The rooms: ``data`` (:class:`Batches`), ``steps`` (:class:`StepFn`, :class:`EvalFn`: what a
step or eval function declares), ``history`` (:class:`History`, :class:`EarlyStopping`),
``loop`` (:func:`train`), ``run`` (one run's record and how it ends: :class:`TrainingError`),
``resume`` (fingerprint, checkpoint cadence, progress), ``recipes`` (:class:`TrainState`,
:func:`supervised_step`, :func:`evaluator`, :func:`predict`, :func:`fit`).
"""

from fnn.metrics import accuracy
from fnn.training.data import Batches, batches
from fnn.training.history import EarlyStopping, History
from fnn.training.loop import train
from fnn.training.recipes import (
    TrainState,
    check_params,
    evaluator,
    fit,
    predict,
    supervised_step,
)
from fnn.training.run import TrainingError
from fnn.training.steps import EvalFn, StepFn

__all__ = ["Batches", "EarlyStopping", "EvalFn", "History", "StepFn", "TrainState",
           "TrainingError", "accuracy", "batches", "check_params", "evaluator", "fit",
           "predict", "supervised_step", "train"]
