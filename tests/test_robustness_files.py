"""Nothing lost (issue 24): checkpoint folders and files under bad arguments, a second writer,
damaged and orphaned files, read-only folders and crafted files."""

import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fnn
from fnn.checkpoint import checkpoints

LOCK_NAME = "train.lock"  # fnn.locking.LOCK_NAME (written out: this file imports on older fnn)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    model = fnn.linear(2)
    _, params = model.init(fnn.key(0), (-1, 3))
    opt = fnn.sgd(0.1)
    calls = []
    inner = fnn.supervised_step(model, fnn.cross_entropy, opt)

    def counted(state, batch):
        calls.append(1)
        return inner(state, batch)

    step = fnn.StepFn(counted, metric_names=("loss",), fingerprint=inner.fingerprint)
    data = fnn.batches(x, y, batch_size=10, rng=1)
    return step, data, fnn.TrainState.create(params, opt), calls


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("keep", [-1, 0, "3", 2.5])
def test_checkpoint_keep_refused_before_any_work(tmp_path, keep):
    step, data, state, calls = _setup()
    with pytest.raises(ValueError, match=r"checkpoint_keep must be a positive int, got"):
        fnn.train(step, data, state, epochs=2, progress=False, checkpoint=tmp_path,
                  checkpoint_keep=keep)
    assert calls == [] and checkpoints(tmp_path) == []


def test_a_second_process_cannot_train_into_the_same_folder(tmp_path):
    folder = tmp_path / "run"
    script = textwrap.dedent(f"""
        import time, numpy as np, fnn
        x = np.zeros((40, 3), np.float32); y = np.zeros(40, np.int64)
        model = fnn.linear(2)
        _, params = model.init(fnn.key(0), (-1, 3))
        inner = fnn.supervised_step(model, fnn.cross_entropy, fnn.sgd(0.1))
        def slow(state, batch):
            time.sleep(0.5)
            return inner(state, batch)
        step = fnn.StepFn(slow, metric_names=("loss",), fingerprint=inner.fingerprint)
        fnn.train(step, fnn.batches(x, y, batch_size=10), fnn.TrainState.create(params,
                  fnn.sgd(0.1)), epochs=100, progress=False, checkpoint={str(folder)!r})
    """)
    env = {**os.environ, "PYTHONPATH": ROOT}
    first = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 60
        while not (folder / LOCK_NAME).exists():
            assert first.poll() is None and time.time() < deadline, "the first run did not start"
            time.sleep(0.05)
        holder = json.loads((folder / LOCK_NAME).read_text())
        assert holder["pid"] == first.pid and holder["host"] and holder["run"]
        step, data, state, calls = _setup()
        with pytest.raises(fnn.FolderLocked, match=rf"process {first.pid} on host .* is "
                                                   r"writing checkpoints into"):
            fnn.train(step, data, state, epochs=1, progress=False, checkpoint=folder)
        assert calls == []
    finally:
        first.kill()  # kill -9: its lock is left behind, stale
        first.wait()
    assert (folder / LOCK_NAME).exists()
    step, data, state, calls = _setup()
    with pytest.warns(RuntimeWarning, match=rf"stale lock .*process {first.pid} is gone"):
        fnn.train(step, data, state, epochs=1, progress=False, checkpoint=folder)
    assert calls
    assert not (folder / LOCK_NAME).exists()  # released on the way out


def test_the_lock_is_released_however_train_ends(tmp_path):
    step, data, state, _ = _setup()
    fnn.train(step, data, state, epochs=1, progress=False, checkpoint=tmp_path / "a")
    assert not (tmp_path / "a" / LOCK_NAME).exists()

    def boom(epoch, state, history):
        raise RuntimeError("boom")

    with pytest.raises(fnn.TrainingError):
        fnn.train(step, data, state, epochs=2, progress=False, checkpoint=tmp_path / "b",
                  callbacks=[boom])
    with pytest.raises(KeyError, match="no metric"):  # a configuration error before any step
        fnn.train(step, data, state, epochs=2, progress=False, checkpoint=tmp_path / "c",
                  early_stopping=fnn.EarlyStopping(monitor="nope"))
    assert not (tmp_path / "b" / LOCK_NAME).exists()
    assert not (tmp_path / "c" / LOCK_NAME).exists()
    fnn.train(step, data, state, epochs=2, progress=False, checkpoint=tmp_path / "a")
    # a lock of this process that no train holds (leaked) is stale
    (tmp_path / "a" / LOCK_NAME).write_text(json.dumps(
        {"pid": os.getpid(), "host": os.uname().nodename, "run": "gone", "started": "?"}))
    with pytest.warns(RuntimeWarning, match="stale lock"):
        fnn.train(step, data, state, epochs=3, progress=False, checkpoint=tmp_path / "a")


def test_a_lock_of_another_host_is_taken_only_once_its_heartbeat_stopped(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps(
        {"pid": 1, "host": "elsewhere.example", "run": "r", "started": "2026-01-01"}))
    step, data, state, calls = _setup()
    with pytest.raises(fnn.FolderLocked, match=rf"host elsewhere.example.*delete "
                                               rf".*{LOCK_NAME}"):
        fnn.train(step, data, state, epochs=1, progress=False, checkpoint=tmp_path)
    assert calls == []
    old = time.time() - 3600  # its holder stopped touching it an hour ago
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match=r"stale lock .*host elsewhere.example, not touched"):
        fnn.train(step, data, state, epochs=1, progress=False, checkpoint=tmp_path)
    assert calls and not lock.exists()


