"""fnn.sweep: per-trial scheduling overhead, and a real sweep in-process vs on 2 Dask workers.

    python benchmarks/bench_sweep.py [--trials 200] [--skip-usps] [--usps-args "--repeats 1"]

1. **Overhead**: a grid of ``--trials`` trivial trials (each returns its config at once), timed
   in-process and on a 2-worker LocalCluster already started (its start-up is timed apart),
   with the results folder (every trial written atomically with fsync) and without. Overhead
   per trial = wall clock / trials. Target: <= 20 ms per trial on the cluster, files included.
2. **usps_conv1d_sweeps**: the same command, ``examples/usps_conv1d_sweeps.py --no-progress``
   (all four sweeps, 3 repeats, real USPS from ``$FNN_DATA``; ``--usps-args`` adds options,
   e.g. ``"--repeats 1 --sweeps kernel_size"`` for a shorter run), once with ``--workers 1``
   (in-process, one BLAS thread, the way it ran before fnn.sweep) and once with
   ``--workers 2``, each into a fresh folder; wall clock of the whole script and of its sweep.
   Target: 2 workers >= 1.8x faster on a 2-core machine.

The machine's load average is recorded before and after each part: other processes on the
cores slow the 2-worker run more than the in-process one (it needs both cores). Results go to
``benchmarks/results/sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # workers import trivial() from here

import numpy as np  # noqa: E402

import fnn  # noqa: E402


def trivial(config: dict, key) -> dict:
    """A trial that does nothing: what is left of its wall clock is the sweep's overhead."""
    return {"i": config["i"]}


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def overhead(trials: int) -> dict:
    from distributed import Client, LocalCluster

    configs = [{"i": i} for i in range(trials)]
    out = {"trials": trials, "load_before": loadavg()}

    def timed(client, folder) -> float:
        t0 = time.perf_counter()
        r = fnn.sweep(trivial, configs, client=client, folder=folder, progress=False)
        seconds = time.perf_counter() - t0
        assert len(r.ok) == trials and r.ran == trials
        return seconds

    with tempfile.TemporaryDirectory() as tmp:
        out["inline_files_ms"] = 1000 * timed("inline", Path(tmp, "inline")) / trials
        out["inline_memory_ms"] = 1000 * timed("inline", None) / trials
        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(2)
            out["cluster_startup_s"] = time.perf_counter() - t0
            timed(client, None)  # warm-up: workers import fnn and this module
            out["cluster_files_ms"] = 1000 * timed(client, Path(tmp, "cluster")) / trials
            out["cluster_memory_ms"] = 1000 * timed(client, None) / trials
            t0 = time.perf_counter()
            again = fnn.sweep(trivial, configs, client=client, folder=Path(tmp, "cluster"),
                              progress=False)
            out["resume_all_skipped_ms"] = 1000 * (time.perf_counter() - t0) / trials
            assert again.ran == 0 and again.skipped == trials
        t0 = time.perf_counter()
        fnn.sweep(trivial, configs, workers=2, folder=Path(tmp, "embedded"), progress=False)
        out["embedded_cluster_total_s"] = time.perf_counter() - t0
    out["load_after"] = loadavg()
    out["target_ms"] = 20.0
    return out


def usps(extra: list[str], keep: bool, counts: tuple[int, ...] = (1, 2)) -> dict:
    shared = ROOT.parent / "shared" / "data"  # the Makefile's default
    if not os.environ.get("FNN_DATA") and shared.is_dir():
        os.environ["FNN_DATA"] = str(shared)
    out = {"command": shlex.join(["examples/usps_conv1d_sweeps.py", "--no-progress", *extra])}
    for workers in counts:
        with tempfile.TemporaryDirectory() as scratch:
            # --keep-results: the 2-worker run is the experiment's full run (RESULTS.md)
            tmp = "results/usps_conv1d_sweeps" if keep and workers == 2 else scratch
            cmd = [sys.executable, "examples/usps_conv1d_sweeps.py", "--no-progress",
                   "--workers", str(workers), "--fresh", *extra]
            if tmp == scratch:
                cmd[3:3] = ["--out", tmp]
            before = loadavg()
            t0 = time.perf_counter()
            log = Path(scratch, "log.txt")
            with open(log, "w") as f:
                code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
            seconds = time.perf_counter() - t0
            if code:
                raise SystemExit(f"{shlex.join(cmd)} failed:\n{log.read_text()[-3000:]}")
            payload = json.loads((ROOT / tmp / "results.json").read_text())
            sweep = payload["sweeps"][0]
            out[f"workers_{workers}"] = {"script_s": round(seconds, 1),
                                         "sweep_s": sweep["seconds"], "where": sweep["where"],
                                         "trials": sweep["trials"], "load_before": before,
                                         "load_after": loadavg()}
            print(f"usps_conv1d_sweeps --workers {workers}: {seconds:.1f} s "
                  f"(sweep {sweep['seconds']:.1f} s, {sweep['trials']} runs, {sweep['where']}; "
                  f"load {before} -> {loadavg()})", flush=True)
    out["target_speedup"] = 1.8
    if "workers_1" in out and "workers_2" in out:
        one, two = out["workers_1"], out["workers_2"]
        out["speedup_script"] = round(one["script_s"] / two["script_s"], 2)
        out["speedup_sweep"] = round(one["sweep_s"] / two["sweep_s"], 2)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--skip-usps", action="store_true", help="only the overhead part")
    p.add_argument("--skip-overhead", action="store_true", help="only the usps part")
    p.add_argument("--usps-workers", default="1,2",
                   help="worker counts to time usps_conv1d_sweeps with (1: in-process)")
    p.add_argument("--usps-args", default="", help="extra options of usps_conv1d_sweeps.py")
    p.add_argument("--keep-results", action="store_true",
                   help="write the 2-worker run to results/usps_conv1d_sweeps (its full run)")
    p.add_argument("--out", type=Path, default=RESULTS / "sweep.json")
    args = p.parse_args(argv)
    result = {"benchmark": "sweep", "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}",
              "command": "python " + shlex.join(["benchmarks/bench_sweep.py", *(argv or sys.argv[1:])])}
    if not args.skip_overhead:
        result["overhead"] = overhead(args.trials)
        o = result["overhead"]
        print(f"overhead per trial ({args.trials} trivial trials): in-process {o['inline_files_ms']:.2f}"
              f" ms with files ({o['inline_memory_ms']:.2f} without); 2-worker LocalCluster "
              f"{o['cluster_files_ms']:.2f} ms with files ({o['cluster_memory_ms']:.2f} without), "
              f"start-up {o['cluster_startup_s']:.1f} s; load {o['load_before']} -> "
              f"{o['load_after']}", flush=True)
    if not args.skip_usps:
        counts = tuple(int(n) for n in args.usps_workers.split(","))
        result["usps_conv1d_sweeps"] = usps(shlex.split(args.usps_args), args.keep_results,
                                            counts)
        u = result["usps_conv1d_sweeps"]
        if "speedup_script" in u:
            print(f"usps_conv1d_sweeps: 2 workers {u['speedup_script']}x faster than "
                  f"in-process (sweep alone {u['speedup_sweep']}x)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
