"""Plumbing shared by the reproduction scripts: command line, output folder, results JSON.

Every script ``examples/<name>.py`` has ``main(argv) -> dict`` and accepts ``--quick`` (tiny
settings for the tests; also on when the environment variable ``FNN_QUICK=1`` is set, which is
how the notebooks run in the test suite), ``--out`` (default ``results/<name>/``) and ``--seed``.
Full runs write ``results/<name>/results.json``; ``examples/make_results.py`` gathers them into
RESULTS.md.
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
                  started: float | None = None, experiment: str | None = None) -> dict:
    """Write ``out/results.json``: the metrics, the command that produced them, the report's
    numbers beside them (``report``), and optional table ``rows`` for RESULTS.md.
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
