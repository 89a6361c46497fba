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
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from fnn.checkpoint import (
    BackgroundWriter,
    checkpoints,
    fingerprint_differences,
    load_checkpoint,
    tree_signature,
)
from fnn.core import Layer, init
from fnn.gradients import value_and_grad
from fnn.io import FnnFileError, read_npz
from fnn.keys import Key, fold_in
from fnn.optim import Optimizer, apply_gradients
from fnn.optim import stats as optimizer_stats
from fnn.tree import flatten_with_paths


class TrainingError(RuntimeError):
    """Training stopped because ``step_fn``, a batch, ``eval_fn`` or a callback raised.

    Nothing is lost: ``state`` is the last good training state (the one the failing step was
    given, or the epoch's final state when evaluation or a callback failed), ``history`` the
    history up to it (``stop_reason == "error"``), ``checkpoint`` the file written first when
    checkpointing was on. The original exception is ``__cause__``.

    >>> import numpy as np, fnn
    >>> def failing_step(state, batch):
    ...     if state == 3:
    ...         raise RuntimeError("malformed batch")
    ...     return state + 1, {"loss": 0.0}
    >>> try:
    ...     fnn.train(failing_step, [(np.zeros(1),)] * 2, 0, epochs=5, progress=False)
    ... except fnn.TrainingError as err:
    ...     print(err.state, err.history.epochs, err.history.stop_reason)
    3 1 error
    """

    def __init__(self, message: str, state: Any, history: History, checkpoint=None):
        super().__init__(message)
        self.state, self.history, self.checkpoint = state, history, checkpoint


