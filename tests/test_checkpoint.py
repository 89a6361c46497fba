"""Checkpoints and exact resume: a run killed anywhere and re-run ends bit for bit where an
uninterrupted one does."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fnn


def _setup(n=96, seed=0, dropout=True, optimizer=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64)
    layers = [fnn.linear(16), fnn.tanh()] + ([fnn.dropout(0.2)] if dropout else []) + [fnn.linear(2)]
    model = fnn.serial(*layers)
    _, params = model.init(fnn.key(seed), (-1, 5))
    opt = optimizer or fnn.adam(1e-2)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    data = fnn.batches(x, y, batch_size=16, rng=3)
    state = fnn.TrainState.create(params, opt, key=fnn.key(9))
    eval_fn = fnn.evaluator(model, x[:32], y[:32], loss=fnn.cross_entropy, accuracy=True)
    return step, data, state, eval_fn


def _assert_same(a, b):
    assert fnn.tree.same_structure(a, b)
    for u, v in zip(fnn.tree.tree_leaves(a), fnn.tree.tree_leaves(b)):
        if isinstance(u, np.random.SeedSequence):
            assert (u.entropy, u.spawn_key) == (v.entropy, v.spawn_key)
        else:
            np.testing.assert_array_equal(u, v)
            assert np.asarray(u).dtype == np.asarray(v).dtype


def test_checkpoint_round_trip_keeps_types_and_prunes(tmp_path):
    step, data, state, _ = _setup()
    for _ in range(3):
        state, _ = step(state, next(iter(data.epoch(0))))
    for _ in range(5):
        fnn.save_checkpoint(tmp_path, state, keep=2)
    assert [p.name for p in fnn.checkpoint.checkpoints(tmp_path)] == ["ckpt-000004.npz",
                                                                      "ckpt-000005.npz"]
    fresh = _setup()[2]
    back = fnn.load_checkpoint(tmp_path, like=fresh)
    assert type(back.state) is fnn.TrainState and type(back.state.opt_state) is type(fresh.opt_state)
    assert back.state.step == 3
    _assert_same(back.state, state)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fnn.load_checkpoint(tmp_path / "empty", like=fresh)
    other = fnn.TrainState.create(fnn.linear(3).init(fnn.key(0), (-1, 5))[1], fnn.adam(1e-2))
    with pytest.raises(fnn.CheckpointMismatch, match="does not match") as err:
        fnn.load_checkpoint(tmp_path, like=other)
    assert isinstance(err.value, fnn.FnnFileError) and err.value.path.name == "ckpt-000005.npz"
    assert err.value.fingerprint is None  # written by hand: no run fingerprint


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    step, data, state, _ = _setup()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".ckpt-000001.npz.{dead}.tmp"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".ckpt-000001.npz.{os.getppid()}.tmp"  # a writer that is still alive
    live.write_bytes(b"being written")
    fnn.save_checkpoint(tmp_path, state)
    assert not stale.exists() and live.exists()


def _train(folder, epochs=4, every="epoch", fail_at=None, optimizer=None, **kw):
    step, data, state, eval_fn = _setup(optimizer=optimizer)
    calls = {"n": 0}

    def failing_step(s, batch):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise RuntimeError("malformed batch")
        return step(s, batch)

    return fnn.train(step._replace(fn=failing_step), data, state, epochs=epochs, eval_fn=eval_fn, progress=False,
                     early_stopping=fnn.EarlyStopping("loss", patience=50),
                     checkpoint=folder, checkpoint_every=every, **kw)


@pytest.mark.parametrize("every", ["epoch", 4, 1])
def test_an_error_keeps_the_state_and_the_rerun_ends_where_a_clean_run_does(tmp_path, every):
    reference, ref_hist = _train(tmp_path / "clean", every=every)
    with pytest.raises(fnn.TrainingError, match=r"epoch 2, step 4 by RuntimeError: malformed "
                                                r"batch") as err:
        _train(tmp_path / "run", every=every, fail_at=10)  # 6 batches an epoch: epoch 2, step 4
    assert err.value.history.stop_reason == "error" and err.value.state.step == 9
    assert isinstance(err.value.__cause__, RuntimeError) and err.value.checkpoint.exists()
    assert err.value.history.epochs == 1
    state, hist = _train(tmp_path / "run", every=every)
    _assert_same(state, reference)
    assert hist.train == ref_hist.train and hist.eval == ref_hist.eval
    assert hist.best_epoch == ref_hist.best_epoch
    assert hist.resumed == [{"epoch": 1, "batch": 3, "step": 9, "file": hist.resumed[0]["file"]}]
    # a finished run gives its result back without training again
    again, hist2 = _train(tmp_path / "run", every=every, fail_at=1)
    _assert_same(again, reference)
    # ... and more epochs continue it, as a longer clean run would
    longer, _ = _train(tmp_path / "run", epochs=6, every=every)
    _assert_same(longer, _train(tmp_path / "clean6", epochs=6, every=every)[0])


def test_errors_in_eval_and_callbacks_lose_nothing(tmp_path):
    step, data, state, eval_fn = _setup()
    calls = {"n": 0}

    def flaky_eval(s):
        calls["n"] += 1
        if calls["n"] == 2:  # the end of epoch 2 (without early stopping there is no probe)
            raise OSError(28, "No space left on device")
        return eval_fn(s)

    with pytest.raises(fnn.TrainingError, match="end of epoch 2.*No space left") as err:
        fnn.train(step, data, state, epochs=3, eval_fn=flaky_eval, progress=False,
                  checkpoint=tmp_path)
    assert err.value.state.step == 12 and err.value.history.epochs == 1
    assert list(err.value.history.eval) == ["loss", "accuracy"]
    assert len(err.value.history.eval["loss"]) == 1  # the failed epoch is not half-logged

    def full_disk(epoch, s, history):
        raise OSError(28, "No space left on device")

    with pytest.raises(fnn.TrainingError, match="No space left") as err:
        fnn.train(step, data, state, epochs=2, callbacks=[full_disk], progress=False)
    assert err.value.state.step == 6 and err.value.checkpoint is None


def test_resume_is_refused_for_another_configuration(tmp_path):
    _train(tmp_path, epochs=1)
    step, _, state, eval_fn = _setup()
    x, y = _setup.__defaults__, None  # noqa: F841
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((96, 5)).astype(np.float32)
    ys = (xs[:, :3].sum(axis=1) > 0).astype(np.int64)
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*data.batch_size: 16 in "
                                         r"the checkpoint, 32 now"):
        fnn.train(step, fnn.batches(xs, ys, batch_size=32, rng=3), state, epochs=2,
                  eval_fn=eval_fn, early_stopping=fnn.EarlyStopping("loss", patience=50),
                  checkpoint=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*opt_state"):
        _train(tmp_path, epochs=2, optimizer=fnn.momentum(0.1))
    with pytest.raises(ValueError, match=r"config.lr: 0.1 in the checkpoint, 0.2 now"):
        _train(tmp_path / "c", epochs=1, config={"lr": 0.1})
        _train(tmp_path / "c", epochs=2, config={"lr": 0.2})


def test_checkpoint_every_accepts_steps_epochs_and_durations(tmp_path):
    _train(tmp_path / "steps", epochs=2, every=5, checkpoint_keep=100)
    names = fnn.checkpoint.checkpoints(tmp_path / "steps")
    assert len(names) == 12 // 5 + 1  # steps 5 and 10, and the final one
    with pytest.raises(ValueError, match="checkpoint_every must be"):
        _train(tmp_path / "bad", every="sometimes")
    _train(tmp_path / "time", epochs=1, every="1h")
    assert len(fnn.checkpoint.checkpoints(tmp_path / "time")) == 1


CHILD = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    import fnn

    folder, out, threads, opt_name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    kind = sys.argv[5] if len(sys.argv) > 5 else "mlp"
    real_fsync = os.fsync

    def announced_fsync(fd):  # lets the parent kill us in the middle of a checkpoint write
        print("fsync", flush=True)
        time.sleep(0.02)
        real_fsync(fd)

    os.fsync = announced_fsync
    rng = np.random.default_rng(0)
    if kind == "seq":  # a small attention + LSTM language model on random token windows
        from fnn.datasets import TokenWindows, token_chunks

        ce = fnn.cross_entropy

        def token_vjp(z, y):
            value, dz = ce.vjp(z.reshape(-1, z.shape[-1]), y.reshape(-1))
            return value, dz.reshape(z.shape)

        loss = fnn.Loss(lambda z, y: token_vjp(z, y)[0], token_vjp, "token_cross_entropy")
        stream = (np.arange(3000) * 7 + rng.integers(0, 3, 3000)) % 12
        data = TokenWindows(stream, context=12, batch_size=8, steps_per_epoch=10, rng=2)
        model = fnn.serial(fnn.embedding(12, 16), fnn.positional_embedding(12),
                           fnn.transformer_block(2, 16, dropout=0.1), fnn.lstm(16),
                           fnn.linear(12))
        _, params = model.init(fnn.key(0), (-1, 12))
        ex, ey = token_chunks(stream[:300], 12)
        eval_fn = fnn.evaluator(model, ex, ey, loss=loss)
    else:
        x = rng.standard_normal((120, 8)).astype(np.float32)
        y = (x[:, :4].sum(axis=1) > 0).astype(np.int64)
        model = fnn.serial(fnn.linear(32), fnn.tanh(), fnn.dropout(0.25), fnn.linear(2))
        _, params = model.init(fnn.key(0), (-1, 8))
        loss, data = fnn.cross_entropy, fnn.batches(x, y, batch_size=12, rng=2)
        eval_fn = fnn.evaluator(model, x[:40], y[:40], loss=fnn.cross_entropy, accuracy=True)
    opt = fnn.adam(1e-2) if opt_name == "adam" else fnn.momentum(0.05, 0.9)
    state = fnn.TrainState.create(params, opt, key=fnn.key(1))
    step = fnn.supervised_step(model, loss, opt, threads=threads)
    print("ready", flush=True)
    state, history = fnn.train(
        step, data, state, epochs=8, progress=False, eval_fn=eval_fn,
        early_stopping=fnn.EarlyStopping("loss", patience=100),
        checkpoint=folder, checkpoint_every=3)
    fnn.save(out + ".npz", {"params": state.params, "opt_state": state.opt_state,
                            "step": state.step})
    with open(out + ".json", "w") as f:
        json.dump({"train": history.train, "eval": history.eval,
                   "best_epoch": history.best_epoch, "resumed": len(history.resumed)}, f)
    print("done", flush=True)
""")


