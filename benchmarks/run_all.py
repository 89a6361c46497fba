"""Run every benchmark (fnn's two kernel backends, PyTorch CPU and JAX CPU in the same run) and
write the performance tables into a Markdown file.

    python benchmarks/run_all.py               # all cores, then one thread; then the tables
    python benchmarks/run_all.py --threads 1   # only single-threaded runs
    python benchmarks/run_all.py --tables-only # only rewrite the tables from results/*.json
    python benchmarks/run_all.py --default-malloc   # without fnn.perf.reuse_freed_memory()
    python benchmarks/run_all.py --print       # only print the tables from results/*.json

Each thread count runs in its own process (numpy's BLAS and XLA read their thread settings
when imported; torch is set to the same count), pinned to that many cores when there are more
(``harness.pin_to_cores``), so every library gets the same cores. The
tables replace what stands between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in the
target file when ``--target`` names one. The docs' Performance page renders :func:`table` from
``results/*.json`` at every docs build (``docs/_build/gen_pages.py``), so nothing needs writing
for the site.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = ["bench_mlp", "bench_mlp_ladder", "bench_conv1d_usps", "bench_lenet",
              "bench_conv_ae"]
BENCHMARK_ORDER = {"mlp_epoch": 0, "conv1d_usps_epoch": 1, "lenet_100_steps": 2,
                   "conv_autoencoder_100_steps": 3}
LIBS = ["fnn-numpy", "fnn-compiled", "torch", "jax"]
RATIOS = ["fnn-compiled/torch", "fnn-compiled/jax", "fnn-numpy/torch", "fnn-numpy/jax"]
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")


def load_results(results_dir: Path = HERE / "results") -> list[dict]:
    """Every result JSON of the current format (older ones without ``libraries`` are skipped)."""
    results = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    results = [r for r in results if "libraries" in r]
    results.sort(key=lambda r: (BENCHMARK_ORDER.get(r["benchmark"], 99), r.get("threads", 0)))
    return results


def _ms(lib: dict | None) -> str:
    if not lib:
        return "–"
    text = f"{lib['median_s'] * 1e3:.0f} ms"
    if "compile_s" in lib:
        text += f" (+{lib['compile_s']:.1f} s jit)"
    return text


def _ratio(r: dict, key: str) -> str:
    stats = r["ratios"].get(key)
    if not stats:
        return "–"
    target = r.get("targets", {}).get(key)
    mark = "" if target is None else (" ✓" if stats["median"] <= target else f" ✗ (≤ {target:g})")
    return f"{stats['median']:.2f}x [{stats['min']:.2f}–{stats['max']:.2f}]{mark}"


def headline(results: list[dict]) -> list[str]:
    lines = ["| benchmark | threads | fnn shards × chunk | fnn numpy | fnn compiled | PyTorch CPU | "
             "JAX CPU | compiled / torch | compiled / JAX | numpy / torch | numpy / JAX |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        libs = r["libraries"]
        chunk = r.get("fnn_chunk")
        lines.append(f"| `{r['benchmark']}` | {r['threads']} | {r['fnn_batch_shards']}"
                     f"{f' × {chunk}' if chunk else ''} | "
                     + " | ".join(_ms(libs.get(lib)) for lib in LIBS) + " | "
                     + " | ".join(_ratio(r, key) for key in RATIOS) + " |")
    return lines


def throughput(results: list[dict]) -> list[str]:
    lines = ["| benchmark | threads | GEMM peak | " + " | ".join(LIBS) + " |",
             "|---|---|---|" + "---|" * len(LIBS)]
    for r in results:
        libs = r["libraries"]
        cells = [_throughput(libs[lib]) if lib in libs else "–" for lib in LIBS]
        lines.append(f"| `{r['benchmark']}` | {r['threads']} | "
                     f"{r['machine']['gemm_peak_gflops']:.0f} | " + " | ".join(cells) + " |")
    return lines


def _throughput(lib: dict) -> str:
    text = f"{lib['gflops']:.1f} ({lib['pct_of_gemm_peak']:.0f}%"
    if "cpu_per_wall" in lib:
        text += f", {lib['cpu_per_wall']:.1f} cores busy"
    return text + ")"


def batch_sweep(results: list[dict]) -> list[str]:
    lines = ["| threads | batch | " + " | ".join(LIBS) + " |", "|---|---|" + "---|" * len(LIBS)]
    for r in results:
        for batch, libs in r.get("batch_sweep", {}).items():
            cells = [f"{libs[lib]['us_per_sample']:.0f} µs" if lib in libs else "–"
                     for lib in LIBS]
            lines.append(f"| {r['threads']} | {batch} | " + " | ".join(cells) + " |")
    return lines


def ladder(results_dir: Path = HERE / "results") -> list[str]:
    """The MLP epoch rung by rung (``bench_mlp_ladder``), one column per thread count:
    milliseconds per epoch, microseconds per step each rung adds, and the ratio to JAX."""
    runs = sorted((json.loads(p.read_text()) for p in results_dir.glob("mlp_ladder_*t.json")),
                  key=lambda r: r["threads"])
    if not runs:
        return []
    head = " | ".join(f"{r['threads']} thread(s): ms (best), +µs/step, / JAX" for r in runs)
    lines = [f"| rung | {head} |", "|---|" + "---|" * len(runs)]
    for rung in runs[0]["rungs"]:
        cells = []
        for r in runs:
            row = r["rungs"].get(rung)
            if row is None:
                cells.append("–")
                continue
            adds = row.get("adds_us_per_step")
            vs = row.get("over_jax")
            cells.append(f"{row['median_s'] * 1e3:.1f} ({row['best_s'] * 1e3:.1f})"
                         + (f", {adds:+.0f}" if adds is not None else "")
                         + (f", {vs['median']:.2f}x [{vs['min']:.2f}–{vs['max']:.2f}]"
                            if vs else ""))
        lines.append(f"| {rung} | " + " | ".join(cells) + " |")
    dates = sorted({r["date"] for r in runs})
    lines += ["", f"`python benchmarks/bench_mlp_ladder.py`, {', '.join(dates)}, on fnn's "
              f"{runs[0]['backend']} kernels, {runs[0]['repeats']} interleaved repeats: median "
              "ms per epoch (best in parentheses); the µs per step a rung adds to the one "
              "before, the median of their per-repeat differences; the ratio to JAX's jitted "
              "step, median [per-repeat range]."]
    return lines


def describe_machine(results: list[dict]) -> str:
    machines = []
    for r in results:
        m = r["machine"]
        blas = m.get("blas", {})
        text = (f"{m['cpu']}, {m['cores']} cores; BLAS {blas.get('internal_api', '?')} "
                f"{blas.get('version', '')} kernel {blas.get('architecture', '?')}")
        if text not in machines:
            machines.append(text)
    versions = results[0]["machine"]["versions"] if results else {}
    loads = sorted({tuple(r["machine"].get("loadavg_before") or ()) for r in results})
    dates = sorted({r["date"][:10] for r in results})
    return (f"Measured {', '.join(dates)} on {'; '.join(machines)}, by "
            f"`python benchmarks/run_all.py` (numpy {versions.get('numpy')}, numba "
            f"{versions.get('numba')}, torch {versions.get('torch')}, jax {versions.get('jax')}); "
            f"1-minute load averages before each benchmark: "
            f"{', '.join(str(load[0]) for load in loads if load)}.")


def tables(results_dir: Path = HERE / "results") -> str:
    """The Markdown tables from the result JSONs: timings and ratios (glibc's freed memory
    reused, as the harness sets), throughput, LeNet's cost per sample by batch size, and
    the runs with glibc's default malloc settings apart."""
    results = load_results(results_dir)
    reused = [r for r in results if r["freed_memory"] == "reused"]
    default = [r for r in results if r["freed_memory"] != "reused"]
    out = headline(reused)
    out += ["", "Medians of interleaved repeats; brackets: the range of the per-repeat ratios; "
            "✓/✗: the issue's target for that ratio. JAX runs one jitted SGD step, its compile "
            "time (in parentheses) is not in its timing. With fewer threads than cores the "
            "process is pinned to that many cores, so 1 thread means one core for every "
            "library (JAX's runtime otherwise dispatches from a second core).", "",
            "Throughput, GFLOP/s (% of the GEMM peak: a 2048² float32 numpy matmul in the same "
            "process; FLOPs per step counted analytically as 3x the forward pass's "
            "multiply-adds; cores busy: CPU-seconds per wall-second of the run):", ""]
    out += throughput(reused)
    sweep = batch_sweep([r for r in reused if r.get("batch_sweep")])
    if len(sweep) > 2:
        out += ["", "LeNet's cost per sample by batch size (same samples per run):", ""] + sweep
    if default:
        out += ["", "With glibc's default malloc settings (`--default-malloc`: freed memory "
                "handed back to the kernel and page-faulted in again):", ""] + headline(default)
    steps = ladder(results_dir)
    if steps:
        out += ["", "Where the MLP epoch's time goes: the same epoch built up from fnn's kernels "
                "written out by hand to the whole `supervised_step`, each rung adding one part "
                "of fnn (`benchmarks/bench_mlp_ladder.py`):", ""] + steps
    out += ["", describe_machine(results)]
    return "\n".join(out)


