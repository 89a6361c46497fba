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
    logger.flush()  # renders at most every 5 s: the pending epochs now
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


# ---- issue 9, item 4: the divergence guard


@pytest.mark.parametrize("bad", [float("nan"), np.float32("inf"), np.array(np.nan),
                                 np.array([1.0, np.inf])], ids=["float", "np-scalar", "0-d", "1-d"])
def test_divergence_is_caught_in_every_numeric_form(bad):
    def step(state, batch):
        return state + 1, {"loss": bad if state == 2 else 0.5}

    with pytest.warns(RuntimeWarning, match="diverged at epoch 2, step 1"):
        state, hist = fnn.train(step, [(1,), (2,)], 0, epochs=3, progress=False)
    assert state == 1 and hist.stop_reason == "diverged"


def test_divergence_honours_restore_best():
    def step(state, batch):
        return state + 1, {"loss": float("inf") if state >= 5 else 1.0}

    eval_losses = {0: 9.0, 1: 3.0, 2: 1.0, 3: 2.0, 4: 2.5, 5: 3.0}
    with pytest.warns(RuntimeWarning, match=r"returning the best epoch's state \(epoch 2\)"):
        state, hist = fnn.train(step, [(1,)], 0, epochs=9, progress=False,
                                eval_fn=lambda s: {"loss": eval_losses[s]},
                                early_stopping=fnn.EarlyStopping("loss", patience=9))
    assert state == 2 and hist.best_epoch == 1 and hist.stop_reason == "diverged"


def test_a_nan_evaluation_is_never_the_best():
    losses = {0: 1.0, 1: float("nan"), 2: 0.8, 3: 0.9, 4: 0.95}
    state, hist = fnn.train(lambda s, b: (s + 1, {"loss": 0.0}), [(1,)], 0, epochs=4,
                            progress=False, eval_fn=lambda s: {"loss": losses[s]},
                            early_stopping=fnn.EarlyStopping("loss", patience=5))
    assert hist.best_epoch == 1 and state == 2
    state, hist = fnn.train(lambda s, b: (s + 1, {"loss": 0.0}), [(1,)], 0, epochs=2,
                            progress=False, eval_fn=lambda s: {"loss": float("nan")},
                            early_stopping=fnn.EarlyStopping("loss", patience=5))
    assert hist.best_epoch is None and state == 2  # no best: the last state, not the first


# ---- issue 9, item 5: fail before the first step


def test_bad_configurations_fail_before_the_first_step():
    x, y = _regression(32)
    model = fnn.linear(1)
    _, params = model.init(fnn.key(0), x.shape)
    opt = fnn.sgd(0.01)
    steps = []

    def counted(state, batch):
        steps.append(1)
        return fnn.supervised_step(model, fnn.mse, opt)(state, batch)

    step = fnn.StepFn(counted, metric_names=("loss",))
    state = fnn.TrainState.create(params, opt)
    data = fnn.batches(x, y, batch_size=8)
    good_eval = fnn.evaluator(model, x, y, loss=fnn.mse)
    with pytest.raises(KeyError, match=r"no metric 'accuracy' in the eval metrics; have \['loss'\]"):
        fnn.train(step, data, state, epochs=2, eval_fn=good_eval, progress=False,
                  early_stopping=fnn.EarlyStopping("accuracy", mode="max"))
    with pytest.raises(KeyError, match=r"no metric 'val_loss' in the step metrics"):
        fnn.train(step, data, state, epochs=2, progress=False,
                  early_stopping=fnn.EarlyStopping("val_loss"))
    with pytest.raises(KeyError, match=r"no metric 'acc' in eval_fn's metrics; have \['loss'\]"):
        fnn.train(step, data, state, epochs=2, eval_fn=lambda s: good_eval(s), progress=False,
                  early_stopping=fnn.EarlyStopping("acc"))
    assert steps == []
    with pytest.raises(ValueError, match=r"evaluator: the evaluation set is empty"):
        fnn.evaluator(model, x[:0], y[:0], loss=fnn.mse)
    with pytest.raises(ValueError, match=r"evaluator: x has 32 rows but y has 31"):
        fnn.evaluator(model, x, y[:31], loss=fnn.mse)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="predict: batch_size must be a positive int"):
            fnn.predict(model, params, x, batch_size=bad)


def test_losses_refuse_targets_they_cannot_mean():
    p = np.full((2, 3), 0.5, np.float32)
    with pytest.raises(fnn.LossError, match=r"bce: targets must lie in \[0, 1\], got values in "
                                             r"\[0, 255\]"):
        fnn.bce.vjp(p, np.array([[0, 255, 1], [0, 0, 1]], np.float32))
    with pytest.raises(fnn.LossError, match=r"bce_with_logits: targets must lie in \[0, 1\]"):
        fnn.bce_with_logits.value(p, -np.ones((2, 3), np.float32))
    with pytest.raises(fnn.LossError, match=r"cross_entropy: target rows must be one-hot .*1 of 2 "
                                             r"are not, e.g. row 1: \[1.0, 1.0, 0.0\]"):
        fnn.cross_entropy.vjp(p, np.array([[0, 1, 0], [1, 1, 0]], np.float32))
    with pytest.raises(fnn.LossError, match="row 0"):
        fnn.nll.value(p, np.array([[0, 0, 0], [1, 0, 0]], np.float32))
    soft = np.array([[0.2, 0.8, 0.0], [1 / 3, 1 / 3, 1 / 3]], np.float32)
    assert np.isfinite(fnn.cross_entropy.value(p, soft))  # probability rows are fine


def test_history_records_the_learning_rate_and_the_gradient_norm():
    x, y = _regression(32)
    model = fnn.linear(1)
    _, params = model.init(fnn.key(0), x.shape)
    schedule = fnn.optim.piecewise([0.1, 0.01], [4])  # 4 steps an epoch: 0.1, then 0.01
    opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.sgd(schedule))
    _, hist = fnn.train(fnn.supervised_step(model, fnn.mse, opt), fnn.batches(x, y, batch_size=8),
                        fnn.TrainState.create(params, opt), epochs=2, progress=False)
    assert hist.train["lr"] == pytest.approx([0.1, 0.01])
    assert len(hist.train["grad_norm"]) == 2 and hist.train["grad_norm"][0] > 0
