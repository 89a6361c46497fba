"""fnn.sweep: same results in-process and on Dask, resumable, survives dead workers and drivers.

Every cluster here is on 127.0.0.1: an embedded LocalCluster shared by the module, and one test
with ``dask scheduler`` / ``dask worker`` started as separate processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import fnn
from fnn import experiments

distributed = pytest.importorskip("distributed")

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # workers spawned by LocalCluster inherit it
import sweep_trials  # noqa: E402

DASK = Path(sys.executable).with_name("dask")


@pytest.fixture(scope="module")
def client():
    """One 2-worker LocalCluster for the module (start-up costs seconds)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def metrics_by_id(result: fnn.SweepResult) -> dict:
    return {r["id"]: r["metrics"] for r in result.records}


# ----------------------------------------------------------------------------- in-process

def test_grid_and_keys_do_not_depend_on_order():
    configs = fnn.grid(a=[1, 2], b=["x", "y", "z"])
    assert len(configs) == 6 and configs[1] == {"a": 1, "b": "y"}
    k1 = fnn.trial_key(3, {"b": "x", "a": 1}, 2)
    k2 = fnn.trial_key(3, {"a": 1, "b": "x"}, 2)  # dict order is not identity
    assert fnn.rng(k1).random() == fnn.rng(k2).random()
    assert fnn.rng(k1).random() != fnn.rng(fnn.trial_key(3, {"a": 1, "b": "x"}, 1)).random()
    # per_repeat: every config of a repeat shares the key of seed + repeat
    assert fnn.trial_key(3, {"a": 1}, 2, "per_repeat").entropy == 5
    with pytest.raises(TypeError, match="not JSON"):
        fnn.trial_key(0, {"a": object()}, 0)


def test_trial_ids_and_keys_are_those_of_the_records_on_disk():
    """Ids name the result files of earlier runs (a rerun skips them) and keys are the trials'
    draws: both must stay what they were (values from fnn 0.1.0's fnn/experiments.py)."""
    cases = [(("sweep_trials.blas_trial", {"n": 20, "scale": 1.0}, 0, 0, "per_trial"),
              "bb8cd914caf27e412641eab2", 0.6712273162676688),
             (("conv1d_common.trial", {"lr": np.float32(0.5), "sizes": (1, np.int64(2)),
                                       "act": "relu", "x": None, "nested": {"b": [1.5, True]}},
               3, 7, "per_repeat"), "386c776bd520cacbb77c9b04", 0.9560017096289753),
             (("m.trial", {"lr": 0.1}, 0, 0, "per_trial"), "806e710dab539e46faf97878",
              0.296213832332492)]
    for (name, config, repeat, seed, keys), tid, draw in cases:
        assert fnn.experiments.trial_id(name, config, repeat, seed, keys) == tid
        assert fnn.rng(fnn.trial_key(seed, config, repeat, keys)).random() == draw