class Batches:
    """Re-iterable mini-batches over aligned arrays; a fresh permutation every epoch.

    ``epoch(i)`` yields the batches of epoch ``i`` (deterministic from ``rng`` and ``i``;
    ``epoch(i, start=b)`` from its ``b``-th batch on); iterating the object itself walks epochs
    0, 1, 2, ... The last partial batch is kept unless ``drop_last``.

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

    def epoch(self, i: int, start: int = 0) -> Iterable[tuple]:
        arrays, size = self.arrays, self.batch_size
        stop = min(len(self) * size, self.n)
        if not self.shuffle:  # slices (views)
            for first in range(start * size, stop, size):
                yield tuple(a[first:first + size] for a in arrays)
            return
        # each batch gathered when it is needed: it lands in cache just before the step reads
        # it, and the dataset is never copied whole (the MLP benchmark ran faster this way than
        # with one gather of the whole dataset per epoch)
        perm = np.random.default_rng(fold_in(self.key, i)).permutation(self.n)
        for first in range(start * size, stop, size):
            rows = perm[first:first + size]
            yield tuple(a.take(rows, axis=0) for a in arrays)

    def __iter__(self):
        i, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return iter(self.epoch(i))

    def describe(self) -> dict:
        """What a checkpoint's fingerprint records of this data: sizes, order, and a checksum
        of a sample of rows (cheap; catches changed data without reading all of it)."""
        rows = np.unique(np.linspace(0, self.n - 1, min(self.n, 256)).astype(int))
        crc = 0
        for a in self.arrays:
            crc = zlib.crc32(np.ascontiguousarray(a[rows]).tobytes(), crc)
        return {"kind": "batches", "samples": self.n, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last,
                "order_seed": [_json_int(self.key.entropy), list(self.key.spawn_key)],
                "arrays": [f"{a.dtype}{tuple(a.shape[1:])}" for a in self.arrays],
                "sample_crc32": crc}


def _json_int(x):
    return x if isinstance(x, int) else [int(v) for v in x]


def batches(*arrays, batch_size: int, shuffle: bool = True, rng: int | Key = 0,
            drop_last: bool = False) -> Batches:
    """Mini-batches of aligned arrays (see :class:`Batches`).

    >>> import numpy as np, fnn
    >>> data = fnn.batches(np.zeros((10, 3)), np.arange(10), batch_size=4, drop_last=True)
    >>> [x.shape for x, y in data.epoch(0)]
    [(4, 3), (4, 3)]
    """
    return Batches(*arrays, batch_size=batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last)


@dataclass
class History:
    """What :func:`train` saw: per-epoch means of the step metrics (``train``), the eval
    metrics (``eval``), seconds per epoch, why and where it stopped, where it resumed.

    ``stop_reason``: ``"completed"``, ``"early_stopping"``, ``"callback"``, ``"diverged"``,
    ``"interrupted"`` or ``"error"`` (then ``error`` is the exception). ``resumed`` lists the
    checkpoints the run continued from (``{"epoch", "batch", "step", "file"}``, epoch and batch
    counted from 0).

    >>> import fnn
    >>> _, hist = fnn.train(lambda s, b: (s + 1, {"loss": 1.0 / (s + 1)}), [(1,), (2,)], 0,
    ...                     epochs=2, progress=False)
    >>> hist.epochs, [round(v, 4) for v in hist.train["loss"]], hist.stop_reason
    (2, [0.75, 0.2917], 'completed')
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    eval: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str = "completed"
    message: str = ""
    resumed: list[dict] = field(default_factory=list)
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def log(self, section: dict[str, list[float]], metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            section.setdefault(k, []).append(float(v))

    def truncate(self, epochs: int) -> None:
        """Forget every epoch from ``epochs`` on (an epoch whose evaluation or callbacks
        failed is not kept half-logged)."""
        for section in (self.train, self.eval):
            for k in list(section):
                del section[k][epochs:]
                if not section[k]:
                    del section[k]
        del self.seconds[epochs:]

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("error")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**{k: v for k, v in d.items() if k != "error"})


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` names an eval metric (a train metric when there is no ``eval_fn``); ``mode`` is
    ``"min"`` (losses) or ``"max"`` (accuracies); a NaN is never an improvement. With
    ``restore_best`` the returned state is the best epoch's.

    >>> import fnn
    >>> stop = fnn.EarlyStopping("accuracy", patience=3, mode="max")
    >>> stop.improved(0.9, best=0.8), stop.improved(float("nan"), best=None)
    (True, False)
    """

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
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


def _epoch_batches(data, epoch: int, epochs: int, start: int):
    if hasattr(data, "epoch"):
        return data.epoch(epoch, start) if start else data.epoch(epoch)
    return itertools.islice(data, start, None) if start else data


def _batch_len(batch) -> int:
    """Samples in a batch (weights the epoch means); 1 when it cannot tell."""
    try:
        return len(batch[0] if isinstance(batch, (tuple, list)) else batch)
    except TypeError:
        return 1


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


_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h)\s*$")


def _every(value) -> tuple[str, float]:
    """``checkpoint_every``: ``"epoch"``, an int (steps) or a duration ``"30s"``/``"10min"``."""
    if value == "epoch":
        return "epoch", 1
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return "steps", int(value)
    m = _EVERY.match(value) if isinstance(value, str) else None
    if m:
        return "seconds", float(m.group(1)) * {"s": 1, "sec": 1, "min": 60, "h": 3600}[m.group(2)]
    raise ValueError(f"train: checkpoint_every must be 'epoch', a positive number of steps or a "
                     f"duration such as '10min' or '30s', got {value!r}")


@dataclass
class _Progress:
    """Where the loop is: epoch, batches done in it and their metric sums, steps so far, early
    stopping's best value and wait, and whether the run is over. Saved in checkpoints."""

    epoch: int = 0
    batch: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0
    steps: int = 0
    best_value: float | None = None
    wait: int = 0
    finished: bool = False
    history: History = field(default_factory=History)

    def snapshot(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "history"}
        out["sums"] = dict(self.sums)
        out["history"] = self.history.to_dict()
        return json.loads(json.dumps(out))  # a deep copy that is also JSON-safe

    @classmethod
    def restore(cls, d: dict) -> _Progress:
        d = dict(d)
        history = History.from_dict(d.pop("history"))
        return cls(**d, history=history)


def _describe_data(data) -> dict:
    if hasattr(data, "describe"):
        return data.describe()
    try:
        return {"kind": type(data).__name__, "batches": len(data)}
    except TypeError:
        return {"kind": type(data).__name__}


def _fingerprint(state, data, step_fn, eval_fn, early_stopping, config) -> dict:
    out = {
        "state": tree_signature(state),
        "data": _describe_data(data),
        "step_fn": getattr(step_fn, "fingerprint", getattr(step_fn, "__qualname__", "?")),
        "eval_fn": getattr(eval_fn, "fingerprint", None) if eval_fn is not None else None,
        "early_stopping": asdict(early_stopping) if early_stopping is not None else None,
        "config": config,
    }
    try:
        return json.loads(json.dumps(out, default=repr))
    except (TypeError, ValueError) as err:
        raise ValueError(f"train: config must be JSON-like (dicts, lists, numbers, strings): "
                         f"{err}") from None


def _metric_names(fn) -> tuple[str, ...] | None:
    names = getattr(fn, "metric_names", None)
    return tuple(names) if names is not None else None


class _Misconfigured(Exception):
    """A configuration error found mid-loop: raised as it is, not as a TrainingError."""


class _MonitorError(_Misconfigured, KeyError):
    pass


class _NoBatches(_Misconfigured, ValueError):
    pass


def _check_monitor(early_stopping, names, where: str) -> None:
    if early_stopping is not None and names is not None and early_stopping.monitor not in names:
        raise _MonitorError(f"EarlyStopping: no metric {early_stopping.monitor!r} in {where}; "
                       f"have {sorted(names)}")


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
    checkpoint: str | None = None,
    checkpoint_every: int | str = "epoch",
    checkpoint_keep: int = 3,
    config: dict | None = None,
) -> tuple[Any, History]:
    """Run ``epochs`` passes of ``step_fn`` over ``data``; return ``(state, history)``.

    * ``data``: :func:`batches` (reshuffled per epoch) or any re-iterable of batches.
    * ``eval_fn(state) -> {name: value}`` runs after every epoch (e.g. :func:`evaluator`).
    * ``early_stopping``: an :class:`EarlyStopping`; its ``monitor`` is checked before the first
      step (a custom ``eval_fn`` is called once on the initial state to learn its names).
    * ``callbacks``: ``cb(epoch, state, history)`` after every epoch; returning ``True`` stops.
    * ``checkpoint=DIR``: write checkpoints there (``checkpoint_every``: ``"epoch"``, a number
      of steps, or a duration such as ``"10min"``; the newest ``checkpoint_keep`` are kept) and,
      when it already holds one of this run, continue from it: re-running the same script after
      a crash finishes the run exactly as if it had never stopped. ``config`` (JSON-like, e.g.
      the script's arguments) joins the run's fingerprint: a checkpoint written with another
      model, optimiser, data order, batch size or config is refused with the differences named.
      A finished run's folder gives its result back at once (more ``epochs`` continue it).
    * Divergence guard: a NaN or infinite metric stops the loop, warns, and returns the last
      state whose metrics were finite (or the best one, with ``restore_best``).
    * An exception from a step, a batch, ``eval_fn`` or a callback is re-raised as
      :class:`TrainingError` carrying the last good state and the history; Ctrl-C returns them
      (``history.stop_reason == "interrupted"``). A checkpoint is written first in both cases.

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
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"train: epochs must be a non-negative int, got {epochs!r}")
    try:
        steps_per_epoch = len(data)
    except TypeError:
        steps_per_epoch = None
    if steps_per_epoch == 0:
        raise ValueError("train: data has no batches (empty dataset)")
    if not hasattr(data, "epoch") and iter(data) is data and (epochs > 1 or checkpoint):
        raise TypeError("train: data is a one-shot iterator; pass fnn.batches(...) or a list")
    every = _every(checkpoint_every) if checkpoint is not None else None
    loop, best_state, writer = _Progress(), None, None
    if checkpoint is not None:
        fingerprint = _fingerprint(state, data, step_fn, eval_fn, early_stopping, config)
        writer = BackgroundWriter(checkpoint, checkpoint_keep)
        resumed = _resume(checkpoint, state, fingerprint)
        if resumed is not None:
            state, best_state, loop, path = resumed
            if loop.finished and (loop.history.stop_reason != "completed" or epochs <= loop.epoch):
                writer.close()
                return _result(state, best_state, loop, early_stopping)
            loop.finished = False
            loop.history.stop_reason, loop.history.message = "completed", ""
            loop.history.resumed.append({"epoch": loop.epoch, "batch": loop.batch,
                                         "step": loop.steps, "file": path.name})
    history = loop.history
    if not history.resumed:
        _check_monitor(early_stopping, _metric_names(eval_fn if eval_fn is not None else step_fn),
                       "the eval metrics" if eval_fn is not None else "the step metrics")
        if early_stopping is not None and eval_fn is not None and _metric_names(eval_fn) is None:
            _check_monitor(early_stopping, eval_fn(state), "eval_fn's metrics")

    def save(st, sync=False):
        if writer is None:
            return None
        kw = dict(progress=loop.snapshot(), best_state=best_state, fingerprint=fingerprint)
        if sync:
            return writer.write_now(st, **kw)
        writer.submit(st, **kw)
        return None

    from tqdm import tqdm  # here, not at import: `import fnn` stays light

    bar = tqdm(total=steps_per_epoch * epochs if steps_per_epoch else None,
               initial=min(loop.steps, steps_per_epoch * epochs) if steps_per_epoch else loop.steps,
               disable=not progress, unit="step", dynamic_ncols=True, file=sys.stderr)
    if history.resumed and progress:
        where = history.resumed[-1]
        bar.write(f"train: resumed from {where['file']} at epoch {where['epoch'] + 1}, batch "
                  f"{where['batch']} (step {where['step']})")
    last_good, last_saved = None, time.monotonic()
    try:
        while loop.epoch < epochs:
            bar.set_description(f"epoch {loop.epoch + 1}/{epochs}")
            t0 = time.perf_counter() - loop.seconds
            stage, what = "step", None
            try:
                for batch in _epoch_batches(data, loop.epoch, epochs, loop.batch):
                    new_state, metrics = step_fn(state, batch)
                    bad = _nonfinite(metrics)
                    if bad:
                        return _diverged(state, last_good, best_state, loop, early_stopping, bad,
                                         save, bar)
                    if loop.steps == 0 and eval_fn is None and early_stopping is not None:
                        _check_monitor(early_stopping, metrics, "the step metrics")
                    last_good, state = state, new_state
                    n = _batch_len(batch)
                    for k, v in metrics.items():
                        loop.sums[k] = loop.sums.get(k, 0.0) + float(v) * n
                    loop.count += n
                    loop.batch += 1
                    loop.steps += 1
                    bar.update(1)
                    if every is not None and every[0] != "epoch" and (
                            (every[0] == "steps" and loop.steps % every[1] == 0)
                            or (every[0] == "seconds"
                                and time.monotonic() - last_saved >= every[1])):
                        loop.seconds = time.perf_counter() - t0
                        save(state)
                        last_saved = time.monotonic()
                if loop.batch == 0:
                    raise _NoBatches("train: data yielded no batches (empty dataset)")
                stage = "end of epoch"
                loop.seconds = time.perf_counter() - t0
                stop, new_best = _end_of_epoch(loop, state, eval_fn, callbacks, early_stopping)
            except (KeyboardInterrupt, TrainingError, _Misconfigured):
                raise
            except Exception as err:  # noqa: BLE001  nothing is lost: re-raised with the state
                what = err
            if what is not None:
                raise _failure(what, stage, state, loop, save, bar) from what
            if new_best:
                best_state = state
            loop.epoch, loop.batch, loop.sums, loop.count, loop.seconds = loop.epoch + 1, 0, {}, 0, 0.0
            if stop:
                break
            if every is not None and every[0] == "epoch" and loop.epoch < epochs:
                _checkpoint_or_fail(save, state, loop, bar)  # (the last one is written below)
                last_saved = time.monotonic()
        loop.finished = True
        _checkpoint_or_fail(save, state, loop, bar, sync=True)
    except KeyboardInterrupt:
        history.stop_reason = "interrupted"
        history.message = "interrupted: returning the state of the last completed step"
        _save_or_warn(save, state)
        warnings.warn(history.message, RuntimeWarning, stacklevel=2)
        return state, history
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return _result(state, best_state, loop, early_stopping)


def _resume(folder, template, fingerprint):
    """``(state, best_state, progress, path)`` from the newest checkpoint in ``folder``, or
    None when there is none."""
    try:
        found = load_checkpoint(folder, like=template)
        path, saved = found.path, found.fingerprint
    except FileNotFoundError:
        return None
    except FnnFileError as err:  # another tree: say how the runs differ, not only the trees
        if "does not match" not in str(err):
            raise
        found, path = None, checkpoints(folder)[-1]
        saved = read_npz(path, where="train")[0].get("fingerprint")
    differences = fingerprint_differences(saved, fingerprint)
    if differences or found is None:
        raise ValueError(
            f"train: the checkpoint {path} belongs to another run; it differs in\n  "
            + "\n  ".join(differences or ["the trees of its state"])
            + f"\nuse a new checkpoint folder for this run, or delete {path.parent} "
              "to start it afresh")
    return found.state, found.best_state, _Progress.restore(found.progress), found.path


def _end_of_epoch(loop: _Progress, state, eval_fn, callbacks,
                  early_stopping) -> tuple[bool, bool]:
    """Log the epoch, evaluate, call back, early-stop: all or nothing (an exception leaves the
    history and early stopping's progress as they were). Returns ``(stop, new_best)``."""
    history, epoch = loop.history, loop.epoch
    before = (loop.best_value, loop.wait, history.best_epoch, history.stop_reason)
    try:
        history.seconds.append(loop.seconds)
        history.log(history.train, {k: v / loop.count for k, v in loop.sums.items()})
        if eval_fn is not None:
            history.log(history.eval, eval_fn(state))
        stop = any(cb(epoch, state, history) is True for cb in callbacks)
        if stop:
            history.stop_reason = "callback"
        new_best = False
        if early_stopping is not None:
            source = history.eval if eval_fn is not None else history.train
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


def _save_or_warn(save, state):
    """A last checkpoint whose failure must not hide what stopped the run: warn instead."""
    try:
        return save(state, sync=True)
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"train: could not write the checkpoint: {err}", RuntimeWarning,
                      stacklevel=4)
        return None


def _checkpoint_or_fail(save, state, loop, bar, sync=False):
    """A checkpoint at an epoch's end or of the finished run; a failure to write it (a full
    disk) stops training like any other error, the state kept in the TrainingError."""
    try:
        save(state, sync=sync)
    except Exception as err:  # noqa: BLE001
        raise _failure(err, "checkpoint", state, loop, save, bar) from err


def _failure(err, stage, state, loop, save, bar) -> TrainingError:
    history = loop.history
    history.stop_reason, history.error = "error", err
    where = {"step": f"epoch {loop.epoch + 1}, step {loop.batch + 1}",
             "end of epoch": f"the end of epoch {loop.epoch + 1} (evaluation or a callback)",
             "checkpoint": f"a checkpoint after step {loop.steps}"}[stage]
    path = _save_or_warn(save, state)
    history.message = (f"training stopped at {where} by {type(err).__name__}: {err}; the last "
                       "good state is kept in this error's .state and .history"
                       + (f" and in {path}" if path is not None else ""))
    if not bar.disable:
        bar.write("train: " + history.message)
    return TrainingError(history.message, state, history, path)


def _diverged(state, last_good, best_state, loop, early_stopping, bad, save, bar):
    history = loop.history
    history.stop_reason = "diverged"
    restore = early_stopping is not None and early_stopping.restore_best and best_state is not None
    good = best_state if restore else (last_good if last_good is not None else state)
    which = (f"the best epoch's state (epoch {history.best_epoch + 1})" if restore
             else "the last state with finite metrics" if last_good is not None
             else "the initial state (the first step already diverged)")
    history.message = (f"training diverged at epoch {loop.epoch + 1}, step {loop.batch + 1}: "
                       f"{bad}; returning {which} (lower the learning rate?)")
    loop.finished = True
    _save_or_warn(save, good)
    bar.close()
    warnings.warn(history.message, RuntimeWarning, stacklevel=3)
    return good, history


def _result(state, best_state, loop, early_stopping):
    if (early_stopping is not None and early_stopping.restore_best
            and loop.history.best_epoch is not None and best_state is not None
            and loop.history.stop_reason not in ("diverged",)):
        return best_state, loop.history
    return state, loop.history


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
    def create(cls, params, optimizer: Optimizer, key: Key | None = None,
               model_state: Any = None) -> TrainState:
        check_params(params, "TrainState.create")
        return cls(params, optimizer.init(params), key, 0, model_state)


def check_params(params, where: str) -> None:
    """Every params leaf must be a floating-point array: a clear error naming the path."""
    for path, leaf in flatten_with_paths(params).items():
        kind = np.asarray(leaf).dtype.kind
        if kind != "f":
            raise TypeError(f"{where}: params/{path} has dtype {np.asarray(leaf).dtype}; params "
                            "must be floating-point arrays (convert with .astype(np.float32))")


def supervised_step(model: Layer, loss, optimizer: Optimizer, *, threads: int = 1,
                    chunk: int | None = None) -> Callable:
    """A ready ``step_fn(state: TrainState, (x, y)) -> (state, metrics)``: ``metrics`` are the
    batch's ``"loss"`` and what the optimiser used (:func:`fnn.optim.stats`: the learning rate
    ``"lr"``, and ``"grad_norm"`` before clipping when it clips), so the history records them.

    The step's dropout key is ``fold_in(state.key, state.step)`` when ``state.key`` is set.
    ``threads``: batch shards run at once; ``chunk``: at most that many samples at a time
    (see :func:`fnn.value_and_grad`). A model with state (``model.stateful``, e.g. with
    :func:`fnn.batch_norm`) trains on ``state.model_state`` and the step returns the new one.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(1)
    >>> _, params = model.init(fnn.key(0), (-1, 2))
    >>> step = fnn.supervised_step(model, fnn.mse, fnn.sgd(0.1))
    >>> state, metrics = step(fnn.TrainState.create(params, fnn.sgd(0.1)),
    ...                       (np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)))
    >>> state.step, sorted(metrics)
    (1, ['loss', 'lr'])
    """
    grad_fn = value_and_grad(model, loss, threads=threads, chunk=chunk)

    def step(state: TrainState, batch):
        x, y = batch
        key = fold_in(state.key, state.step) if state.key is not None else None
        model_state = state.model_state
        if model.stateful:
            if model_state is None:
                raise ValueError(f"supervised_step: the model {model.name} has state (batch "
                                 "statistics) but the TrainState has none: create it with "
                                 "TrainState.create(params, optimizer, model_state=state), the "
                                 "state being the third value of fnn.init(model, key, shape)")
            value, grads, model_state = grad_fn(state.params, x, y, key=key, state=model_state)
        else:
            value, grads = grad_fn(state.params, x, y, key=key)
        params, opt_state = apply_gradients(optimizer, grads, state.opt_state, state.params)
        metrics = {"loss": value, **optimizer_stats(opt_state)}  # lr, grad_norm when clipping
        return TrainState(params, opt_state, state.key, state.step + 1, model_state), metrics

    step.metric_names = ("loss",)
    step.fingerprint = {"kind": "supervised_step", "model": model.name,
                        "loss": getattr(loss, "name", repr(loss)),
                        "optimizer": _describe_optimizer(optimizer), "threads": threads,
                        "chunk": chunk}
    return step


def _describe_optimizer(optimizer) -> Any:
    """What a fingerprint can tell of an optimiser: its own description when it has one."""
    for attr in ("config", "describe"):
        value = getattr(optimizer, attr, None)
        if value is not None:
            return value() if callable(value) else value
    return type(optimizer).__name__


def predict(model: Layer, params, x, *, state=None, batch_size: int = 1024) -> np.ndarray:
    """``model.apply`` over ``x`` in chunks of ``batch_size`` (bounded memory); ``state``: the
    model's state (running statistics), for a model that has one.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(2)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> fnn.predict(model, params, np.ones((5, 3), np.float32), batch_size=2).shape
    (5, 2)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"predict: batch_size must be a positive int, got {batch_size!r}")
    if len(x) == 0:
        raise ValueError("predict: x is empty")
    if model.stateful and state is None:
        raise ValueError(f"predict: the model {model.name} has state (running statistics): "
                         "pass state= (TrainState.model_state, or init's third value)")
    extra = {"state": state} if model.stateful else {}
    return np.concatenate(
        [model.apply(params, x[i:i + batch_size], **extra) for i in range(0, len(x), batch_size)]
    )


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the integer label (or the one-hot's arg-max).

    >>> import numpy as np, fnn
    >>> fnn.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=-1)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def evaluator(model: Layer, x, y, *, loss=None, accuracy: bool = False,
              batch_size: int = 1024) -> Callable[[Any], dict]:
    """``eval_fn(state) -> {"loss": ..., "accuracy": ...}`` on held-out ``(x, y)``.

    ``state`` may be a :class:`TrainState` or a params tree (for a model with state, a
    ``(params, model_state)`` pair). The set is checked here (not empty, ``x`` and ``y`` of
    one length), so a bad one fails before training starts.

    >>> import numpy as np, fnn
    >>> model = fnn.linear(2)
    >>> _, params = model.init(fnn.key(0), (-1, 3))
    >>> eval_fn = fnn.evaluator(model, np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]),
    ...                         loss=fnn.cross_entropy, accuracy=True)
    >>> sorted(eval_fn(params)), eval_fn.metric_names
    (['accuracy', 'loss'], ('loss', 'accuracy'))
    """
    score = globals()["accuracy"]
    n_x, n_y = len(x), len(y)
    if n_x == 0:
        raise ValueError("evaluator: the evaluation set is empty (0 rows)")
    if n_x != n_y:
        raise ValueError(f"evaluator: x has {n_x} rows but y has {n_y}")
    if loss is None and not accuracy:
        raise ValueError("evaluator: nothing to measure; pass loss= and/or accuracy=True")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"evaluator: batch_size must be a positive int, got {batch_size!r}")

    def eval_fn(state) -> dict:
        if isinstance(state, TrainState):
            params, model_state = state.params, state.model_state
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
            out["accuracy"] = score(pred, y)
        return out

    eval_fn.metric_names = ("loss",) * (loss is not None) + ("accuracy",) * bool(accuracy)
    eval_fn.fingerprint = {"rows": n_x, "loss": getattr(loss, "name", None),
                           "accuracy": bool(accuracy)}
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
    seed: int | Key = 0,
    params=None,
    model_state=None,
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
        config={"seed": [_json_int(base.entropy), list(base.spawn_key)],
                "dropout_key": dropout_key},
    )
    if model.stateful:
        return (state.params, state.model_state), history
    return state.params, history


def _seed_key(seed: int | Key) -> Key:
    """``fit``'s seed: an int, or a key (e.g. the one ``fnn.sweep`` hands a trial) used as is,
    so ``fit(seed=fnn.key(s))`` is ``fit(seed=s)``."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
