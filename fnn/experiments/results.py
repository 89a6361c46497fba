"""What a sweep produced: :class:`SweepResult` (records in grid order, their summaries over
repeats, tables, the curves :func:`fnn.plot.sweep` draws, the arrays trials returned) and
:func:`load_sweep`, which reads a results folder back."""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fnn.experiments.identity import canonical
from fnn.experiments.records import read_record, unflatten

__all__ = ["SweepResult", "load_sweep"]

_RECORD_NAME = re.compile(r"^[0-9a-f]{24}\.json$")  # <trial id>.json


def _mean_std(values: Sequence[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()) if len(a) else math.nan,
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n": int(len(a)), "values": a.tolist()}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class SweepResult:
    """What a sweep produced: one record per trial, in grid order (config, then repeat).

    Each record is the trial's JSON: ``id``, ``trial``, ``config``, ``repeat``, ``seed``,
    ``keys``, ``source`` (a hash of the trial's source), ``status`` (``"ok"``/``"error"``),
    ``metrics``, ``error``, ``traceback``,
    ``seconds``, ``worker``, ``arrays`` (names in the ``.npz``) and ``cached`` (found in the
    folder rather than run now; not stored).

    >>> import fnn
    >>> def trial(config, key):
    ...     return {"loss": config["lr"] * (1 + fnn.rng(key).random())}
    >>> result = fnn.sweep(trial, {"lr": [0.1, 1.0]}, repeats=2, client="inline",
    ...                    progress=False)
    >>> [(row["lr"], row["loss"]["n"]) for row in result.summary()]
    [(0.1, 2), (1.0, 2)]
    """

    records: list[dict]
    folder: Path | None = None
    ran: int = 0
    skipped: int = 0
    seconds: float = 0.0  # wall clock of the sweep call (cluster start-up included)
    workers: int = 1
    where: str = "in-process"
    _arrays: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> list[dict]:
        """The records of the trials that finished (status ``"ok"``)."""
        return [r for r in self.records if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict]:
        """The records of the trials that raised (status ``"error"``)."""
        return [r for r in self.records if r["status"] != "ok"]

    def configs(self) -> list[dict]:
        """The distinct configs, in grid order."""
        seen, out = set(), []
        for r in self.records:
            c = canonical(r["config"])
            if c not in seen:
                seen.add(c)
                out.append(r["config"])
        return out

    def by_config(self) -> list[tuple[dict, list[dict]]]:
        """``[(config, [records of its repeats, by repeat])]`` in grid order."""
        groups: dict[str, tuple[dict, list[dict]]] = {}
        for r in self.records:
            groups.setdefault(canonical(r["config"]), (r["config"], []))[1].append(r)
        return [(c, sorted(rs, key=lambda r: r["repeat"])) for c, rs in groups.values()]

    def rows(self) -> list[dict]:
        """One flat dict per trial: config columns, ``repeat``, ``status``, ``seconds`` and the
        metrics' top-level entries (a table for pandas, CSV or the plotting helpers)."""
        return [{**r["config"], "repeat": r["repeat"], "status": r["status"],
                 "seconds": r["seconds"], **(r["metrics"] or {})} for r in self.records]

    def summary(self, metrics: Sequence[str] | None = None) -> list[dict]:
        """One dict per config: its columns, ``n`` (finished repeats), ``failed``, and for every
        numeric top-level metric (or those named) ``{"mean", "std", "n", "values"}`` over the
        finished repeats (``std`` with ddof=1, 0 for one repeat)."""
        names = list(metrics) if metrics is not None else list(dict.fromkeys(
            k for r in self.ok for k, v in r["metrics"].items() if _is_number(v)))
        out = []
        for config, recs in self.by_config():
            good = [r for r in recs if r["status"] == "ok"]
            row = {**config, "n": len(good), "failed": len(recs) - len(good)}
            for m in names:
                values = [r["metrics"][m] for r in good
                          if _is_number(r["metrics"].get(m)) or r["metrics"].get(m) is None]
                row[m] = _mean_std([math.nan if v is None else v for v in values])
            out.append(row)
        return out

    def curves(self, x: str, metric: str, by: str | None = None) \
            -> tuple[list, dict[str, list[float]], dict[str, list[float]]]:
        """``(values, series, errors)`` for ``fnn.plot.sweep(values, series, errors=errors)``:
        the mean and std over the repeats of ``metric`` against the config column ``x``, one
        series per value of the column ``by`` (or one series named ``metric``). Every config
        must be told apart by ``x`` and ``by``.

        >>> r = SweepResult([{"config": {"lr": lr, "act": a}, "repeat": 0, "status": "ok",
        ...                   "metrics": {"acc": lr * k}, "seconds": 0.0}
        ...                  for k, a in ((1, "tanh"), (2, "relu")) for lr in (0.1, 1.0)])
        >>> r.curves("lr", "acc", by="act")
        ([0.1, 1.0], {'tanh': [0.1, 1.0], 'relu': [0.2, 2.0]}, {'tanh': [0.0, 0.0], 'relu': [0.0, 0.0]})
        """
        rows = self.summary([metric])
        values = list(dict.fromkeys(row[x] for row in rows))
        names = list(dict.fromkeys(str(row[by]) for row in rows)) if by else [metric]
        series = {n: [math.nan] * len(values) for n in names}
        errors = {n: [math.nan] * len(values) for n in names}
        filled = set()
        for row in rows:
            n, i = (str(row[by]) if by else metric), values.index(row[x])
            if (n, i) in filled:
                raise ValueError(f"curves: several configs at {x}={row[x]!r}"
                                 + (f", {by}={row[by]!r}" if by else "")
                                 + "; select the records of one value of the other columns")
            filled.add((n, i))
            series[n][i], errors[n][i] = row[metric]["mean"], row[metric]["std"]
        return values, series, errors

    def table(self, metrics: Sequence[str] | None = None, digits: int = 4) -> str:
        """The summary as a Markdown table: config columns, then ``mean ± std`` per metric."""
        rows = self.summary(metrics)
        if not rows:
            return ""
        columns = list(self.configs()[0])
        names = [k for k, v in rows[0].items() if isinstance(v, dict) and "mean" in v]
        lines = ["| " + " | ".join([*columns, "n", *names]) + " |",
                 "|" + "---|" * (len(columns) + 1 + len(names))]
        for row in rows:
            cells = [str(row[c]) for c in columns] + [str(row["n"])]
            for m in names:
                s = row[m]
                cells.append(f"{s['mean']:.{digits}g}" + (f" ± {s['std']:.{digits}g}"
                                                           if s["n"] > 1 else ""))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def arrays(self, record: dict) -> dict:
        """The arrays a trial returned, as the nested dict it returned (read from its ``.npz``
        with ``allow_pickle=False``, or kept in memory when the sweep had no folder)."""
        if record["id"] in self._arrays:
            return self._arrays[record["id"]]
        if not record.get("arrays"):
            return {}
        if self.folder is None:
            raise FileNotFoundError(f"trial {record['id']}: its arrays were not kept")
        with np.load(self.folder / f"{record['id']}.npz", allow_pickle=False) as npz:
            return unflatten({k: npz[k] for k in npz.files})

    def info(self) -> dict:
        """JSON-ready facts about the run (for an experiment's results.json)."""
        return {"trials": len(self.records), "ran": self.ran, "skipped": self.skipped,
                "failed": len(self.failed), "workers": self.workers, "where": self.where,
                "seconds": round(self.seconds, 2),
                "folder": str(self.folder) if self.folder is not None else None}

    def raise_failed(self) -> SweepResult:
        """Raise ``RuntimeError`` naming the failed trials (with the first traceback); return
        self when every trial finished."""
        bad = self.failed
        if bad:
            first = bad[0]
            raise RuntimeError(
                f"{len(bad)} of {len(self.records)} trials failed; first: config "
                f"{first['config']} repeat {first['repeat']}: {first['error']}\n"
                f"{first.get('traceback') or ''}")
        return self


def load_sweep(folder: str | os.PathLike) -> SweepResult:
    """Every trial recorded in ``folder`` (finished or failed), sorted by config then repeat.
    Reading never unpickles; ``.json`` files that are not readable records (truncated by a
    full disk, damaged) are left out with a warning naming them.

    >>> import tempfile, fnn
    >>> def trial(config, key):
    ...     return {"twice": 2 * config["x"]}
    >>> folder = tempfile.mkdtemp()
    >>> _ = fnn.sweep(trial, {"x": [1, 2]}, folder=folder, client="inline", progress=False)
    >>> [r["metrics"]["twice"] for r in fnn.load_sweep(folder).records]
    [2, 4]
    """
    folder = Path(folder)
    records, unread = [], []
    for p in sorted(folder.glob("*.json")):
        r = read_record(p)
        if r is not None:
            records.append(r)
        elif _RECORD_NAME.match(p.name):  # a trial's record (by its name), unreadable
            unread.append(p.name)
    if unread:
        warnings.warn(f"load_sweep: {len(unread)} file(s) in {folder} are not readable trial "
                      f"records (truncated or damaged) and are left out: "
                      f"{', '.join(unread[:5])}{', ...' if len(unread) > 5 else ''}",
                      RuntimeWarning, stacklevel=2)
    for r in records:
        r["cached"] = True
    records.sort(key=lambda r: (canonical(r["config"]), r["repeat"]))
    return SweepResult(records, folder=folder, skipped=len(records), where="files")