@pytest.mark.parametrize("kwargs,message", [
    (dict(repeats=0), "sweep: repeats must be a positive int, got 0"),
    (dict(seed=-1), "sweep: seed must be an int >= 0, got -1"),
    (dict(keys="per_config"), "sweep: keys must be one of ('per_trial', 'per_repeat')"),
    (dict(workers=0), "sweep: workers must be a positive int, got 0"),
    (dict(blas_threads=0), "sweep: blas_threads must be a positive int, got 0"),
    (dict(progress="no"), "sweep: progress must be True or False"),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fnn.sweep(sweep_trials.failing_trial, {"x": [1]}, folder=tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="trial_key: keys must be one of"):
        fnn.trial_key(0, {}, 0, "per_config")


def test_inline_resume_failures_and_files(tmp_path):
    folder = tmp_path / "sweep"
    configs = {"x": [1, 2, 3]}
    r1 = fnn.sweep(sweep_trials.failing_trial, configs, repeats=2, folder=folder,
                   client="inline", progress=False)
    assert (r1.ran, r1.skipped) == (6, 0)
    assert [r["status"] for r in r1.records] == ["ok", "ok", "error", "error", "ok", "ok"]
    bad = r1.failed[0]
    assert "ValueError: x=2 is not allowed" in bad["error"]
    assert "raise ValueError" in bad["traceback"]
    assert [row["x2"]["mean"] for row in r1.summary() if row["n"]] == [1.0, 9.0]
    assert r1.table().splitlines()[0] == "| x | n | x2 |"
    assert r1.curves("x", "x2")[1]["x2"][::2] == [1.0, 9.0]
    # files: one JSON per trial, 0644, no temporary leftovers
    files = sorted(folder.iterdir())
    assert len(files) == 6 and all(p.suffix == ".json" for p in files)
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in files)
    on_disk = json.loads(files[0].read_text())
    assert {"config", "repeat", "seed", "metrics", "status", "traceback", "seconds",
            "worker"} <= set(on_disk)
    # again: the finished trials are skipped, the failed ones run again
    r2 = fnn.sweep(sweep_trials.failing_trial, configs, repeats=2, folder=folder,
                   client="inline", progress=False)
    assert (r2.ran, r2.skipped) == (2, 4)
    r3 = fnn.sweep(sweep_trials.failing_trial, configs, repeats=2, folder=folder,
                   client="inline", progress=False, rerun_failed=False)
    assert (r3.ran, r3.skipped) == (0, 6)
    assert metrics_by_id(fnn.load_sweep(folder)) == metrics_by_id(r1)
    with pytest.raises(RuntimeError, match="2 of 6 trials failed"):
        r3.raise_failed()
    # another seed or repeat count are other trials
    r4 = fnn.sweep(sweep_trials.failing_trial, {"x": [1]}, repeats=3, seed=1, folder=folder,
                   client="inline", progress=False)
    assert (r4.ran, r4.skipped) == (3, 0)


def test_arrays_round_trip_without_pickle(tmp_path):
    result = fnn.sweep(sweep_trials.digits_trial,
                       {"hidden": [8], "act": ["tanh"], "lr": [0.1], "epochs": [1]},
                       folder=tmp_path, client="inline", progress=False)
    record = result.records[0]
    assert record["status"] == "ok", record["traceback"]
    assert (tmp_path / f"{record['id']}.npz").exists()
    arrays = result.arrays(record)
    assert arrays["params"]["00_linear"]["w"].shape == (64, 8)
    assert arrays["params"]["01_tanh"] == {}  # layers without params come back too
    model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(10))
    assert fnn.predict(model, arrays["params"], np.zeros((1, 64), np.float32)).shape == (1, 10)
    again = fnn.load_sweep(tmp_path)
    np.testing.assert_array_equal(again.arrays(again.records[0])["params"]["02_linear"]["b"],
                                  arrays["params"]["02_linear"]["b"])


def test_importing_fnn_does_not_import_dask():
    code = "import sys, fnn; print('dask' in sys.modules or 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- on Dask

def test_local_cluster_equals_in_process_bit_for_bit(client, tmp_path):
    configs = {"hidden": [8, 16], "act": ["tanh", "relu"], "lr": [0.1], "epochs": [2]}
    on_dask = fnn.sweep(sweep_trials.digits_trial, configs, repeats=2, seed=7, client=client,
                        folder=tmp_path / "dask", progress=False)
    inline = fnn.sweep(sweep_trials.digits_trial, configs, repeats=2, seed=7, client="inline",
                       folder=tmp_path / "inline", progress=False)
    assert len(on_dask.records) == 8 and not on_dask.failed and not inline.failed
    assert metrics_by_id(on_dask) == metrics_by_id(inline)  # floats compared exactly
    for a, b in zip(on_dask.records, inline.records):
        pa, pb = on_dask.arrays(a)["params"], inline.arrays(b)["params"]
        for layer in ("00_linear", "02_linear"):
            for leaf in ("w", "b"):
                assert np.array_equal(pa[layer][leaf], pb[layer][leaf])
    assert len({r["worker"] for r in on_dask.records}) == 2  # both workers took trials
    assert on_dask.where == "scheduler " + client.scheduler.address


