"""Issue 21: what step and eval functions declare (fnn.StepFn / fnn.EvalFn, no function
attributes), the typed checkpoint mismatch, fnn.metrics, and the argument checks of training."""

import pickle
import warnings

import numpy as np
import pytest

import fnn


def _setup(n=48, hidden=8):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, :2].sum(axis=1) > 0).astype(np.int64)
    model = fnn.serial(fnn.linear(hidden), fnn.tanh(), fnn.linear(2))
    _, params = model.init(fnn.key(0), (-1, 4))
    opt = fnn.adam(1e-2)
    return model, params, opt, x, y


def test_recipes_return_declared_functions_not_functions_with_attributes():
    model, params, opt, x, y = _setup()
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    assert isinstance(step, fnn.StepFn) and step.metric_names == ("loss",)
    assert step.fingerprint["kind"] == "supervised_step" and step.fingerprint["loss"] == "cross_entropy"
    assert not hasattr(step.fn, "metric_names") and not hasattr(step.fn, "fingerprint")
    state, metrics = step(fnn.TrainState.create(params, opt), (x, y))
    assert state.step == 1 and set(metrics) == {"loss", "lr"}
    eval_fn = fnn.evaluator(model, x, y, loss=fnn.cross_entropy, accuracy=True)
    assert isinstance(eval_fn, fnn.EvalFn) and eval_fn.metric_names == ("loss", "accuracy")
    assert eval_fn.fingerprint == {"rows": 48, "loss": "cross_entropy", "accuracy": True}
    assert not hasattr(eval_fn.fn, "metric_names")
    assert set(eval_fn(state)) == {"loss", "accuracy"}


def test_a_declared_step_is_checked_before_the_first_step_and_keeps_its_declarations():
    calls = []

    def counting(state, batch):
        calls.append(state)
        return state + 1, {"loss": 1.0}

    step = fnn.StepFn(counting, metric_names=("loss",))
    with pytest.raises(KeyError, match="no metric 'acc' in the step metrics"):
        fnn.train(step, [(1,)], 0, epochs=1, progress=False, early_stopping=fnn.EarlyStopping("acc"))
    assert calls == []
    state, hist = fnn.train(step, [(1,), (2,)], 0, epochs=2, progress=False)
    assert state == 4 and hist.train["loss"] == [1.0, 1.0]
    wrapped = fnn.supervised_step(*_setup()[:1], fnn.mse, fnn.sgd(0.1))._replace(fn=counting)
    assert wrapped.metric_names == ("loss",) and wrapped.fingerprint["kind"] == "supervised_step"


def test_a_plain_step_function_with_checkpoints_warns_once_naming_stepfn(tmp_path):
    def plain(state, batch):
        return state + 1, {"loss": 0.5}

    with pytest.warns(UserWarning, match=r"declares no fingerprint.*fnn\.StepFn") as caught:
        fnn.train(plain, [(1,), (2,)], 0, epochs=2, progress=False, checkpoint=tmp_path / "a")
    ours = [w for w in caught if "fingerprint" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__  # points at the call of train
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fnn.train(plain, [(1,)], 0, epochs=1, progress=False)  # no checkpoints: no warning
        declared = fnn.StepFn(plain, fingerprint={"counter": 1})
        state, _ = fnn.train(declared, [(1,), (2,)], 0, epochs=2, progress=False,
                             checkpoint=tmp_path / "b")
        assert state == 4
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*step_fn.counter: 1 in "
                                         r"the checkpoint, 2 now"):
        fnn.train(declared._replace(fingerprint={"counter": 2}), [(1,), (2,)], 0, epochs=3,
                  progress=False, checkpoint=tmp_path / "b")