def table() -> str:
    """The tables as Markdown (what the docs' Performance page shows)."""
    return tables()


def write_tables(target: Path, results_dir: Path = HERE / "results") -> None:
    """Replace the text between the bench markers in ``target`` with :func:`tables`."""
    text = target.read_text()
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{target}: no {start} ... {end} markers to write the tables between")
    new = re.sub(re.escape(start) + ".*" + re.escape(end),
                 lambda _: f"{start}\n{tables(results_dir)}\n{end}", text, flags=re.S)
    target.write_text(new)
    print(f"updated {target}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", "--tables-only", "--readme", dest="tables_only",
                        action="store_true", help="only print the tables from results/*.json")
    parser.add_argument("--target", type=Path, default=None,
                        help="a Markdown file whose bench markers get the tables (the docs' "
                             "Performance page renders them at build time without this)")
    parser.add_argument("--threads", default=f"{os.cpu_count() or 1},1",
                        help="comma-separated thread counts, one process each (default: all, 1)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's malloc settings (no fnn.perf.reuse_freed_memory()); "
                             "results go to *_default_malloc.json")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per benchmark (default: each benchmark's own)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:
        sys.path.insert(0, str(HERE))
        import harness

        harness.pin_to_cores(harness.threads())  # before torch and JAX start their threads
        for name in BENCHMARKS:
            importlib.import_module(name).main([] if args.repeats is None
                                               else ["--repeats", str(args.repeats)])
        return 0
    if not args.tables_only:
        for n in dict.fromkeys(int(t) for t in args.threads.split(",")):
            print(f"--- {n} thread(s)", file=sys.stderr, flush=True)
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                       MKL_NUM_THREADS=str(n))
            if n == 1:
                env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                            "intra_op_parallelism_threads=1")
            if args.default_malloc:
                env["FNN_BENCH_MALLOC"] = "default"
            repeats = [] if args.repeats is None else ["--repeats", str(args.repeats)]
            subprocess.run([sys.executable, __file__, "--in-process", *repeats], env=env,
                           check=True)
    if args.target is not None:
        write_tables(args.target)
    else:
        print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
