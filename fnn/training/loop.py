"""The training loop: :func:`train` folds a pure ``step_fn(state, batch) -> (state, metrics)``
over the batches of every epoch, and owns evaluation, early stopping, callbacks, the progress
bar, the divergence guard and checkpoints.

Its steps, each a function here: set up (open the checkpoint folder, continue a run found
there, check early stopping's monitor), the epochs, the epoch's batches (the hot loop, with
the checkpoint cadence) and the end of an epoch (log, evaluate, call back, early-stop: all or
nothing). How a run ends (diverged, interrupted, failed) is :mod:`fnn.training.run`'s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fnn.checkpoint import BackgroundWriter
from fnn.training.data import batch_len, epoch_batches
from fnn.training.history import EarlyStopping, History
from fnn.training.resume import cadence, restore_run, run_fingerprint
from fnn.training.run import (
    Run,
    TrainingError,
    checkpoint_or_fail,
    diverged,
    failure_error,
    interrupted,
    result,
    warn,
)
from fnn.training.steps import EvalFn, StepFn, declared_fingerprint, metric_names
from fnn.validate import positive_int

__all__ = ["TrainingError", "train"]


class _Misconfigured(Exception):
    """A configuration error found mid-loop: raised as it is, not as a TrainingError."""


class _MonitorError(_Misconfigured, KeyError):
    pass


class _NoBatches(_Misconfigured, ValueError):
    pass


def _check_monitor(early_stopping: EarlyStopping | None, names: Any, where: str) -> None:
    if early_stopping is not None and names is not None and early_stopping.monitor not in names:
        raise _MonitorError(f"EarlyStopping: no metric {early_stopping.monitor!r} in {where}; "
                            f"have {sorted(names)}")


def train(
    step_fn: StepFn | Callable[[Any, Any], tuple[Any, dict]],
    data: Any,
    state: Any,
    *,
    epochs: int,
    eval_fn: EvalFn | Callable[[Any], dict] | None = None,
    early_stopping: EarlyStopping | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | str = "epoch",
    checkpoint_keep: int | None = 3,
    config: dict | None = None,
    ranks: Any = None,
) -> tuple[Any, History]:
    """Run ``epochs`` passes of ``step_fn`` over ``data``; return ``(state, history)``.

    * ``step_fn(state, batch) -> (state, metrics)``: pure; a :class:`fnn.StepFn` (what
      :func:`fnn.supervised_step` returns) also declares its metric names and fingerprint.
    * ``data``: :func:`batches` (reshuffled per epoch) or any re-iterable of batches.
    * ``eval_fn(state) -> {name: value}`` runs after every epoch (e.g. :func:`evaluator`).
    * ``early_stopping``: an :class:`EarlyStopping`; its ``monitor`` is checked before the first
      step (an ``eval_fn`` that declares no metric names, not an :class:`fnn.EvalFn`, is
      called once on the initial state to learn them).
    * ``callbacks``: ``cb(epoch, state, history)`` after every epoch; returning ``True`` stops.
    * ``checkpoint=DIR``: write checkpoints there (``checkpoint_every``: ``"epoch"``, a number
      of steps, or a duration such as ``"10min"``; the newest ``checkpoint_keep`` are kept) and,
      when it already holds one of this run, continue from it: re-running the same script after
      a crash finishes the run exactly as if it had never stopped. ``config`` (JSON-like, e.g.
      the script's arguments) joins the run's fingerprint: a checkpoint written with another
      model, optimiser, data order, batch size or config is refused with the differences named
      (a plain ``step_fn`` declares no fingerprint: ``train`` warns that a changed model or
      optimiser then goes unnoticed). A finished run's folder gives its result back at once
      (more ``epochs`` continue it). While it trains, ``train`` holds the folder's lock
      (``DIR/train.lock``, :mod:`fnn.locking`): a second run into it is refused at once.
    * Divergence guard: a NaN or infinite metric stops the loop, warns, and returns the last
      state whose metrics were finite (or the best one, with ``restore_best``).
    * An exception from a step, a batch, ``eval_fn`` or a callback is re-raised as
      :class:`TrainingError` carrying the last good state and the history; Ctrl-C returns them
      (``history.stop_reason == "interrupted"``). A checkpoint is written first in both cases.
    * ``ranks``: set by :func:`fnn.distributed.train` (one process of several training one
      model): only its root shows progress and writes checkpoints, which it reads and shares
      with the others (``ranks.share(fn)``: the root's ``fn()``, or its exception, on every
      rank), and the epoch's metric sums are summed over the ranks (``ranks.reduce``).

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
    run = Run(step_fn, data, state, epochs, eval_fn, early_stopping, callbacks, checkpoint)
    run.ranks = ranks
    finished = _start(run, checkpoint, checkpoint_every, checkpoint_keep, config, progress)
    if finished is not None:
        return finished
    try:
        return _epochs(run)
    except KeyboardInterrupt:
        return interrupted(run)
    finally:
        run.bar.close()
        if run.writer is not None:
            run.writer.close()


# ------------------------------------------------------------------------------- set up


def _start(run: Run, checkpoint: str | Path | None, every: Any, keep: Any, config: Any,
           progress: bool) -> tuple[Any, History] | None:
    """Open the checkpoints (the result of a run found finished, else None), check the
    metric names and make the progress bar; on any error the folder's lock is released."""
    try:
        if checkpoint is not None:
            finished = _open_checkpoints(run, checkpoint, every, keep, config)
            if finished is not None:
                return finished
        if not run.loop.history.resumed:
            _check_metric_names(run)
        run.bar = _progress_bar(run, progress and (run.ranks is None or run.ranks.root))
    except BaseException:
        if run.writer is not None:
            run.writer.close()  # (releases the folder's lock)
        raise
    return None


def _open_checkpoints(run: Run, folder: str | Path, every: Any, keep: Any,
                      config: Any) -> tuple[Any, History] | None:
    """Set up checkpointing and continue the run found in ``folder``; returns the result of
    a run found finished, else None."""
    run.every = cadence(every)
    keep = None if keep is None else positive_int("train", "checkpoint_keep", keep)
    if declared_fingerprint(run.step_fn) is None:
        warn("train: step_fn declares no fingerprint, so resuming from a checkpoint cannot "
             "tell a changed model or optimiser from the same one; declare it: "
             "fnn.StepFn(fn, fingerprint={...}) (fnn.supervised_step does)", UserWarning)
    run.fingerprint = run_fingerprint(run.state, run.data, run.step_fn, run.eval_fn,
                                      run.early_stopping, config)
    if run.ranks is None or run.ranks.root:  # the root alone writes, and holds the lock
        run.writer = BackgroundWriter(folder, keep, lock=True)  # the lock, before reading
    if run.ranks is None:
        found = restore_run(folder, run.state, run.fingerprint)
    else:  # the root reads the checkpoints; every rank resumes from them
        found = run.ranks.share(lambda: restore_run(folder, run.state, run.fingerprint))
    if found is None:
        return None
    run.state, run.best_state, run.loop, path = found
    loop = run.loop
    if loop.finished and (loop.history.stop_reason != "completed" or run.epochs <= loop.epoch):
        if run.writer is not None:
            run.writer.close()
        return result(run)
    loop.finished = False
    loop.history.stop_reason, loop.history.message = "completed", ""
    loop.history.resumed.append({"epoch": loop.epoch, "batch": loop.batch,
                                 "step": loop.steps, "file": path.name})
    return None


def _check_metric_names(run: Run) -> None:
    """Early stopping's monitor against the declared metric names, before the first step (an
    undeclared eval_fn is asked once, on the initial state)."""
    if run.early_stopping is None:
        return
    if run.eval_fn is None:
        _check_monitor(run.early_stopping, metric_names(run.step_fn), "the step metrics")
        return
    names = metric_names(run.eval_fn)
    if names is not None:
        _check_monitor(run.early_stopping, names, "the eval metrics")
    else:
        _check_monitor(run.early_stopping, run.eval_fn(run.state), "eval_fn's metrics")


def _progress_bar(run: Run, progress: bool) -> Any:
    from tqdm import tqdm  # here, not at import: `import fnn` stays light

    loop, per_epoch = run.loop, run.steps_per_epoch
    total = per_epoch * run.epochs if per_epoch else None
    bar = tqdm(total=total, initial=min(loop.steps, total) if total is not None else loop.steps,
               disable=not progress, unit="step", dynamic_ncols=True, file=sys.stderr)
    if loop.history.resumed and progress:
        where = loop.history.resumed[-1]
        bar.write(f"train: resumed from {where['file']} at epoch {where['epoch'] + 1}, batch "
                  f"{where['batch']} (step {where['step']})")
    return bar


# ------------------------------------------------------------------------------- epochs


def _epochs(run: Run) -> tuple[Any, History]:
    """Every remaining epoch, a checkpoint after each (with ``checkpoint_every="epoch"``) and
    one of the finished run."""
    loop = run.loop
    run.last_saved = time.monotonic()
    while loop.epoch < run.epochs:
        run.bar.set_description(f"epoch {loop.epoch + 1}/{run.epochs}")
        stop, bad = _epoch(run)
        if bad is not None:
            return diverged(run, bad)
        if stop:
            break
        if run.every[0] == "epoch" and loop.epoch < run.epochs:
            checkpoint_or_fail(run)  # (the last one is written below)
            run.last_saved = time.monotonic()
    loop.finished = True
    checkpoint_or_fail(run, sync=True)
    return result(run)


def _epoch(run: Run) -> tuple[bool, str | None]:
    """One epoch: its (remaining) batches, then its end. Returns ``(stop, divergence)``;
    raises :class:`TrainingError` when a step, a batch, ``eval_fn`` or a callback raised."""
    loop = run.loop
    t0 = time.perf_counter() - loop.seconds
    stage, failure = "step", None
    try:
        bad = _batches(run, t0)
        if bad is not None:
            return False, bad
        if loop.batch == 0:
            raise _NoBatches("train: data yielded no batches (empty dataset)")
        stage = "end of epoch"
        loop.seconds = time.perf_counter() - t0
        stop, new_best = _end_of_epoch(run)
    except (KeyboardInterrupt, TrainingError, _Misconfigured):
        raise
    except Exception as err:  # noqa: BLE001  nothing is lost: re-raised with the state
        failure = err
    if failure is not None:
        raise failure_error(run, failure, stage) from failure
    if new_best:
        run.best_state = run.state
    loop.epoch, loop.batch, loop.sums, loop.count, loop.seconds = loop.epoch + 1, 0, {}, 0, 0.0
    return stop, None


def _batches(run: Run, t0: float) -> str | None:
    """The epoch's remaining batches: the hot loop (the state kept in locals and handed back
    to ``run`` on the way out, however it is left). Returns the first non-finite metric
    (``"loss=nan"``) when a step diverged, else None."""
    loop, step, bar, stopping = run.loop, run.step, run.bar, run.early_stopping
    sums = loop.sums
    probe = run.eval_fn is None and stopping is not None  # a monitor among the step metrics
    every_steps = int(run.every[1]) if run.every[0] == "steps" else 0
    every_seconds = run.every[1] if run.every[0] == "seconds" else 0.0
    state, last_good = run.state, run.last_good
    try:
        for batch in epoch_batches(run.data, loop.epoch, loop.batch):
            new_state, metrics = step(state, batch)
            bad = _nonfinite(metrics)
            if bad:
                return bad
            if probe and loop.steps == 0:
                _check_monitor(stopping, metrics, "the step metrics")
            last_good, state = state, new_state
            n = batch_len(batch)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            loop.count += n
            loop.batch += 1
            loop.steps += 1
            bar.update(1)
            if (every_steps and loop.steps % every_steps == 0) or (
                    every_seconds and time.monotonic() - run.last_saved >= every_seconds):
                loop.seconds = time.perf_counter() - t0
                run.save(state)
                run.last_saved = time.monotonic()
    finally:
        run.state, run.last_good = state, last_good
    return None


def _nonfinite(metrics: dict) -> str | None:
    """``"loss=nan"`` for the first metric that is NaN or infinite (Python or numpy scalars,
    0-d or larger arrays), else None."""
    for k, v in metrics.items():
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            continue
        if not np.all(np.isfinite(a)):
            return f"{k}={a.item() if a.ndim == 0 else a}"
    return None


def _end_of_epoch(run: Run) -> tuple[bool, bool]:
    """Log the epoch, evaluate, call back, early-stop: all or nothing (an exception leaves the
    history and early stopping's progress as they were). Returns ``(stop, new_best)``."""
    loop, state, early_stopping = run.loop, run.state, run.early_stopping
    history, epoch = loop.history, loop.epoch
    before = (loop.best_value, loop.wait, history.best_epoch, history.stop_reason)
    try:
        history.seconds.append(loop.seconds)
        sums, count = ((loop.sums, loop.count) if run.ranks is None
                       else run.ranks.reduce(loop.sums, loop.count))
        history.log(history.train, {k: v / count for k, v in sums.items()})
        if run.eval_fn is not None:
            history.log(history.eval, run.eval_fn(state))
        stop = any(cb(epoch, state, history) is True for cb in run.callbacks)
        if stop:
            history.stop_reason = "callback"
        new_best = False
        if early_stopping is not None:
            source = history.eval if run.eval_fn is not None else history.train
            _check_monitor(early_stopping, source, "the metrics")
            value = source[early_stopping.monitor][-1]
            if early_stopping.improved(value, loop.best_value):
                loop.best_value, loop.wait, history.best_epoch = value, 0, epoch
                new_best = True
            else:
                loop.wait += 1
                if loop.wait >= early_stopping.patience:
                    history.stop_reason = "early_stopping"
                    stop = True
        return stop, new_best
    except BaseException:
        history.truncate(epoch)
        loop.best_value, loop.wait, history.best_epoch, history.stop_reason = before
        raise


