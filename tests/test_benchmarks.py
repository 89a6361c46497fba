import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_micro_benchmark_runs_every_case(monkeypatch, capsys):
    """benchmarks/micro.py backs the docstrings' speed claims: it must keep running."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")  # importing the harness changes nothing
    import micro

    rows = micro.main(["--repeats", "1"])
    assert len(rows) == len(micro.cases()) + len(micro.compiled_cases()) >= 10
    assert all(t_ours > 0 and t_plain > 0 for _, t_ours, t_plain in rows)
    assert "speed-up" in capsys.readouterr().out
    for name in ("micro", "harness"):
        sys.modules.pop(name, None)


def test_compare_and_tables(monkeypatch, tmp_path, capsys):
    """The harness times every library interleaved and the tables are written from its JSON
    between the markers of any target file (fake libraries: no torch/JAX needed)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")
    import harness
    import run_all

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    monkeypatch.setattr(harness, "_PEAK", {"gflops": 100.0})
    calls = []
    runs = {name: (lambda name=name: calls.append(name)) for name in
            ("fnn-numpy", "fnn-compiled", "torch")}
    runs["jax"] = None  # not installed: left out
    result = harness.compare("lenet_100_steps", "test", runs, flops=10**9, repeats=3,
                             targets={"fnn-compiled/torch": 1.0},
                             extra={"batch_sweep": {16: {"torch": {"us_per_sample": 5.0,
                                                                   "gflops": 1.0}}}})
    assert calls[:3] == ["fnn-numpy", "fnn-compiled", "torch"] and len(calls) == 12
    assert set(result["libraries"]) == {"fnn-numpy", "fnn-compiled", "torch"}
    assert set(result["ratios"]) == {"fnn-numpy/torch", "fnn-compiled/torch"}
    stats = result["ratios"]["fnn-compiled/torch"]
    assert stats["min"] <= stats["max"]
    assert result["machine"]["cpu"] and "gemm_peak_gflops" in result["machine"]
    saved = json.loads(next(tmp_path.glob("lenet_100_steps_*t_default_malloc.json")).read_text())
    assert saved["libraries"]["torch"]["times_s"]
    assert 0 <= saved["libraries"]["torch"]["cpu_per_wall"] < 64
    assert saved["machine"]["cores_used"]
    target = tmp_path / "page.md"
    target.write_text("# perf\n<!-- bench:start -->\nold\n<!-- bench:end -->\ntail\n")
    run_all.write_tables(target, results_dir=tmp_path)
    text = target.read_text()
    assert "old" not in text and text.endswith("<!-- bench:end -->\ntail\n")
    assert "default malloc" in text and "`lenet_100_steps`" in text and "cores busy" in text
    for name in ("harness", "run_all"):
        sys.modules.pop(name, None)


def test_pin_to_cores_holds_every_thread_started_after(tmp_path):
    """ "1 thread" means one core for every library: the process, and threads it starts later
    (JAX's runtime), stay on the first core (in a child process: pytest is left alone)."""
    import os
    import subprocess

    import pytest

    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs Linux and two cores")
    code = ("import os, threading, harness\n"
            "first = min(os.sched_getaffinity(0))\n"
            "print(harness.pin_to_cores(1) == [first], harness.pin_to_cores(99) == [first])\n"
            "seen = []\n"
            "t = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))\n"
            "t.start(); t.join()\n"
            "print(seen == [{first}])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS, capture_output=True,
                         text=True, env=dict(os.environ, FNN_BENCH_MALLOC="default"), check=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stdout + out.stderr


def test_sequence_benchmark_runs_in_quick_mode(monkeypatch, capsys):
    """benchmarks/bench_sequences.py (GPT and LSTM steps, cached generation) keeps running;
    quick mode saves nothing. With JAX installed, its steps are timed beside the others after
    the check that fnn and JAX compute the same losses (else the script raises)."""
    import importlib.util

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")
    import bench_sequences

    results = bench_sequences.main(["--quick"])
    assert set(results) == {"gpt", "lstm"}
    assert results["gpt"]["generation"]["speedup"] > 0
    out = capsys.readouterr().out
    assert "generate 40 chars, lstm" in out
    if importlib.util.find_spec("jax") is None:
        assert "JAX is not installed" in out
    else:
        for result in results.values():
            assert {"fnn-numpy/jax", "fnn-numpy/torch"} <= set(result["ratios"])
            assert len(result["same_work"]["losses_jax"]) == 3
            assert result["libraries"]["jax"]["compile_s"] > 0
    for name in ("bench_sequences", "harness"):
        sys.modules.pop(name, None)


def test_mlp_ladder_rungs_do_the_same_work_and_are_saved(monkeypatch, tmp_path, capsys):
    """benchmarks/bench_mlp_ladder.py backs the docs' account of the MLP step: its hand-written
    rung must train exactly what fnn's step trains (same batches, same update), every rung
    must end at the same params, and the run must be saved and rendered by run_all."""
    import numpy as np

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")
    import bench_mlp_ladder as lad
    import harness
    import run_all

    import fnn

    rng = np.random.default_rng(1)
    x = rng.random((100, lad.D), dtype=np.float32)
    y = rng.integers(0, lad.C, 100)
    params = lad.build().init(fnn.key(0), (-1, lad.D))[1]
    ends = {name: run(2) for name, run in lad.ladder(x, y, params).items()}
    whole = ends.pop("supervised_step")
    assert not np.allclose(whole["00_linear"]["w"], params["00_linear"]["w"])  # it trained
    for name, got in ends.items():
        for layer in ("00_linear", "02_linear"):
            for k in ("w", "b"):
                np.testing.assert_allclose(got[layer][k], whole[layer][k], rtol=1e-5,
                                           atol=1e-6, err_msg=f"{name}: {layer}/{k}")

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    monkeypatch.setattr(lad, "RESULTS", tmp_path)
    monkeypatch.setattr(harness, "_PEAK", {"gflops": 100.0})
    monkeypatch.setattr(lad, "load_jax", lambda: None)  # fnn's rungs only: fast
    result = lad.main(["--repeats", "1"])
    assert list(result["rungs"]) == list(lad.RUNGS)
    assert all(r["median_s"] > 0 for r in result["rungs"].values())
    assert "adds_us_per_step" in result["rungs"]["supervised_step"]
    saved = next(tmp_path.glob("mlp_ladder_*t_default_malloc.json"))
    saved.rename(tmp_path / saved.name.replace("_default_malloc", ""))
    table = "\n".join(run_all.ladder(tmp_path))
    assert "| supervised_step |" in table and "+µs/step" in table
    assert "+ value_and_grad" in capsys.readouterr().out
    for name in ("bench_mlp_ladder", "bench_mlp", "harness", "run_all"):
        sys.modules.pop(name, None)
