"""Sweeps: a trial function over a grid of configs x repeats, on Dask or in-process, resumable.

The package by job: :mod:`~fnn.experiments.identity` (configs, :func:`grid`, :func:`trial_id`,
:func:`trial_key`), :mod:`~fnn.experiments.records` (the result files),
:mod:`~fnn.experiments.results` (:class:`SweepResult`, :func:`load_sweep`) and
:mod:`~fnn.experiments.runner` (:func:`sweep`, in-process or on Dask).

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

from fnn.experiments.identity import KEY_SCHEMES as KEY_SCHEMES
from fnn.experiments.identity import grid, trial_id, trial_key
from fnn.experiments.records import EMPTY as EMPTY
from fnn.experiments.records import RECORD_FORMAT as RECORD_FORMAT
from fnn.experiments.results import SweepResult, load_sweep
from fnn.experiments.runner import sweep

__all__ = ["SweepResult", "grid", "load_sweep", "sweep", "trial_id", "trial_key"]
