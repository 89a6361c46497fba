"""Sweeps: a trial function over a grid of configs x repeats, on Dask or in-process, resumable.

``sweep(trial, configs, repeats=, seed=, folder=)`` runs ``trial(config, key) -> metrics`` for
every config (a list of dicts, or a dict of lists whose cartesian product is taken, see
:func:`grid`) and every repeat, and returns a :class:`SweepResult`.

* **Keys.** Each trial's key is derived from ``seed`` and the trial's identity, never from the
  order it runs in (:func:`trial_key`): ``keys="per_trial"`` (default) folds the hash of
  ``(config, repeat)`` into ``fnn.key(seed)``, so every trial draws independently;
  ``keys="per_repeat"`` gives every config of repeat ``r`` the key ``fnn.key(seed + r)``
  (common random numbers: the variants of a repeat start from the same draws, as the report's
  scripts compare initialisations "with the same seeds"). Either way the results are the same
  whatever the worker count or scheduling order: a 2-worker cluster and the in-process loop
  give the same numbers bit for bit (BLAS runs on ``blas_threads=1`` thread in both).
* **Where it runs.** ``client=None`` starts an embedded Dask ``LocalCluster`` on 127.0.0.1
  (``workers`` processes, default one per core, one thread each, no dashboard) and closes it
  afterwards; ``client=`` a ``dask.distributed.Client`` or a scheduler address
  (``"tcp://host:8786"``) runs on that cluster unchanged; ``client="inline"`` or
  ``workers=1`` runs a plain loop in the calling process (debugging; same results).
  Dask is imported only here, when a cluster is used: ``import fnn`` does not load it.
* **Trials must be importable on the workers**: a module-level function, pickled by reference
  (module and name). Embedded LocalCluster workers are spawned with the caller's ``sys.path``,
  so a module the caller imported is found. Workers started on their own (``dask worker``, Slurm,
  Kubernetes) need the module installed, or shipped: ``ship=[path/to/module.py, ...]``
  uploads each file to every worker, present and future (Dask's ``Client.upload_file``,
  restarted workers included), into a folder on the workers' ``sys.path``. Functions defined in
  a script's ``__main__`` are pickled by value (cloudpickle), but what they import is not.
* **Nothing lost.** With ``folder=``, every finished trial is written as it completes, by the
  calling process (workers need no shared disk): ``<id>.json`` (config, repeat, seed, status
  ``"ok"``/``"error"``, metrics, error and traceback, seconds, worker) and, when the trial
  returns arrays, ``<id>.npz`` first; both atomically (temporary file in the folder, fsync,
  ``os.replace``, fsync of the folder), mode 0644. ``<id>`` is a hash of the trial's name,
  config, repeat, seed and key scheme. Running the same sweep again skips the trials whose
  ``.json`` says ``"ok"`` (and re-runs failed ones unless ``rerun_failed=False``); a trial that
  raises is recorded with its traceback and the sweep goes on; a worker process that dies has
  its trial rescheduled by Dask on another worker (up to the scheduler's
  ``distributed.scheduler.allowed-failures``, then recorded as an error).
* **What a trial returns**: a dict of JSON-able metrics (numbers, strings, lists, nested dicts;
  numpy scalars and arrays are converted), or ``{"metrics": {...}, "arrays": {...}}`` whose
  ``arrays`` (a nested dict of numeric arrays, e.g. params) go to the ``.npz`` and are read
  back with :meth:`SweepResult.arrays` (``allow_pickle=False``).

>>> def trial(config, key):  # a module-level function in real use (see above)
...     x = fnn.rng(key).normal(size=100)
...     return {"mean": float(config["scale"] * x.mean())}
>>> import fnn
>>> result = fnn.sweep(trial, {"scale": [1.0, 2.0]}, repeats=3, seed=0, client="inline",
...                    progress=False)
>>> len(result.records), result.ran, result.skipped
(6, 6, 0)
>>> [row["scale"] for row in result.summary()]
[1.0, 2.0]
>>> result.summary()[0]["mean"]["n"]
3
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fnn.io import atomic_write
from fnn.keys import Key, fold_in
from fnn.keys import key as make_key

KEY_SCHEMES = ("per_trial", "per_repeat")
RECORD_FORMAT = "fnn-trial/1"

__all__ = ["SweepResult", "grid", "load_sweep", "sweep", "trial_id", "trial_key"]


# ----------------------------------------------------------------------------- configs, keys

def grid(**axes: Sequence) -> list[dict]:
    """The cartesian product of ``axes`` as a list of configs, the last axis varying fastest.

    >>> grid(lr=[0.1, 0.01], act=["tanh", "relu"])
    [{'lr': 0.1, 'act': 'tanh'}, {'lr': 0.1, 'act': 'relu'}, {'lr': 0.01, 'act': 'tanh'}, {'lr': 0.01, 'act': 'relu'}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"grid: axis {name!r} must be a list of values, got {values!r}")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[n]) for n in names))]


