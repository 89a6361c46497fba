"""fnn.distributed: ranks of an MPI job training one model. The jobs (tests/distributed_job.py)
run under ``mpiexec -n 2`` on 127.0.0.1 (the mpiexec beside this Python, from the mpich wheel);
their results are compared here with one process's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fnn

ROOT = Path(__file__).resolve().parents[1]
JOB = Path(__file__).with_name("distributed_job.py")
MPIEXEC = Path(sys.executable).parent / "mpiexec"

sys.path.insert(0, str(JOB.parent))
import distributed_job as job  # noqa: E402


def _mpi_available() -> bool:
    try:
        import mpi4py.MPI  # noqa: F401
    except ImportError:
        return False
    return MPIEXEC.exists()


needs_mpi = pytest.mark.skipif(not _mpi_available(),
                               reason="mpi4py or mpiexec (the mpi extra) is not installed")


def launch(mode: str, out: Path, ranks: int = 2,
           launcher: tuple = (str(MPIEXEC),)) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FNN_BACKEND": "numpy",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    python = () if launcher[0] != str(MPIEXEC) else (sys.executable,)
    return subprocess.run([*launcher, "-n", str(ranks), "-host", "127.0.0.1",
                           *python, str(JOB), mode, str(out)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def one_process(kind: str, opt_kind: str, epochs: int = 4):
    """The run of the job's ``run`` in one process with the whole batch, plain fnn.train."""
    net, opt = job.model(kind), job.optimizer(opt_kind)
    x, y = job.data()
    return fnn.train(fnn.supervised_step(net, fnn.cross_entropy, opt),
                     fnn.batches(x, y, batch_size=job.BATCH, rng=3), job.start(net, opt),
                     epochs=epochs, progress=False)


def leaves(tree) -> list:
    return fnn.tree.tree_leaves(tree)


