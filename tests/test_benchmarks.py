import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_micro_benchmark_runs_every_case(monkeypatch, capsys):
    """benchmarks/micro.py backs the docstrings' speed claims: it must keep running."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")  # importing the harness changes nothing
    import micro

    rows = micro.main(["--repeats", "1"])
    assert len(rows) == len(micro.cases()) >= 10
    assert all(t_ours > 0 and t_plain > 0 for _, t_ours, t_plain in rows)
    assert "speed-up" in capsys.readouterr().out
    for name in ("micro", "harness"):
        sys.modules.pop(name, None)