def _configs(configs) -> list[dict]:
    if isinstance(configs, Mapping):
        return grid(**configs)
    out = list(configs)
    for i, c in enumerate(out):
        if not isinstance(c, Mapping):
            raise TypeError(f"sweep: config {i} must be a dict, got {type(c).__name__}")
    return [dict(c) for c in out]


def _plain(value, where: str = "value"):
    """JSON-ready copy: numpy scalars/arrays to Python numbers/lists, tuples to lists."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where}: object arrays are not JSON")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: {type(value).__name__} is not JSON (numbers, strings, lists, dicts)")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def trial_id(name: str, config: Mapping, repeat: int, seed: int, keys: str = "per_trial") -> str:
    """The hex id of a trial (its result files are ``<id>.json`` / ``<id>.npz``): a SHA-256 of
    the trial's name, config (canonical JSON), repeat, seed and key scheme.

    >>> trial_id("m.trial", {"lr": 0.1}, 0, 0) == trial_id("m.trial", {"lr": 0.1}, 0, 0)
    True
    >>> trial_id("m.trial", {"lr": 0.1}, 0, 0) != trial_id("m.trial", {"lr": 0.1}, 1, 0)
    True
    """
    text = _canonical({"trial": name, "config": _plain(config, "config"), "repeat": int(repeat),
                       "seed": int(seed), "keys": keys})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def trial_key(seed: int, config: Mapping, repeat: int, keys: str = "per_trial") -> Key:
    """The key a trial receives: ``fold_in(key(seed), n)`` with ``n`` a 64-bit integer read from
    the SHA-256 of ``(config, repeat)`` (``"per_trial"``), or ``key(seed + repeat)`` shared by
    every config of the repeat (``"per_repeat"``). Stable across processes and machines
    (Python's ``hash()`` is salted per process and is not used).

    >>> a = trial_key(0, {"lr": 0.1}, 0)
    >>> b = trial_key(0, {"lr": 0.1}, 0)
    >>> bool((np.random.default_rng(a).random(3) == np.random.default_rng(b).random(3)).all())
    True
    >>> trial_key(5, {"lr": 0.1}, 2, "per_repeat").entropy
    7
    """
    if keys not in KEY_SCHEMES:
        raise ValueError(f"keys must be one of {', '.join(KEY_SCHEMES)}; got {keys!r}")
    if keys == "per_repeat":
        return make_key(int(seed) + int(repeat))
    text = _canonical({"config": _plain(config, "config"), "repeat": int(repeat)})
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return fold_in(make_key(int(seed)), n)


def _trial_name(trial: Callable) -> str:
    module = getattr(trial, "__module__", None) or "?"
    qualname = getattr(trial, "__qualname__", None) or getattr(trial, "__name__", repr(trial))
    return f"{module}.{qualname}"


# ----------------------------------------------------------------------------- running one trial

@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


EMPTY = ":empty"  # npz entry listing the paths of empty dicts (layers without params)


def _flatten_arrays(tree) -> dict[str, np.ndarray]:
    """``{"a/b": array}`` from a nested dict of arrays; empty dicts are listed under
    :data:`EMPTY` so that :func:`_unflatten` gives back the same tree."""
    out: dict[str, np.ndarray] = {}
    empty: list[str] = []

    def walk(node, prefix: str) -> None:
        if not isinstance(node, Mapping):
            raise TypeError("arrays must be a (nested) dict of arrays")
        if not node and prefix:
            empty.append(prefix[:-1])
        for k, v in node.items():
            if not isinstance(k, str) or "/" in k or not k or k.startswith(":"):
                raise TypeError(f"arrays: keys must be non-empty strings without '/' or a "
                                f"leading ':', got {k!r}")
            path = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, path + "/")
            else:
                a = np.asarray(v)
                if a.dtype == object:
                    raise TypeError(f"arrays: {path} is an object array; only numeric arrays "
                                    "are saved")
                out[path] = a

    walk(tree, "")
    if empty:
        out[EMPTY] = np.array(empty, dtype=str)
    return out


def _run_trial(trial: Callable, config: dict, repeat: int, seed: int, keys: str,
               blas_threads: int | None) -> tuple[dict, dict | None]:
    """Run one trial where it was sent (a Dask worker or the calling process); never raises
    for the trial's own errors: they come back as a record with status ``"error"``."""
    started = time.time()
    t0 = time.perf_counter()
    arrays = None
    record: dict[str, Any] = {"status": "ok", "metrics": None, "error": None, "traceback": None}
    try:
        k = trial_key(seed, config, repeat, keys)
        if blas_threads is None:
            out = trial(dict(config), k)
        else:
            with _blas_controller().limit(limits=blas_threads, user_api="blas"):
                out = trial(dict(config), k)
        if not isinstance(out, Mapping):
            raise TypeError(f"a trial must return a dict of metrics, got {type(out).__name__}")
        if "arrays" in out:
            extra = set(out) - {"metrics", "arrays"}
            if extra:
                raise TypeError("a trial returning arrays must return {'metrics': {...}, "
                                f"'arrays': {{...}}}}; unexpected keys {sorted(extra)}")
            metrics = out.get("metrics") or {}
            arrays = _flatten_arrays(out["arrays"]) or None
        else:
            metrics = out
        record["metrics"] = _plain(metrics, "metrics")
        json.dumps(record["metrics"])  # fails here, on the worker, if something is not JSON
    except Exception as e:  # a failing trial is recorded, the sweep goes on
        record.update(status="error", metrics=None, error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc())
        arrays = None
    record.update(seconds=round(time.perf_counter() - t0, 6), started=started,
                  worker=f"{socket.gethostname()}:{os.getpid()}",
                  arrays=sorted(k for k in arrays if k != EMPTY) if arrays else [])
    return record, arrays


# ----------------------------------------------------------------------------- result files

def _write_trial(folder: Path, record: dict, arrays: dict | None) -> None:
    if arrays:  # arrays first: a trial counts as finished once its .json exists
        atomic_write(folder / f"{record['id']}.npz", lambda f: np.savez(f, **arrays), where="sweep")
    text = json.dumps(record, indent=1, allow_nan=True) + "\n"
    atomic_write(folder / f"{record['id']}.json", lambda f: f.write(text.encode()), where="sweep")


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: treated as not finished, run again
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    out: dict = {}
    paths = [(p, {}) for p in (flat[EMPTY].tolist() if EMPTY in flat else [])]
    for path, a in sorted([*((p, a) for p, a in flat.items() if p != EMPTY), *paths]):
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = a
    return out


# ----------------------------------------------------------------------------- results

def _mean_std(values: Sequence[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()) if len(a) else math.nan,
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n": int(len(a)), "values": a.tolist()}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class SweepResult:
    """What a sweep produced: one record per trial, in grid order (config, then repeat).

    Each record is the trial's JSON: ``id``, ``trial``, ``config``, ``repeat``, ``seed``,
    ``keys``, ``status`` (``"ok"``/``"error"``), ``metrics``, ``error``, ``traceback``,
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
        return [r for r in self.records if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] != "ok"]

    def configs(self) -> list[dict]:
        """The distinct configs, in grid order."""
        seen, out = set(), []
        for r in self.records:
            c = _canonical(r["config"])
            if c not in seen:
                seen.add(c)
                out.append(r["config"])
        return out

    def by_config(self) -> list[tuple[dict, list[dict]]]:
        """``[(config, [records of its repeats, by repeat])]`` in grid order."""
        groups: dict[str, tuple[dict, list[dict]]] = {}
        for r in self.records:
            groups.setdefault(_canonical(r["config"]), (r["config"], []))[1].append(r)
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
            return _unflatten({k: npz[k] for k in npz.files})

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
    Reading never unpickles.

    >>> import tempfile, fnn
    >>> def trial(config, key):
    ...     return {"twice": 2 * config["x"]}
    >>> folder = tempfile.mkdtemp()
    >>> _ = fnn.sweep(trial, {"x": [1, 2]}, folder=folder, client="inline", progress=False)
    >>> [r["metrics"]["twice"] for r in fnn.load_sweep(folder).records]
    [2, 4]
    """
    folder = Path(folder)
    records = [r for p in sorted(folder.glob("*.json")) if (r := _read_record(p)) is not None]
    for r in records:
        r["cached"] = True
    records.sort(key=lambda r: (_canonical(r["config"]), r["repeat"]))
    return SweepResult(records, folder=folder, skipped=len(records), where="files")


# ----------------------------------------------------------------------------- the sweep

def _in_process(n_workers: int | None, client) -> bool:
    return (isinstance(client, str) and client == "inline") or (client is None and n_workers == 1)


def sweep(trial: Callable[[dict, Key], Mapping], configs: Mapping[str, Sequence] | Iterable[Mapping],
          *, repeats: int = 1, seed: int = 0, keys: str = "per_trial",
          folder: str | os.PathLike | None = None, client=None, workers: int | None = None,
          ship: Sequence[str | os.PathLike] = (), retries: int = 1, rerun_failed: bool = True,
          blas_threads: int | None = 1, progress: bool = True, name: str | None = None,
          on_result: Callable[[dict], None] | None = None) -> SweepResult:
    """Run ``trial(config, key)`` for every config x repeat; see the module docstring.

    ``configs``: a list of dicts, or a dict of lists (their cartesian product, :func:`grid`).
    ``folder``: where results are written and found again (``None``: kept in memory only).
    ``client``: ``None`` (embedded LocalCluster of ``workers`` processes, default one per
    core), ``"inline"`` (plain loop here; also ``workers=1``), a ``distributed.Client`` or a
    scheduler address. ``ship``: ``.py``/``.zip``/``.egg`` files the workers must import the
    trial from (uploaded with ``Client.upload_file``). ``retries``: Dask retries of a task
    whose execution raised outside the trial (the trial's own exceptions are recorded, not
    retried). ``blas_threads``: BLAS threads during each trial (``None``: leave as is).
    ``on_result(record)`` is called in this process after each trial is written.
    Duplicate configs are run once.

    >>> import fnn
    >>> def trial(config, key):  # module-level in real use, so Dask workers can import it
    ...     return {"draw": float(fnn.rng(key).random()) * config["scale"]}
    >>> a = fnn.sweep(trial, {"scale": [1, 10]}, repeats=2, seed=3, client="inline",
    ...               progress=False)
    >>> b = fnn.sweep(trial, [{"scale": 10}, {"scale": 1}], repeats=2, seed=3, client="inline",
    ...               progress=False)
    >>> sorted(r["metrics"]["draw"] for r in a.records) == sorted(r["metrics"]["draw"] for r in b.records)
    True
    """
    if keys not in KEY_SCHEMES:
        raise ValueError(f"keys must be one of {', '.join(KEY_SCHEMES)}; got {keys!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    t_start = time.perf_counter()
    name = name or _trial_name(trial)
    folder = Path(folder) if folder is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    # every trial of the grid, in grid order; duplicates once
    todo: dict[str, tuple[dict, int]] = {}
    for config in _configs(configs):
        config = _plain(config, "config")
        for r in range(repeats):
            todo.setdefault(trial_id(name, config, r, seed, keys), (config, r))
    records: dict[str, dict] = {}
    if folder is not None:
        for tid in todo:
            rec = _read_record(folder / f"{tid}.json")
            if rec is not None and (rec["status"] == "ok" or not rerun_failed):
                rec["cached"] = True
                records[tid] = rec
    pending = [(tid, c, r) for tid, (c, r) in todo.items() if tid not in records]
    result = SweepResult([], folder=folder, skipped=len(records))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), initial=len(records), desc=name.rsplit(".", 1)[-1],
               unit="trial", disable=not progress, dynamic_ncols=True)
    kept_arrays: dict[str, dict] = {}

    def finish(tid: str, config: dict, repeat: int, record: dict, arrays: dict | None) -> None:
        record = {"format": RECORD_FORMAT, "id": tid, "trial": name, "config": config,
                  "repeat": repeat, "seed": seed, "keys": keys, **record}
        if folder is not None:
            _write_trial(folder, record, arrays)
        elif arrays:
            kept_arrays[tid] = _unflatten(arrays)
        record["cached"] = False
        records[tid] = record
        result.ran += 1
        bar.update(1)
        if record["status"] != "ok":
            bar.set_postfix(failed=sum(r["status"] != "ok" for r in records.values()))
        if on_result is not None:
            on_result(record)

    try:
        if _in_process(workers, client):
            result.where, result.workers = "in-process", 1
            for tid, config, r in pending:
                record, arrays = _run_trial(trial, config, r, seed, keys, blas_threads)
                finish(tid, config, r, record, arrays)
        elif pending:
            _run_on_dask(trial, pending, seed, keys, blas_threads, client, workers, ship,
                         retries, finish, result)
        else:
            result.where, result.workers = "nowhere: every trial was in the folder", 0
    finally:
        bar.close()
    result.records = [records[tid] for tid in todo if tid in records]
    result._arrays = kept_arrays
    result.seconds = time.perf_counter() - t_start
    return result


def _failed_task(fut) -> dict:
    """The record of a task that did not finish (its worker died too often, or it was
    cancelled): status ``"error"`` with Dask's exception."""
    try:
        exc = fut.exception()
        tb = "".join(traceback.format_exception(exc))
    except Exception as e:  # cancelled
        exc, tb = e, traceback.format_exc()
    return {"status": "error", "metrics": None, "error": f"{type(exc).__name__}: {exc}",
            "traceback": tb, "seconds": None, "started": None, "worker": None, "arrays": []}


def _run_on_dask(trial, pending, seed, keys, blas_threads, client, workers, ship, retries,
                 finish, result) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = own_client = None
    try:
        if client is None:
            n = workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = own_client = Client(cluster)
            result.where = f"LocalCluster, {n} worker processes"
        elif isinstance(client, str):
            client = own_client = Client(client)
            result.where = f"scheduler {client.scheduler.address}"
        else:
            result.where = f"scheduler {client.scheduler.address}"
        for path in ship:
            client.upload_file(os.fspath(path), load=False)
        result.workers = len(client.scheduler_info().get("workers", {})) or 1
        futures = {}
        run = uuid.uuid4().hex[:8]  # task keys unique to this call: a rerun is a new task
        for tid, config, r in pending:
            fut = client.submit(_run_trial, trial, config, r, seed, keys, blas_threads,
                                key=f"fnn-trial-{tid}-{run}", pure=False, retries=retries)
            futures[fut.key] = (fut, tid, config, r)
        try:
            # results in batches: one gather (one round trip) for whatever finished meanwhile
            for batch in as_completed([f for f, *_ in futures.values()]).batches():
                done = [f for f in batch if f.status == "finished"]
                values = dict(zip((f.key for f in done), client.gather(done))) if done else {}
                for fut in batch:
                    _, tid, config, r = futures.pop(fut.key)
                    if fut.key in values:
                        record, arrays = values[fut.key]
                    else:  # e.g. KilledWorker: the task killed its worker too often
                        record, arrays = _failed_task(fut), None
                    fut.release()
                    finish(tid, config, r, record, arrays)
        finally:
            for fut, *_ in futures.values():  # interrupted: stop what is left
                fut.cancel()
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
