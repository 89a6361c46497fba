"""Plumbing shared by the reproduction scripts: command line, output folder, results JSON.

Every script ``examples/<name>.py`` has ``main(argv) -> dict`` and accepts ``--quick`` (tiny
settings for the tests; also on when the environment variable ``FNN_QUICK=1`` is set, which is
how the notebooks run in the test suite), ``--out`` (default ``results/<name>/``) and ``--seed``.
Full runs write ``results/<name>/results.json``; ``examples/make_results.py`` gathers them into
RESULTS.md.

The scripts whose experiments are grids of training runs (init_schemes, learning_rate,
activations, usps_conv1d, usps_conv1d_sweeps, denoising) run them with ``fnn.sweep``
(:func:`sweep` below): ``--workers N`` Dask worker processes on this machine (default one per
core; in-process in quick mode), ``--workers 1`` a plain loop here, ``--scheduler ADDRESS`` (or
a scheduler JSON file) an existing Dask cluster. Every finished run is kept in
``<out>/trials/``: a rerun after a crash or Ctrl-C only runs what is missing; ``--fresh`` starts
over.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("FNN_RESULTS", ROOT / "results"))  # tests point it at a tmp dir


def one_blas_thread(main: Callable) -> Callable:
    """Run ``main`` with BLAS on one thread: these matrices are small, and a second thread
    mostly waits (for a long time when other processes share the cores)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return main(*args, **kwargs)

    return wrapper


def quick_from_env() -> bool:
    return os.environ.get("FNN_QUICK", "") not in ("", "0")


def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"examples/{name}.py", description=description)
    p.add_argument("--quick", action="store_true", default=quick_from_env(),
                   help="tiny settings (smoke test); default when FNN_QUICK=1")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default results/{name})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def add_sweep_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--workers``, ``--scheduler``, ``--fresh``: where the script's grid of runs goes."""
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes on this machine (default: one per core; "
                        "in --quick mode 1); 1 runs the trials in this process")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler (tcp://host:8786) or its "
                        "--scheduler-file JSON; the workers need fnn installed and $FNN_DATA")
    p.add_argument("--fresh", action="store_true",
                   help="forget the finished runs kept in <out>/trials and run everything")
    return p


def settings_of(args: argparse.Namespace, exclude: tuple[str, ...] = ()) -> dict:
    """The JSON-able options of ``args`` that change what a run computes: everything but the
    output folder, the progress switch, where the runs go and ``exclude`` (e.g. the list of
    sweeps or the repeat count, which say which runs exist, not what one of them does)."""
    skip = {"out", "progress", "workers", "scheduler", "fresh", "seed", *exclude}
    return {k: _plain(v) for k, v in sorted(vars(args).items())
            if k not in skip and (v is None or isinstance(v, (bool, int, float, str, list, tuple)))}


def _client(args: argparse.Namespace):
    if getattr(args, "scheduler", None):
        where = Path(args.scheduler)
        if where.suffix == ".json" and where.is_file():  # dask scheduler --scheduler-file
            return json.loads(where.read_text())["address"]
        return args.scheduler
    workers = getattr(args, "workers", None)
    if workers is None and args.quick:
        workers = 1
    return "inline" if workers == 1 else None


def sweep(name: str, trial: Callable, configs: list[dict], args: argparse.Namespace, out: Path,
          *, repeats: int = 1, report: Callable[[dict], str] | None = None):
    """``fnn.sweep`` of the script's ``trial`` over ``configs`` x ``repeats``, where the options
    say (:func:`add_sweep_arguments`), results kept in ``<out>/trials``.

    Keys are ``"per_repeat"``: repeat ``i`` of every config trains with ``fnn.key(--seed + i)``,
    the seeds ``--seed, --seed+1, ...`` the scripts always used (same init draws and batch
    order for every variant, hence the same numbers as before they ran on fnn.sweep). The
    helper modules are shipped to workers started elsewhere (``--scheduler``). Without a
    progress bar (``--no-progress``) ``report(record)`` prints a line per finished trial.
    Raises if a trial failed (the finished ones stay in ``<out>/trials`` for the rerun)."""
    import shutil

    import fnn

    folder = out / "trials"
    if getattr(args, "fresh", False) and folder.exists():
        shutil.rmtree(folder)
    here = Path(__file__).resolve().parent
    ship = [here / "common.py"]
    module = Path(sys.modules[trial.__module__].__file__).resolve()
    if module != ship[0]:
        ship.append(module)
    done = [0]

    def on_result(record: dict) -> None:
        done[0] += 1
        if not args.progress:
            text = report(record) if report and record["status"] == "ok" else record["error"]
            print(f"[{name} {done[0]}] {text}  ({record['seconds'] or 0:.1f} s, "
                  f"{record['worker']})", flush=True)

    result = fnn.sweep(trial, configs, repeats=repeats, seed=args.seed, keys="per_repeat",
                       folder=folder, client=_client(args), workers=getattr(args, "workers", None),
                       ship=ship, progress=args.progress, name=name, on_result=on_result)
    print(f"{name}: {result.ran} runs done, {result.skipped} found in {folder} "
          f"({result.where}, {result.seconds:.1f} s)", flush=True)
    return result.raise_failed()


def out_dir(name: str, args: argparse.Namespace) -> Path:
    out = args.out if args.out is not None else RESULTS / name
    if args.quick and args.out is None:
        out = RESULTS / "quick" / name  # never overwrite full results with smoke-test numbers
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_results(name: str, out: Path, args: argparse.Namespace, metrics: dict, *,
                  report: dict | None = None, rows: list[dict] | None = None,
                  started: float | None = None, sweeps: list | None = None,
                  experiment: str | None = None) -> dict:
    """Write ``out/results.json``: the metrics, the command that produced them, the report's
    numbers beside them (``report``), optional table ``rows`` for RESULTS.md, and ``sweeps``
    (the ``fnn.SweepResult`` s the runs came from: where they ran, how many, wall clock).
    ``experiment`` (default ``name``) names the RESULTS.md section, for a variant of a script."""
    argv = [a for a in sys.argv[1:]] if sys.argv and sys.argv[0].endswith(f"{name}.py") else []
    payload = {
        "experiment": experiment or name,
        "command": "python " + shlex.join([f"examples/{name}.py", *argv]),
        "quick": bool(args.quick),
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started, 1) if started else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}",
        "metrics": _plain(metrics),
        "report": _plain(report or {}),
        "rows": _plain(rows or []),
    }
    if sweeps:
        payload["sweeps"] = [s.info() for s in sweeps]
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out / 'results.json'}")
    return payload


def save(fig, out: Path, filename: str) -> Path:
    path = out / filename
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")
    return path


def mean_std(values) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n": int(len(a)), "values": a.tolist()}
