"""Running a sweep: every trial of the grid not already finished in the folder, in this
process (``client="inline"``) or on Dask (an embedded ``LocalCluster``, a ``Client`` or a
scheduler address), each result recorded by this process as it arrives. Dask is imported
here, inside the functions that use a cluster, so ``import fnn`` does not load it."""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fnn.experiments.identity import (
    KEY_SCHEMES,
    canonical,
    config_list,
    plain,
    source_hash,
    trial_id,
    trial_key,
    trial_name,
)
from fnn.experiments.records import (
    EMPTY,
    RECORD_FORMAT,
    flatten_arrays,
    read_record,
    unflatten,
    write_trial,
)
from fnn.experiments.results import SweepResult
from fnn.keys import Key
from fnn.validate import boolean, integer, one_of, positive_int

__all__ = ["sweep"]

#: a trial to run: its id, config and repeat
Pending = tuple[str, dict, int]
#: what is done with each trial's result: finish(id, config, repeat, record, arrays)
Finish = Callable[[str, dict, int, dict, Any], None]


# ----------------------------------------------------------------------------- one trial

@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _metrics_and_arrays(out: Any) -> tuple[Any, dict | None]:
    """A trial's return value split into its metrics and its flattened arrays (or None)."""
    if not isinstance(out, Mapping):
        raise TypeError(f"a trial must return a dict of metrics, got {type(out).__name__}")
    if "arrays" not in out:
        return out, None
    extra = set(out) - {"metrics", "arrays"}
    if extra:
        raise TypeError("a trial returning arrays must return {'metrics': {...}, "
                        f"'arrays': {{...}}}}; unexpected keys {sorted(extra)}")
    return out.get("metrics") or {}, flatten_arrays(out["arrays"]) or None


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
        metrics, arrays = _metrics_and_arrays(out)
        record["metrics"] = plain(metrics, "metrics")
        json.dumps(record["metrics"])  # fails here, on the worker, if something is not JSON
    except Exception as e:  # a failing trial is recorded, the sweep goes on
        record.update(status="error", metrics=None, error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc())
        arrays = None
    record.update(seconds=round(time.perf_counter() - t0, 6), started=started,
                  worker=f"{socket.gethostname()}:{os.getpid()}",
                  arrays=sorted(k for k in arrays if k != EMPTY) if arrays else [])
    return record, arrays


# ----------------------------------------------------------------------------- the sweep

def _plan(name: str, configs: Mapping[str, Sequence] | Iterable[Mapping], repeats: int,
          seed: int, keys: str) -> dict[str, tuple[dict, int]]:
    """Every trial of the grid, ``{id: (config, repeat)}`` in grid order; duplicates once."""
    todo: dict[str, tuple[dict, int]] = {}
    seen: dict[str, int] = {}
    for config in config_list(configs):
        config = plain(config, "config")
        seen[canonical(config)] = seen.get(canonical(config), 0) + 1
        for r in range(repeats):
            todo.setdefault(trial_id(name, config, r, seed, keys), (config, r))
    twice = [f"{c} ({n} times)" for c, n in seen.items() if n > 1]
    if twice:
        warnings.warn(f"sweep: {len(twice)} config(s) given more than once run once each: "
                      f"{'; '.join(twice[:3])}{'; ...' if len(twice) > 3 else ''}",
                      UserWarning, stacklevel=3)
    return todo


def _finished(folder: Path | None, todo: Iterable[str], rerun_failed: bool,
              source: str | None) -> dict[str, dict]:
    """The records in ``folder`` of the trials ``todo`` that need not run again: not those of
    another version of the trial's code (``source``, its hash), which run again, with a
    warning."""
    records: dict[str, dict] = {}
    changed = []
    if folder is not None:
        for tid in todo:
            rec = read_record(folder / f"{tid}.json")
            if rec is None or (rec["status"] != "ok" and rerun_failed):
                continue
            if source is not None and rec.get("source", source) != source:
                changed.append(tid)
                continue
            rec["cached"] = True
            records[tid] = rec
    if changed:
        warnings.warn(f"sweep: the trial's code changed since {len(changed)} of its results "
                      f"in {folder} were recorded (its source hash differs); running them "
                      "again", UserWarning, stacklevel=3)
    return records


