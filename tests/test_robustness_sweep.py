"""Sweeps that fail loudly (issue 24): a trial module the Dask workers cannot import, a trial
whose code changed since its results were written, empty and duplicate configs, truncated
records."""

import importlib.util
import sys
import textwrap
import threading

import pytest

import fnn


def _module(tmp_path, name, body):
    """A trial module loaded by file path (its folder is not on sys.path)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


TRIAL = """
    def trial(config, key):
        return {"value": config["x"] * VERSION}
    VERSION = 1
"""


def test_a_trial_module_the_workers_cannot_import_fails_fast(tmp_path):
    distributed = pytest.importorskip("distributed")
    module = _module(tmp_path, "fnn_robust_unimportable", TRIAL)
    outcome = {}

    def run():
        try:
            with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                          host="127.0.0.1", dashboard_address=None) as cluster:
                with distributed.Client(cluster) as client:
                    fnn.sweep(module.trial, {"x": [1, 2]}, client=client, progress=False)
        except BaseException as err:  # noqa: BLE001
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "sweep hung on a trial module the workers cannot import"
    err = outcome.get("error")
    assert isinstance(err, ImportError), err
    assert "cannot import the trial's module 'fnn_robust_unimportable'" in str(err)
    assert "ship=" in str(err) and str(tmp_path) in str(err)


def test_a_rerun_after_the_trial_code_changed_runs_again(tmp_path):
    folder = tmp_path / "results"
    first = _module(tmp_path, "fnn_robust_changing", TRIAL)
    a = fnn.sweep(first.trial, {"x": [1, 2]}, folder=folder, client="inline", progress=False)
    assert [r["metrics"]["value"] for r in a.records] == [1, 2]
    assert all(r["source"] for r in fnn.load_sweep(folder).records)
    again = fnn.sweep(first.trial, {"x": [1, 2]}, folder=folder, client="inline",
                      progress=False)
    assert again.ran == 0 and again.skipped == 2  # unchanged: nothing runs
    (tmp_path / "fnn_robust_changing.py").write_text(textwrap.dedent(TRIAL).replace(
        'config["x"] * VERSION', 'config["x"] * VERSION * 10'))
    second = _module(tmp_path, "fnn_robust_changing", TRIAL.replace(
        'config["x"] * VERSION', 'config["x"] * VERSION * 10'))
    with pytest.warns(UserWarning, match=r"trial's code changed since 2 of its results"):
        b = fnn.sweep(second.trial, {"x": [1, 2]}, folder=folder, client="inline",
                      progress=False)
    assert b.ran == 2 and [r["metrics"]["value"] for r in b.records] == [10, 20]


def _trial(config, key):
    return {"x": config["x"]}


@pytest.mark.parametrize("configs, message", [
    ([], "configs is empty"),
    ({"x": [], "y": [1, 2]}, "axis 'x' is empty"),
    ({"x": [1], "y": []}, "axis 'y' is empty"),
])
def test_empty_configs_are_refused(configs, message):
    with pytest.raises(ValueError, match=message):
        fnn.sweep(_trial, configs, client="inline", progress=False)


def test_duplicate_configs_are_warned_about():
    with pytest.warns(UserWarning, match=r"given more than once run once each: "
                                         r'\{"x":1\} \(2 times\)'):
        result = fnn.sweep(_trial, [{"x": 1}, {"x": 2}, {"x": 1}], client="inline",
                           progress=False)
    assert len(result.records) == 2


def test_repeats_must_be_a_positive_int():
    with pytest.raises(ValueError, match=r"repeats must be a positive int, got 2.5"):
        fnn.sweep(_trial, {"x": [1]}, repeats=2.5, client="inline", progress=False)


def test_load_sweep_warns_about_truncated_records(tmp_path):
    fnn.sweep(_trial, {"x": [1, 2, 3]}, folder=tmp_path, client="inline", progress=False)
    victim = sorted(tmp_path.glob("*.json"))[0]
    victim.write_text(victim.read_text()[:40])  # a full disk
    with pytest.warns(RuntimeWarning, match=rf"1 file\(s\) .* not readable trial records "
                                            rf".*{victim.name}"):
        result = fnn.load_sweep(tmp_path)
    assert len(result.records) == 2