def test_killing_a_worker_mid_sweep_loses_nothing(client, tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    monkeypatch.setenv("SWEEP_TEST_LOG", str(log))  # read by workers spawned after this
    pids = client.run(os.getpid)
    monkeypatch.setenv("SWEEP_TEST_TAG", "k")
    client.run(sweep_trials.set_env, "SWEEP_TEST_LOG", str(log))
    client.run(sweep_trials.set_env, "SWEEP_TEST_TAG", "k")
    killed = []

    def kill_one(record):
        if not killed:  # after the first result both workers are busy with the next trials
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    configs = [{"i": i, "sleep": 0.4} for i in range(8)]
    result = fnn.sweep(sweep_trials.logged_trial, configs, client=client, folder=tmp_path / "s",
                       progress=False, on_result=kill_one)
    assert killed
    assert not result.failed, result.failed
    assert sorted(r["metrics"]["i"] for r in result.records) == list(range(8))
    started = [line.split() for line in log.read_text().splitlines()]
    lost = [i for _, i, pid in started if int(pid) == killed[0]]
    assert len(started) > 8 and lost, "a trial must have been running on the killed worker"
    by_i = {r["metrics"]["i"]: r["metrics"]["pid"] for r in result.records}
    rerun = [int(i) for i in lost if by_i[int(i)] != killed[0]]
    assert rerun, "the trial lost with the worker was run again elsewhere"
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_separate_scheduler_and_worker_processes(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; the workers cannot
    import tests/sweep_trials.py (other cwd, no PYTHONPATH): the sweep ships it."""
    env_log = open(tmp_path / "cluster.log", "w")
    scheduler_file = tmp_path / "scheduler.json"
    # the workers import the fnn under test (the repository's), but not tests/sweep_trials.py
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
           "PYTHONPATH": str(TESTS.parent)}
    procs = [subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)],
        stdout=env_log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen(
                [str(DASK), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard"],
                stdout=env_log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                start_new_session=True))
        with distributed.Client(address) as c:
            c.wait_for_workers(2, timeout=60)
            assert not any(c.run(lambda: "sweep_trials" in sys.modules).values())
            configs = {"n": [20, 30, 40], "scale": [1.0, 0.5]}
            remote = fnn.sweep(sweep_trials.blas_trial, configs, repeats=2, client=c,
                               ship=[TESTS / "sweep_trials.py"], progress=False)
        # a scheduler address works as well as a Client
        by_address = fnn.sweep(sweep_trials.blas_trial, {"n": [20], "scale": [1.0]}, client=address,
                               ship=[TESTS / "sweep_trials.py"], progress=False)
        inline = fnn.sweep(sweep_trials.blas_trial, configs, repeats=2, client="inline",
                           progress=False)
        assert not remote.failed, remote.failed[0]["traceback"]
        assert metrics_by_id(remote) == metrics_by_id(inline)
        assert by_address.records[0]["metrics"] == inline.records[0]["metrics"]
        assert remote.workers == 2
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        env_log.close()


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import fnn, sweep_trials
    if __name__ == "__main__":  # LocalCluster's workers are spawned: they import this file
        configs = [{{"i": i, "sleep": 0.3}} for i in range(12)]
        fnn.sweep(sweep_trials.logged_trial, configs, folder={folder!r}, workers=2,
                  progress=False)
""")


def test_killing_the_driver_and_rerunning_runs_only_unfinished_trials(tmp_path):
    folder, log = tmp_path / "results", tmp_path / "log.txt"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(TESTS), folder=str(folder)))
    env = {**os.environ, "SWEEP_TEST_LOG": str(log), "SWEEP_TEST_TAG": "first"}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and driver.poll() is None:
            if folder.is_dir() and len(list(folder.glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
        assert driver.poll() is None, "the driver finished before it could be killed"
        os.killpg(driver.pid, signal.SIGKILL)  # the driver, its LocalCluster and workers
        driver.wait()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    finished = {json.loads(p.read_text())["config"]["i"] for p in folder.glob("*.json")}
    assert 3 <= len(finished) < 12
    env["SWEEP_TEST_TAG"] = "second"
    done = subprocess.run([sys.executable, str(script)], env=env, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    second = {int(line.split()[1]) for line in log.read_text().splitlines()
              if line.startswith("second ")}
    assert second == set(range(12)) - finished  # only the unfinished trials ran again
    result = fnn.load_sweep(folder)
    assert sorted(r["config"]["i"] for r in result.records) == list(range(12))
    assert not result.failed
    assert {r["format"] for r in result.records} == {experiments.RECORD_FORMAT}


# ----------------------------------------------------------------------------- the examples

EXAMPLES = TESTS.parent / "examples"


def test_example_script_on_a_cluster_equals_in_process(client, tmp_path, monkeypatch):
    """init_schemes (toy set only, quick) via --scheduler gives the in-process numbers; a rerun
    finds every run in <out>/trials and runs nothing."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import importlib

    init_schemes = importlib.import_module("init_schemes")
    base = ["--quick", "--no-progress", "--datasets", "xor"]
    remote = init_schemes.main([*base, "--out", str(tmp_path / "a"), "--scheduler",
                                client.scheduler.address])
    local = init_schemes.main([*base, "--out", str(tmp_path / "b"), "--workers", "1"])
    assert remote["results"] == local["results"] or _same_but_seconds(remote["results"],
                                                                      local["results"])
    payload = json.loads((tmp_path / "a" / "results.json").read_text())
    assert payload["sweeps"][0]["where"].startswith("scheduler tcp://127.0.0.1")
    assert payload["sweeps"][0]["ran"] == 8
    init_schemes.main([*base, "--out", str(tmp_path / "a"), "--workers", "1"])
    again = json.loads((tmp_path / "a" / "results.json").read_text())["sweeps"][0]
    assert (again["ran"], again["skipped"]) == (0, 8)


def _same_but_seconds(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(k == "seconds" or _same_but_seconds(a[k], b[k])
                                            for k in a)
    return a == b