class _Recorder:
    """What happens to each result as it arrives, in the calling process: the record is
    completed, written to the folder (or its arrays kept in memory), counted, shown on the
    progress bar and passed to ``on_result``."""

    def __init__(self, name: str, seed: int, keys: str, folder: Path | None,
                 records: dict[str, dict], result: SweepResult, bar: Any,
                 on_result: Callable[[dict], None] | None, source: str | None = None):
        self.name, self.seed, self.keys, self.folder = name, seed, keys, folder
        self.source = source
        self.records, self.result, self.bar, self.on_result = records, result, bar, on_result
        self.kept_arrays: dict[str, dict] = {}

    def __call__(self, tid: str, config: dict, repeat: int, record: dict,
                 arrays: dict | None) -> None:
        record = {"format": RECORD_FORMAT, "id": tid, "trial": self.name, "config": config,
                  "repeat": repeat, "seed": self.seed, "keys": self.keys,
                  "source": self.source, **record}
        if self.folder is not None:
            write_trial(self.folder, record, arrays)
        elif arrays:
            self.kept_arrays[tid] = unflatten(arrays)
        record["cached"] = False
        self.records[tid] = record
        self.result.ran += 1
        self.bar.update(1)
        if record["status"] != "ok":
            self.bar.set_postfix(failed=sum(r["status"] != "ok" for r in self.records.values()))
        if self.on_result is not None:
            self.on_result(record)


def _in_process(n_workers: int | None, client: Any) -> bool:
    return (isinstance(client, str) and client == "inline") or (client is None and n_workers == 1)


def _checked(repeats: Any, seed: Any, keys: str, workers: Any, retries: Any,
             blas_threads: Any, rerun_failed: Any, progress: Any) -> tuple[int, int]:
    """Refuse bad arguments before anything runs; ``(repeats, seed)`` as ints."""
    one_of("sweep", "keys", keys, KEY_SCHEMES)
    repeats = positive_int("sweep", "repeats", repeats)
    seed = integer("sweep", "seed", seed, minimum=0)
    if workers is not None:
        positive_int("sweep", "workers", workers)
    integer("sweep", "retries", retries, minimum=0)
    if blas_threads is not None:
        positive_int("sweep", "blas_threads", blas_threads)
    boolean("sweep", "rerun_failed", rerun_failed)
    boolean("sweep", "progress", progress)
    return repeats, seed


def sweep(trial: Callable[[dict, Key], Mapping], configs: Mapping[str, Sequence] | Iterable[Mapping],
          *, repeats: int = 1, seed: int = 0, keys: str = "per_trial",
          folder: str | os.PathLike | None = None, client: Any = None,
          workers: int | None = None, ship: Sequence[str | os.PathLike] = (), retries: int = 1,
          rerun_failed: bool = True, blas_threads: int | None = 1, progress: bool = True,
          name: str | None = None, on_result: Callable[[dict], None] | None = None) -> SweepResult:
    """Run ``trial(config, key)`` for every config x repeat; see :mod:`fnn.experiments`.

    ``configs``: a list of dicts, or a dict of lists (their cartesian product, :func:`grid`).
    ``folder``: where results are written and found again (``None``: kept in memory only).
    ``client``: ``None`` (embedded LocalCluster of ``workers`` processes, default one per
    core), ``"inline"`` (plain loop here; also ``workers=1``), a ``distributed.Client`` or a
    scheduler address. ``ship``: ``.py``/``.zip``/``.egg`` files the workers must import the
    trial from (uploaded with ``Client.upload_file``). ``retries``: Dask retries of a task
    whose execution raised outside the trial (the trial's own exceptions are recorded, not
    retried). ``blas_threads``: BLAS threads during each trial (``None``: leave as is).
    ``on_result(record)`` is called in this process after each trial is written.
    Duplicate configs are run once (with a warning); an empty ``configs`` or grid axis is
    refused. Each record keeps a hash of the trial's source (``source``): a rerun after the
    trial's code changed runs the trials again, with a warning, instead of returning the old
    results as current (only the trial function's own source is hashed, not what it calls).
    On Dask, a trial module the workers cannot import is refused at once.

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
    repeats, seed = _checked(repeats, seed, keys, workers, retries, blas_threads, rerun_failed,
                             progress)
    t_start = time.perf_counter()
    name = name or trial_name(trial)
    path = Path(folder) if folder is not None else None
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    todo = _plan(name, configs, repeats, seed, keys)
    source = source_hash(trial)
    records = _finished(path, todo, rerun_failed, source)
    pending = [(tid, c, r) for tid, (c, r) in todo.items() if tid not in records]
    result = SweepResult([], folder=path, skipped=len(records))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), initial=len(records), desc=name.rsplit(".", 1)[-1],
               unit="trial", disable=not progress, dynamic_ncols=True)
    finish = _Recorder(name, seed, keys, path, records, result, bar, on_result, source)
    try:
        if _in_process(workers, client):
            result.where, result.workers = "in-process", 1
            for tid, config, r in pending:
                finish(tid, config, r, *_run_trial(trial, config, r, seed, keys, blas_threads))
        elif pending:
            _run_on_dask(trial, pending, seed, keys, blas_threads, client, workers, ship,
                         retries, finish, result)
        else:
            result.where, result.workers = "nowhere: every trial was in the folder", 0
    finally:
        bar.close()
    result.records = [records[tid] for tid in todo if tid in records]
    result._arrays = finish.kept_arrays
    result.seconds = time.perf_counter() - t_start
    return result


# ----------------------------------------------------------------------------- on Dask

def _failed_task(fut: Any) -> dict:
    """The record of a task that did not finish (its worker died too often, or it was
    cancelled): status ``"error"`` with Dask's exception."""
    try:
        exc = fut.exception()
        tb = "".join(traceback.format_exception(exc))
    except Exception as e:  # cancelled
        exc, tb = e, traceback.format_exc()
    return {"status": "error", "metrics": None, "error": f"{type(exc).__name__}: {exc}",
            "traceback": tb, "seconds": None, "started": None, "worker": None, "arrays": []}