@needs_mpi
def test_two_ranks_with_half_batches_equal_one_process(tmp_path):
    """2 ranks × batch 16 = 1 process × batch 32 within 1e-12 (float64), 20 SGD and 20 Adam
    steps, with dropout (the whole batch's mask) and with batch-norm (the whole batch's
    statistics); ranks built with different models refuse to start, on both ranks."""
    out = launch("equal", tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for kind in ("dropout", "bn"):
        for opt_kind in ("sgd", "adam"):
            state, history = one_process(kind, opt_kind)
            assert state.step == 20
            got = fnn.load(tmp_path / f"{kind}_{opt_kind}.npz")
            for a, b in zip(leaves(state.params), leaves(got["params"])):
                assert a.dtype == np.float64
                np.testing.assert_allclose(b, a, rtol=0, atol=1e-12, err_msg=f"{kind} {opt_kind}")
            np.testing.assert_allclose(got["loss"], history.train["loss"], rtol=1e-12)
    for r in (0, 1):
        text = (tmp_path / f"disagree_{r}.txt").read_text()
        assert "ranks disagree" in text and "rank(s) [1]" in text
        assert "00_linear.w: 'float64(6, 8)' on rank 0, 'float64(6, 9)' on rank 1" in text


@needs_mpi
def test_ranks_counting_different_tokens_equal_one_process(tmp_path):
    """A loss that is a mean over the tokens that count (padding ignored), where rank 0's rows
    count 16 tokens of a batch and rank 1's 80, and a summed loss: 2 ranks give one
    process's params and losses within 1e-12 (a plain mean over the ranks would not)."""
    out = launch("tokens", tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for kind in ("mean", "sum"):
        state, history = job.run_tokens(kind)
        got = fnn.load(tmp_path / f"tokens_{kind}.npz")
        for a, b in zip(leaves(state.params), leaves(got["params"])):
            assert a.dtype == np.float64
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12, err_msg=kind)
        np.testing.assert_allclose(got["loss"], history.train["loss"], rtol=1e-12)


@needs_mpi
def test_a_killed_rank_ends_the_job_and_a_rerun_resumes_bitwise(tmp_path):
    killed = launch("kill", tmp_path)
    assert killed.returncode != 0
    assert not (tmp_path / "resumed.npz").exists()
    net, opt = job.model("dropout"), job.optimizer("adam")
    last = fnn.load_checkpoint(tmp_path / "ckpt", like=job.start(net, opt))
    steps = last.progress["steps"]
    assert steps in (8, 12)  # every 4 steps; the one of step 12 may have been cut short
    out = launch("resume", tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"'step': {steps}" in (tmp_path / "resumed_from.txt").read_text()  # the last one
    resumed, straight = fnn.load(tmp_path / "resumed.npz"), fnn.load(tmp_path / "straight.npz")
    for a, b in zip(leaves(resumed), leaves(straight)):
        assert np.array_equal(a, b)
    from mpi4py import MPI  # the same run with one rank: refused, the world size named

    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*ranks: 2 in the "
                                         r"checkpoint, 1 now"):
        job.run("dropout", "adam", MPI.COMM_SELF, checkpoint=tmp_path / "ckpt",
                checkpoint_every=4)


@needs_mpi
def test_an_exception_on_one_rank_aborts_every_rank(tmp_path):
    out = launch("fail", tmp_path, launcher=(sys.executable, "-m", "fnn.distributed"))
    assert out.returncode != 0
    assert "rank 1 of 2 failed; aborting every rank" in out.stderr
    assert "rank 1 failed on purpose" in out.stderr


@needs_mpi
@pytest.mark.parametrize("kind", ["dropout", "bn"])
def test_one_rank_equals_plain_train_bit_for_bit(kind, tmp_path):
    from mpi4py import MPI

    state, history = job.run(kind, "adam", MPI.COMM_SELF, epochs=2)
    plain, plain_history = one_process(kind, "adam", epochs=2)
    for a, b in zip(leaves(state[:2] + state[3:]), leaves(plain[:2] + plain[3:])):
        assert np.array_equal(a, b)
    assert history.train == plain_history.train


class FakeComm:
    """Rank and size, for the checks that need no messages."""

    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size


def test_shards_are_the_batch_in_rank_order():
    from fnn.distributed import shard

    data = fnn.batches(np.arange(12.0), np.arange(12), batch_size=4, rng=0)
    parts = [list(shard(data, FakeComm(r, 2)).epoch(1)) for r in range(2)]
    for whole, a, b in zip(data.epoch(1), *parts):
        assert np.array_equal(np.concatenate([a[0], b[0]]), whole[0])
        assert np.array_equal(np.concatenate([a[1], b[1]]), whole[1])
    assert shard(data, FakeComm(0, 2)).describe()["ranks"] == 2


def test_batches_not_divisible_by_the_ranks_are_refused():
    from fnn.distributed import shard

    x = np.zeros((20, 2))
    with pytest.raises(ValueError, match="batch size 6 is not divisible by the 4 ranks"):
        shard(fnn.batches(x, batch_size=6), FakeComm(0, 4))
    with pytest.raises(ValueError, match="last batch has 2 rows .* drop_last=True"):
        shard(fnn.batches(x, batch_size=6), FakeComm(0, 3))
    shard(fnn.batches(x, batch_size=6, drop_last=True), FakeComm(0, 3))  # fine
    with pytest.raises(ValueError, match="a batch of 5 rows cannot be split evenly over 2"):
        list(shard([(x[:4],), (x[:5],)], FakeComm(1, 2)).epoch(0))


def test_threads_inside_a_rank_share_batch_statistics_across_processes():
    """A fake second rank holding the same rows: batch-norm over both ranks (the rank's two
    thread shards summed, then across processes) equals one process on the rows twice."""
    from fnn.threads import Processes, across_processes

    net = fnn.serial(fnn.linear(4), fnn.tanh(), fnn.batch_norm(), fnn.linear(2))
    _, params, state = fnn.init(net, fnn.key(0), (-1, 3))
    x = np.random.default_rng(0).normal(size=(8, 3))
    y = np.random.default_rng(1).normal(size=(8, 2))
    whole = fnn.value_and_grad(net, fnn.mse)(params, np.concatenate([x, x]),
                                              np.concatenate([y, y]), state=state)
    twice = Processes(lambda values: tuple(2 * v for v in values), 0.5, 0, 8, 16)
    with across_processes(twice):
        local = fnn.value_and_grad(net, fnn.mse, threads=2)(params, x, y, state=state)
    np.testing.assert_allclose(local[0], whole[0], rtol=1e-6)
    for a, b in zip(leaves(local[1:]), leaves(whole[1:])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_dropout_in_a_process_keeps_its_rows_of_the_whole_batch_mask():
    from fnn.threads import Processes, across_processes

    layer, x = fnn.dropout(0.5), np.ones((8, 5))
    whole, _ = layer.vjp({}, x, key=fnn.key(3))
    with across_processes(Processes(lambda v: v, 0.5, 4, 4, 8)):
        part, _ = layer.vjp({}, x[:4], key=fnn.key(3))
    assert np.array_equal(part, whole[4:])


def test_missing_mpi_names_the_extra(monkeypatch):
    import fnn.distributed

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    with pytest.raises(ImportError, match=r"fnn.distributed needs mpi4py.*pip install 'fnn\[mpi\]'"):
        fnn.distributed.rank()


def test_import_fnn_does_not_load_distributed():
    code = "import sys, fnn; print('fnn.distributed' in sys.modules, 'mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_the_benchmarks_projection_follows_its_model(monkeypatch):
    """benchmarks/bench_distributed.py's scaling table: compute per sample from the 2-rank
    steps less their all-reduce, a ring all-reduce fitted on the bare all-reduce times."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setenv("FNN_BENCH_MALLOC", "default")
    import bench_distributed as bench

    job_record = {"wall_s": 0.34, "steps": 10, "allreduce_s": [0.02, 0.02], "grad_floats": 1000,
                  "bare_allreduce_s": {"1": 2e-5, "1000": 2e-5 + 4000 / 1e9}}
    p = bench.projection([job_record], steps=10)
    assert abs(p["per_sample_ms"] - 1e3 * (0.034 - 0.002) / 32) < 1e-9
    assert abs(p["latency_us"] - 10) < 1e-6 and abs(p["gbytes_per_s"] - 1.0) < 1e-6
    rows = {r["ranks"]: r for r in p["rows"]}
    assert abs(rows[1]["strong_ms"] - 64.0) < 1e-9             # 64 samples, 1 ms each
    assert abs(rows[2]["strong_ms"] - (32.0 + 1e3 * (2 * 1e-5 + 4000 / 1e9))) < 1e-9
    assert rows[4]["weak_ms"] > rows[2]["weak_ms"] > rows[1]["weak_ms"]
    for name in ("bench_distributed", "harness", "bench_conv_ae", "bench_lenet"):
        sys.modules.pop(name, None)
