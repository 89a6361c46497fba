"""Resuming a run: its fingerprint, the checkpoint cadence, the loop's progress as checkpoints
save it, and finding where to continue (:func:`restore_run`). The files themselves are
:mod:`fnn.checkpoint`'s."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fnn.checkpoint import (
    CheckpointMismatch,
    fingerprint_differences,
    load_checkpoint,
    tree_signature,
)
from fnn.training.data import describe_data
from fnn.training.history import EarlyStopping, History
from fnn.training.steps import declared_fingerprint, plain

__all__ = ["Progress", "cadence", "restore_run", "run_fingerprint"]

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h)\s*$")
_SECONDS = {"s": 1, "sec": 1, "min": 60, "h": 3600}


def cadence(value: Any) -> tuple[str, float]:
    """``checkpoint_every`` as ``(unit, amount)``: ``"epoch"`` -> ``("epoch", 1)``, a positive
    int -> ``("steps", n)``, a duration ``"30s"``/``"10min"``/``"2h"`` -> ``("seconds", t)``."""
    if value == "epoch":
        return "epoch", 1
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return "steps", int(value)
    m = _EVERY.match(value) if isinstance(value, str) else None
    if m:
        return "seconds", float(m.group(1)) * _SECONDS[m.group(2)]
    raise ValueError(f"train: checkpoint_every must be 'epoch', a positive number of steps or a "
                     f"duration such as '10min' or '30s', got {value!r}")


@dataclass
class Progress:
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
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "history"}
        out["sums"] = dict(self.sums)
        out["history"] = self.history.to_dict()
        return json.loads(json.dumps(out))  # a deep copy that is also JSON-safe

    @classmethod
    def restore(cls, d: dict) -> Progress:
        d = dict(d)
        history = History.from_dict(d.pop("history"))
        return cls(**d, history=history)


def run_fingerprint(state: Any, data: Any, step_fn: Any, eval_fn: Any,
                early_stopping: EarlyStopping | None, config: Any) -> dict:
    """What identifies a run: the state's tree signature, the data, what the step and eval
    functions declare (a plain function: its name), early stopping and the user's ``config``.
    """
    step_print = declared_fingerprint(step_fn)
    out = {
        "state": tree_signature(state),
        "data": describe_data(data),
        "step_fn": (step_print if step_print is not None
                    else getattr(plain(step_fn), "__qualname__", "?")),
        "eval_fn": declared_fingerprint(eval_fn) if eval_fn is not None else None,
        "early_stopping": asdict(early_stopping) if early_stopping is not None else None,
        "config": config,
    }
    try:
        return json.loads(json.dumps(out, default=repr))
    except (TypeError, ValueError) as err:
        raise ValueError(f"train: config must be JSON-like (dicts, lists, numbers, strings): "
                         f"{err}") from None


def restore_run(folder: Any, template: Any,
                fingerprint: dict) -> tuple[Any, Any, Progress, Path] | None:
    """``(state, best_state, progress, path)`` from the newest checkpoint in ``folder``, or
    None when there is none. A checkpoint of another run (another fingerprint, or trees that
    do not match ``template``) is refused with the differences named."""
    try:
        found = load_checkpoint(folder, like=template)
    except FileNotFoundError:
        return None
    except CheckpointMismatch as err:  # another tree: say how the runs differ, not only the trees
        mismatch = err
    else:
        differences = fingerprint_differences(found.fingerprint, fingerprint)
        if differences:
            raise _another_run(found.path, differences)
        return found.state, found.best_state, Progress.restore(found.progress), found.path
    differences = fingerprint_differences(mismatch.fingerprint, fingerprint)
    raise _another_run(mismatch.path, differences or ["the trees of its state"]) from mismatch


def _another_run(path: Path, differences: list[str]) -> ValueError:
    return ValueError(
        f"train: the checkpoint {path} belongs to another run; it differs in\n  "
        + "\n  ".join(differences)
        + f"\nuse a new checkpoint folder for this run, or delete {path.parent} "
          "to start it afresh")