def test_another_models_checkpoint_is_refused_through_the_typed_mismatch(tmp_path):
    model, params, opt, x, y = _setup()
    data = fnn.batches(x, y, batch_size=16)
    fnn.train(fnn.supervised_step(model, fnn.cross_entropy, opt), data,
              fnn.TrainState.create(params, opt), epochs=1, progress=False, checkpoint=tmp_path)
    wider, wide_params, *_ = _setup(hidden=12)
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*state\.TrainState\.params\.00_linear\.w: "
                                         r"'float32\(4, 8\)' in the checkpoint") as err:
        fnn.train(fnn.supervised_step(wider, fnn.cross_entropy, opt), data,
                  fnn.TrainState.create(wide_params, opt), epochs=2, progress=False,
                  checkpoint=tmp_path)
    mismatch = err.value.__cause__
    assert isinstance(mismatch, fnn.CheckpointMismatch)
    assert mismatch.path == fnn.checkpoint.checkpoints(tmp_path)[-1]
    assert mismatch.fingerprint["step_fn"]["kind"] == "supervised_step"
    again = pickle.loads(pickle.dumps(mismatch))
    assert (str(again), again.path, again.fingerprint) == (str(mismatch), mismatch.path,
                                                           mismatch.fingerprint)


def test_a_damaged_newest_checkpoint_is_skipped_but_a_mismatch_is_not(tmp_path):
    _, params, opt, *_ = _setup()
    state = fnn.TrainState.create(params, opt)
    first = fnn.save_checkpoint(tmp_path, state)
    newest = fnn.save_checkpoint(tmp_path, state._replace(step=7))
    newest.write_bytes(newest.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="skipping ckpt-000002.npz"):
        back = fnn.load_checkpoint(tmp_path, like=state)
    assert back.path == first and back.state.step == 0
    other = fnn.TrainState.create(params, fnn.sgd(0.1))
    with pytest.raises(fnn.CheckpointMismatch) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fnn.load_checkpoint(tmp_path, like=other)
    assert err.value.path == first


def test_metrics_live_in_their_module_and_evaluator_calls_it(monkeypatch):
    from fnn import metrics

    assert fnn.accuracy is metrics.accuracy is fnn.training.accuracy
    model, params, _, x, y = _setup()
    eval_fn = fnn.evaluator(model, x, y, accuracy=True)
    monkeypatch.setattr(metrics, "accuracy", lambda pred, labels: 0.25)
    assert eval_fn(params) == {"accuracy": 0.25}


@pytest.mark.parametrize("make, match", [
    (lambda: fnn.EarlyStopping(mode="mean"), r"EarlyStopping: mode must be one of \('min', 'max'\)"),
    (lambda: fnn.EarlyStopping(patience=0), "EarlyStopping: patience must be a positive int"),
    (lambda: fnn.EarlyStopping(min_delta=-0.1), "EarlyStopping: min_delta must be a finite number >= 0"),
    (lambda: fnn.batches(np.zeros(4), batch_size=2, shuffle="no"), "batches: shuffle must be True or False"),
    (lambda: fnn.evaluator(fnn.linear(1), np.zeros((2, 1)), np.zeros((2, 1)), loss=fnn.mse,
                           batch_size=0), "evaluator: batch_size must be a positive int"),
    (lambda: fnn.train(lambda s, b: (s, {}), [(1,)], 0, epochs=-1), "train: epochs must be an int >= 0"),
    (lambda: fnn.train(lambda s, b: (s, {}), [(1,)], 0, epochs=2.5), "train: epochs must be an int >= 0"),
    (lambda: fnn.save_checkpoint("/nonexistent", {}, keep=0), "save_checkpoint: keep must be a positive int"),
], ids=["mode", "patience", "min_delta", "shuffle", "evaluator", "epochs<0", "epochs-float", "keep"])
def test_training_arguments_are_checked_by_fnn_validate(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_checkpoint_keep_is_checked_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="train: checkpoint_keep must be a positive int"):
        fnn.train(fnn.StepFn(lambda s, b: (s, {}), fingerprint={}), [(1,)], 0, epochs=1,
                  progress=False, checkpoint=tmp_path, checkpoint_keep=0)
    assert not list(tmp_path.iterdir())


def test_an_old_checkpoints_renamed_state_fields_still_read_as_the_same_run():
    from fnn.checkpoint import fingerprint_differences

    saved = {"state": {"ScaleByAdamState": {"count": "int", "mu": "float32(2,)"}}, "config": {"count": 1}}
    now = {"state": {"ScaleByAdamState": {"steps": "int", "mu": "float32(2,)"}}, "config": {"count": 1}}
    assert fingerprint_differences(saved, now) == []
    assert fingerprint_differences({"config": {"count": 1}}, {"config": {"steps": 1}}) != []