def _child_env(backend: str) -> dict:
    """The child's environment: its kernel backend (the numpy one starts in a fifth of the
    time: no numba to load, which counts over the test's ~90 processes)."""
    return {**os.environ, "FNN_BACKEND": backend}


def _reference(script, folder, out, threads, opt, kind="mlp",
               backend="compiled") -> tuple[float, int]:
    """Run the child once, uninterrupted; return its training time (from "ready" to "done")
    and how many fsync calls its checkpoint writes made."""
    proc = subprocess.Popen([sys.executable, script, str(folder), str(out), str(threads), opt,
                             kind], env=_child_env(backend),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start, fsyncs = None, 0
    for line in proc.stdout:
        line = line.strip()
        if line == "ready":
            start = time.monotonic()
        fsyncs += line == "fsync"
        if line == "done":
            seconds = time.monotonic() - start
    _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    return seconds, fsyncs


def _run_until_done(script, folder, out, threads, opt, kills, rng, seconds, fsyncs,
                    kind="mlp", backend="compiled"):
    """Run the child, SIGKILL it ``kills`` times at random moments of its run — after a random
    share of a fifteenth of its training time, or in the middle of one of its next checkpoint
    writes — re-running it each time, then let it finish. Returns the number of kills and how
    many of them hit a checkpoint write."""
    landed = during_write = attempts = 0
    while True:
        attempts += 1
        assert attempts < 200, "the run never finished"
        proc = subprocess.Popen([sys.executable, script, str(folder), str(out), str(threads), opt,
                                 kind], env=_child_env(backend), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines = []
        if landed < kills:
            lines.append(proc.stdout.readline().strip())
            if rng.random() < 0.3:  # wait for the k-th fsync of a checkpoint write, then kill
                k = rng.randint(1, max(1, fsyncs // 15))
                while lines[-1] not in ("done", "") and (lines.count("fsync") < k):
                    lines.append(proc.stdout.readline().strip())
            else:
                time.sleep(rng.uniform(0.0, seconds / 15))
            proc.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate()
        if proc.returncode == 0 and "done" in stdout.split() + lines:
            return landed, during_write
        assert proc.returncode == -signal.SIGKILL, stderr
        landed += 1
        during_write += lines[-1] == "fsync"


CONFIGS = [(1, "adam"), (2, "momentum"), (1, "momentum"), (2, "adam")]
SEQUENCE_CONFIGS = [(1, "adam", "seq"), (2, "adam", "seq")]
NUMPY_BACKEND = {(2, "momentum"), (1, "momentum")}  # the others run the compiled kernels


@pytest.mark.parametrize("configs", [CONFIGS, SEQUENCE_CONFIGS], ids=["mlp", "sequence"])
def test_sigkill_anywhere_then_rerun_is_bitwise_an_uninterrupted_run(tmp_path, configs):
    """For each of threads 1/2 x Adam/momentum (dropout on; Adam on the compiled kernels,
    momentum on numpy's): 20 SIGKILLs at random moments, some in the middle of a checkpoint
    write, re-running the same command each time; the final params, optimiser state and
    history equal an uninterrupted run's bit for bit. The same
    for a sequence model (embedding, positions, a transformer block with dropout, an LSTM)
    on random windows of a token stream (:class:`fnn.datasets.TokenWindows`), 1 and 2
    threads, 12 SIGKILLs each."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    kills = 20 if configs is CONFIGS else 12

    def one(config):
        threads, opt, *kind = config
        run = tmp_path / f"{threads}-{opt}"
        run.mkdir()
        backend = "numpy" if (threads, opt) in NUMPY_BACKEND and not kind else "compiled"
        seconds, fsyncs = _reference(script, run / "ref_ckpt", run / "reference", threads, opt,
                                     *(kind or ["mlp"]), backend=backend)
        landed = _run_until_done(script, run / "ckpt", run / "killed", threads, opt,
                                 kills=kills, rng=random.Random(threads * 10 + len(opt)),
                                 seconds=seconds, fsyncs=fsyncs, kind=(kind or ["mlp"])[0],
                                 backend=backend)
        return run, landed

    with ThreadPoolExecutor(len(configs)) as pool:
        runs = list(pool.map(one, configs))
    for run, (landed, during_write) in runs:
        assert landed >= kills and during_write >= 1, (run.name, landed, during_write)
        template = fnn.load(run / "reference.npz")
        _assert_same(fnn.load(run / "killed.npz", like=template), template)
        a = json.loads((run / "killed.json").read_text())
        b = json.loads((run / "reference.json").read_text())
        assert a["train"] == b["train"] and a["eval"] == b["eval"], run.name
        assert a["best_epoch"] == b["best_epoch"] and a["resumed"] >= 1 and b["resumed"] == 0
        assert not [p for p in (run / "ckpt").iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_checkpointing_stops_training_with_the_state(tmp_path, monkeypatch):
    import errno

    real, calls = fnn.checkpoint.write_npz, {"n": 0}

    def flaky_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(fnn.checkpoint, "write_npz", flaky_write)
    with pytest.raises(fnn.TrainingError, match="No space left on device") as err:
        _train(tmp_path, epochs=4)
    assert isinstance(err.value.state, fnn.TrainState) and err.value.state.step >= 12
    assert err.value.history.stop_reason == "error" and err.value.checkpoint is None
