import warnings

import numpy as np
import pytest

import fnn


def _regression(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32)


def test_batches_cover_every_sample_once_and_reshuffle():
    x = np.arange(10)
    data = fnn.batches(x, batch_size=4, rng=0)
    e0 = np.concatenate([b[0] for b in data.epoch(0)])
    e1 = np.concatenate([b[0] for b in data.epoch(1)])
    assert sorted(e0) == list(range(10)) and sorted(e1) == list(range(10))
    assert not np.array_equal(e0, e1)
    assert np.array_equal(e0, np.concatenate([b[0] for b in data.epoch(0)]))
    assert [len(b[0]) for b in fnn.batches(x, batch_size=4, drop_last=True).epoch(0)] == [4, 4]
    assert np.array_equal(next(iter(fnn.batches(x, batch_size=3, shuffle=False)))[0], [0, 1, 2])


def test_batches_bad_input():
    with pytest.raises(ValueError, match="empty"):
        fnn.batches(np.zeros((0, 3)), batch_size=4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            fnn.batches(np.zeros((5, 3)), batch_size=bad)
    with pytest.raises(ValueError, match=r"same length.*\[5, 4\]"):
        fnn.batches(np.zeros((5, 3)), np.zeros(4), batch_size=2)


def test_train_converges_and_records_history():
    x, y = _regression()
    model = fnn.serial(fnn.linear(1))
    _, params = model.init(fnn.key(0), x.shape)
    opt = fnn.momentum(0.05, 0.9)
    state, hist = fnn.train(
        fnn.supervised_step(model, fnn.mse, opt), fnn.batches(x, y, batch_size=16),
        fnn.TrainState.create(params, opt), epochs=15,
        eval_fn=fnn.evaluator(model, x, y, loss=fnn.mse), progress=False,
    )
    assert hist.epochs == 15 and hist.stop_reason == "completed"
    assert len(hist.train["loss"]) == len(hist.eval["loss"]) == 15
    assert hist.eval["loss"][-1] < 1e-3 < hist.eval["loss"][0]
    assert state.step == 15 * 6
    np.testing.assert_allclose(state.params["00_linear"]["w"].ravel(), [1.0, -2.0, 0.5], atol=0.02)


def test_early_stopping_restores_best_state():
    calls = []

    def step(state, batch):
        return state + 1, {"loss": 1.0}

    scores = [9.0, 5.0, 3.0, 4.0, 4.5, 6.0, 7.0, 0.1]  # by state; state 0 is train's probe

    def eval_fn(state):
        calls.append(state)
        return {"loss": scores[state]}

    state, hist = fnn.train(step, [(np.zeros(1),)], 0, epochs=7, eval_fn=eval_fn,
                            early_stopping=fnn.EarlyStopping("loss", patience=3), progress=False)
    assert hist.stop_reason == "early_stopping" and hist.epochs == 5
    assert hist.best_epoch == 1 and state == 2  # state after epoch 2 (index 1)
    _, hist = fnn.train(step, [(np.zeros(1),)], 0, epochs=3, progress=False,
                        eval_fn=lambda s: {"acc": [0.1, 0.5, 0.3][s - 1]},
                        early_stopping=fnn.EarlyStopping("acc", patience=5, mode="max"))
    assert hist.best_epoch == 1
    with pytest.raises(KeyError, match="no metric 'accuracy'"):
        fnn.train(step, [(np.zeros(1),)], 0, epochs=1, progress=False,
                  early_stopping=fnn.EarlyStopping("accuracy"))


def test_divergence_guard_returns_last_finite_state():
    def step(state, batch):
        return state + 1, {"loss": float("nan") if state >= 4 else 1.0}

    with pytest.warns(RuntimeWarning, match=r"diverged at epoch 3, step 1: loss=nan"):
        state, hist = fnn.train(step, [(1,), (2,)], 0, epochs=5, progress=False)
    # state 4 gave the NaN loss: the last state whose metrics were finite is 3
    assert state == 3 and hist.stop_reason == "diverged" and hist.epochs == 2


def test_divergence_with_a_real_model_and_huge_lr():
    x, y = _regression()
    model = fnn.linear(1)
    _, params = model.init(fnn.key(0), x.shape)
    opt = fnn.sgd(50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state, hist = fnn.train(fnn.supervised_step(model, fnn.mse, opt),
                                fnn.batches(x, y, batch_size=8), fnn.TrainState.create(params, opt),
                                epochs=20, progress=False)
    assert hist.stop_reason == "diverged"
    assert all(np.all(np.isfinite(p)) for p in fnn.tree.tree_leaves(state.params))


def test_interrupt_keeps_progress():
    def step(state, batch):
        if state == 3:
            raise KeyboardInterrupt
        return state + 1, {"loss": 0.0}

    with pytest.warns(RuntimeWarning, match="interrupted"):
        state, hist = fnn.train(step, [(1,), (2,)], 0, epochs=5, progress=False)
    assert state == 3 and hist.stop_reason == "interrupted"


def test_callbacks_and_logger_png(tmp_path):
    seen = []
    x, y = _regression(32)
    model = fnn.linear(1)
    _, params = model.init(fnn.key(0), x.shape)
    opt = fnn.sgd(0.05)
    logger = fnn.LossLogger(tmp_path / "curves.png")
    _, hist = fnn.train(fnn.supervised_step(model, fnn.mse, opt), fnn.batches(x, y, batch_size=8),
                        fnn.TrainState.create(params, opt), epochs=4, progress=False,
                        callbacks=[logger, lambda e, s, h: seen.append(e) or e == 2])
    assert seen == [0, 1, 2] and hist.stop_reason == "callback"
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_train_rejects_empty_and_one_shot_data():
    with pytest.raises(ValueError, match="empty"):
        fnn.train(lambda s, b: (s, {}), [], 0, epochs=1, progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fnn.train(lambda s, b: (s, {}), iter([(1,)]), 0, epochs=2, progress=False)


def test_dropout_training_uses_state_key_per_step():
    x, y = _regression(32)
    model = fnn.serial(fnn.linear(8), fnn.dropout(0.5), fnn.linear(1))
    _, params = model.init(fnn.key(0), x.shape)
    opt = fnn.adam(1e-2)
    step = fnn.supervised_step(model, fnn.mse, opt)
    with pytest.raises(fnn.LayerError, match="key"):
        step(fnn.TrainState.create(params, opt), (x, y))
    s1, m1 = step(fnn.TrainState.create(params, opt, key=fnn.key(5)), (x, y))
    s2, m2 = step(fnn.TrainState.create(params, opt, key=fnn.key(5)), (x, y))
    assert m1 == m2


def test_fit_drop_last_skips_the_partial_batch():
    """33 rows at batch 32: one step per epoch with ``drop_last``, two without."""
    x, y = _regression(n=33)
    model = fnn.linear(1)
    steps = []
    for drop_last in (True, False):
        fnn.fit(model, fnn.mse, fnn.sgd(0.1), x, y, epochs=1, batch_size=32, drop_last=drop_last,
                callbacks=[lambda epoch, state, history: steps.append(state.step)],
                progress=False)
    assert steps == [1, 2]