def _connect(client: Any, workers: int | None, result: SweepResult) -> tuple[Any, Any, Any]:
    """``(client, own_client, cluster)``: the given client, a client of the scheduler at the
    given address, or a new LocalCluster on 127.0.0.1 and its client (the last two are ours
    to close); notes in ``result.where`` where the trials run."""
    from distributed import Client, LocalCluster

    if client is None:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        try:
            own_local: Any = Client(cluster)
        except BaseException:
            cluster.close()
            raise
        result.where = f"LocalCluster, {n} worker processes"
        return own_local, own_local, cluster
    if isinstance(client, str):
        own: Any = Client(client)
        result.where = f"scheduler {own.scheduler.address}"
        return own, own, None
    result.where = f"scheduler {client.scheduler.address}"
    return client, None, None


def _gather(client: Any, futures: dict[str, tuple[Any, str, dict, int]], finish: Finish) -> None:
    """Hand every result to ``finish`` as it arrives: one gather (one round trip) for whatever
    finished meanwhile; a task that did not finish (e.g. KilledWorker: it killed its worker
    too often) is recorded as an error. Interrupted: what is left is cancelled."""
    from distributed import as_completed

    try:
        for batch in as_completed([f for f, *_ in futures.values()]).batches():
            done = [f for f in batch if f.status == "finished"]
            values = dict(zip((f.key for f in done), client.gather(done))) if done else {}
            for fut in batch:
                _, tid, config, r = futures.pop(fut.key)
                if fut.key in values:
                    record, arrays = values[fut.key]
                else:
                    record, arrays = _failed_task(fut), None
                fut.release()
                finish(tid, config, r, record, arrays)
    finally:
        for fut, *_ in futures.values():
            fut.cancel()


def _check_importable(client: Any, trial: Callable) -> None:
    """Fail fast when the workers cannot import the trial's module (pickled by reference,
    the tasks would never start: the workers only log the error and the sweep hangs)."""
    import importlib

    module = getattr(trial, "__module__", None)
    if not module or module == "__main__" or sys.modules.get(module) is None:
        return  # pickled by value (cloudpickle): nothing to import
    try:
        client.submit(importlib.import_module, module, pure=False).result()
    except Exception as err:  # noqa: BLE001  (the worker's error, whatever it is)
        where = getattr(sys.modules[module], "__file__", None)
        raise ImportError(
            f"sweep: the Dask workers cannot import the trial's module {module!r}"
            + (f" ({where})" if where else "") + f": {type(err).__name__}: {err}. A module "
            "loaded by file path is not on the workers' sys.path: put its folder on sys.path "
            "(PYTHONPATH) before the cluster starts, install it, or pass "
            f"ship=[{where or 'path/to/module.py'!r}]", name=module) from None


def _run_on_dask(trial: Callable, pending: list[Pending], seed: int, keys: str,
                 blas_threads: int | None, client: Any, workers: int | None,
                 ship: Sequence[str | os.PathLike], retries: int, finish: Finish,
                 result: SweepResult) -> None:
    client, own_client, cluster = _connect(client, workers, result)
    try:
        for path in ship:
            client.upload_file(os.fspath(path), load=False)
        result.workers = len(client.scheduler_info().get("workers", {})) or 1
        _check_importable(client, trial)
        futures = {}
        run = uuid.uuid4().hex[:8]  # task keys unique to this call: a rerun is a new task
        for tid, config, r in pending:
            fut = client.submit(_run_trial, trial, config, r, seed, keys, blas_threads,
                                key=f"fnn-trial-{tid}-{run}", pure=False, retries=retries)
            futures[fut.key] = (fut, tid, config, r)
        _gather(client, futures, finish)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
