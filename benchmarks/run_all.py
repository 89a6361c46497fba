"""Run every benchmark (fnn vs PyTorch CPU in the same run) and print the results table.

    python benchmarks/run_all.py               # all cores, then one thread; then the table
    python benchmarks/run_all.py --threads 1   # only single-threaded runs
    python benchmarks/run_all.py --readme      # only print the table from results/*.json
    python benchmarks/run_all.py --default-malloc --threads 1   # without fnn.reuse_freed_memory()

Each thread count runs in its own process (numpy's BLAS reads ``OPENBLAS_NUM_THREADS`` when it
is imported; torch is set to the same count), so both libraries get the same cores.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ["bench_mlp", "bench_conv1d_usps", "bench_lenet", "bench_conv_ae"]
BENCHMARK_ORDER = {"mlp_epoch": 0, "conv1d_usps_epoch": 1, "lenet_100_steps": 2,
                   "conv_autoencoder_100_steps": 3}


def table() -> str:
    results = [json.loads(p.read_text()) for p in sorted((HERE / "results").glob("*.json"))]
    results.sort(key=lambda r: (BENCHMARK_ORDER.get(r["benchmark"], 99), -r.get("threads", 0),
                                r.get("freed_memory", "default") != "reused"))
    lines = ["| benchmark | what | threads | fnn batch shards | freed memory | fnn | PyTorch CPU "
             "| fnn / torch | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ratio, target = r.get("ratio_fnn_over_torch"), r.get("target_ratio")
        torch_ms = f"{r['torch_median_s'] * 1e3:.0f} ms" if r.get("torch_median_s") else "–"
        lines.append(
            f"| `{r['benchmark']}` | {r['what']} | {r.get('threads', '?')} | "
            f"{r.get('fnn_batch_shards', 1)} | {r.get('freed_memory', 'default')} | "
            f"{r['fnn_median_s'] * 1e3:.0f} ms | {torch_ms} | "
            f"{f'{ratio:.2f}x' if ratio else '–'} | {f'≤ {target:.1f}x' if target else ''} |"
        )
    dates = sorted({r.get("date") for r in results if r.get("date")})
    machines = sorted({r.get("machine") for r in results if r.get("machine")})
    lines += ["", f"Medians of several interleaved repeats, measured {', '.join(dates)} on "
              f"{', '.join(machines)} by `python benchmarks/run_all.py` (rows with freed memory "
              "`default`: `python benchmarks/run_all.py --default-malloc`; each benchmark's JSON "
              "in `benchmarks/results/` holds every timing)."]
    return "\n".join(lines)


def update_readme() -> None:
    """Print the table. It is no longer kept in the README: the docs' performance page
    (docs/performance.md) is generated from results/*.json at every docs build."""
    print(table())
    print("(the docs' Performance page renders this table at every build: make docs)",
          file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="only print the table")
    parser.add_argument("--threads", default=f"{os.cpu_count() or 1},1",
                        help="comma-separated thread counts, one process each (default: all, 1)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's malloc settings (no fnn.reuse_freed_memory()); "
                             "results go to *_default_malloc.json")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:
        sys.path.insert(0, str(HERE))
        for name in BENCHMARKS:
            try:
                module = importlib.import_module(name)
            except ImportError as err:
                print(f"skipping {name}: {err}", file=sys.stderr)
                continue
            module.main([])
        return 0
    if not args.readme:
        for n in dict.fromkeys(int(t) for t in args.threads.split(",")):
            print(f"--- {n} thread(s)", file=sys.stderr, flush=True)
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                       MKL_NUM_THREADS=str(n))
            if args.default_malloc:
                env["FNN_BENCH_MALLOC"] = "default"
            subprocess.run([sys.executable, __file__, "--in-process"], env=env, check=True)
    update_readme()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