def test_temporary_lock_files_of_killed_processes_are_removed(tmp_path):
    dead = _dead_pid()
    orphan = tmp_path / f".{LOCK_NAME}.{dead}.0123abcd.tmp"
    orphan.write_text("{}")
    step, data, state, _ = _setup()
    fnn.train(step, data, state, epochs=1, progress=False, checkpoint=tmp_path)
    assert not orphan.exists()


def test_a_held_lock_is_touched_by_its_heartbeat(tmp_path, monkeypatch):
    from fnn import locking

    monkeypatch.setattr(locking, "HEARTBEAT", 0.05)
    held = locking.FolderLock.acquire(tmp_path)
    old = time.time() - 3600
    os.utime(held.path, (old, old))
    deadline = time.time() + 10
    while held.path.stat().st_mtime < time.time() - 60:
        assert time.time() < deadline, "the heartbeat did not touch the lock"
        time.sleep(0.02)
    held.release()
    held._beat.join(2)
    assert not held.path.exists() and not held._beat.is_alive()


def test_a_damaged_newest_checkpoint_does_not_count_toward_keep(tmp_path):
    step, data, state, _ = _setup()
    fnn.train(step, data, state, epochs=2, progress=False, checkpoint=tmp_path,
              checkpoint_keep=2)
    good, newest = checkpoints(tmp_path)
    newest.write_bytes(newest.read_bytes()[:100])  # a disk that failed
    with pytest.warns(RuntimeWarning, match=f"skipping {newest.name}"):
        _, history = fnn.train(step, data, state, epochs=2, progress=False,
                               checkpoint=tmp_path, checkpoint_keep=2)
    assert history.resumed[-1]["file"] == good.name
    # the good one is not pruned for the damaged one, whose number is not reused
    assert [p.name for p in checkpoints(tmp_path)] == [good.name, "ckpt-000003.npz"]
    assert (tmp_path / (newest.name + ".damaged")).exists()  # kept aside for inspection


def test_a_read_only_checkpoint_folder_is_found_before_training(tmp_path):
    step, data, state, calls = _setup()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="train: cannot write checkpoints into"):
        fnn.train(step, data, state, epochs=3, progress=False,
                  checkpoint=tmp_path / "file" / "run")
    assert calls == []
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        with pytest.raises(PermissionError, match="cannot write checkpoints"):
            fnn.train(step, data, state, epochs=3, progress=False, checkpoint=ro)
        assert calls == []


def test_the_lock_file_name_is_the_documented_one():
    from fnn.locking import LOCK_NAME as name

    assert name == LOCK_NAME


def test_orphans_of_killed_saves_are_removed_by_later_saves(tmp_path):
    target = tmp_path / "params.npz"
    script = textwrap.dedent(f"""
        import sys, time, numpy as np, fnn
        def slow(f, **members):
            f.write(b"x" * 100000); f.flush()
            print("writing", flush=True)
            time.sleep(60)
        np.savez = slow
        fnn.save({str(target)!r}, {{"w": np.ones(3)}})
    """)
    orphans = []
    for _ in range(3):  # kill -9 during fnn.save
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": ROOT}, text=True)
        assert p.stdout.readline().strip() == "writing"
        p.kill()
        p.wait()
        p.stdout.close()
        orphans.append(tmp_path / f".params.npz.{p.pid}.tmp")
    # each killed writer had removed the orphans of the ones before it
    assert [o.exists() for o in orphans] == [False, False, True]
    alive = tmp_path / f".params.npz.{os.getppid()}.tmp"  # a live writer's file is kept
    alive.write_bytes(b"")
    fnn.save(target, {"w": np.zeros(2)})
    assert not any(o.exists() for o in orphans) and alive.exists()
    assert fnn.load(target)["w"].tolist() == [0.0, 0.0]


def test_load_on_a_checkpoint_file_points_to_load_checkpoint(tmp_path):
    _, _, state, _ = _setup()
    path = fnn.save_checkpoint(tmp_path, state)
    with pytest.raises(fnn.FnnFileError, match=r"is a training checkpoint; read it with "
                                               r"fnn.load_checkpoint"):
        fnn.load(path)


def _crafted(path, names, manifest=None):
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            buf = __import__("io").BytesIO()
            np.save(buf, np.ones(2))
            zf.writestr(name, buf.getvalue())
        if manifest is not None:
            buf = __import__("io").BytesIO()
            np.save(buf, np.array(json.dumps(manifest)))
            zf.writestr("meta/manifest.npy", buf.getvalue())


@pytest.mark.parametrize("names", [
    ["params/a.npy", "params/a/b.npy"],  # an array where a folder is (old format)
    ["params/a/b.npy", "params/a.npy"],
    ["params/a.npy", "params/a.npy"],  # the same member twice
])
def test_crafted_files_with_clashing_paths_are_refused(tmp_path, names):
    path = tmp_path / "crafted.npz"
    with pytest.warns(UserWarning) if len(set(names)) < len(names) else _nothing():
        _crafted(path, ["meta/format.npy"] * 0 + names)
    with zipfile.ZipFile(path, "a") as zf:
        buf = __import__("io").BytesIO()
        np.save(buf, np.array("fnn-params-1"))
        zf.writestr("meta/format.npy", buf.getvalue())
    with pytest.raises(fnn.FnnFileError, match=r"members .* clash"):
        fnn.load(path)


def test_crafted_manifest_files_with_clashing_members_are_refused(tmp_path):
    path = tmp_path / "crafted.npz"
    manifest = {"format": "fnn-tree-2", "tree": {"dict": {"a": {"array": "a"}}}}
    with pytest.warns(UserWarning):
        _crafted(path, ["tree/a.npy", "tree/a.npy"], manifest)
    with pytest.raises(fnn.FnnFileError, match=r"members 'tree/a' and 'tree/a' clash"):
        fnn.load(path)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
