"""Optimiser faults (issue 24): each case passed silently, or failed with a raw error, before."""

import math

import numpy as np
import pytest

import fnn
from fnn import optim


def _params():
    return {"00_linear": {"b": np.zeros(3), "w": np.ones((2, 3))}}


def _grads():
    return {"00_linear": {"b": np.full(3, 0.5), "w": np.full((2, 3), 2.0)}}


def _clipped_like_torch(torch, grads):
    """fnn's clip_by_global_norm(1.0) of ``grads`` ({"a", "b"}), its state, and torch's
    clip_grad_norm_ of the same gradients."""
    t = optim.clip_by_global_norm(1.0)
    out, state = t.update(grads, t.init(None))
    ta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    tb = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    ta.grad, tb.grad = torch.tensor(grads["a"]), torch.tensor(grads["b"])
    torch.nn.utils.clip_grad_norm_([ta, tb], 1.0)
    return out, state, {"a": ta.grad.numpy(), "b": tb.grad.numpy()}


def test_clip_by_global_norm_nan_leaf_makes_every_gradient_nan_like_torch():
    torch = pytest.importorskip("torch")
    grads = {"a": np.array([1.0, np.nan]), "b": np.array([3.0, 4.0])}
    out, state, want = _clipped_like_torch(torch, grads)
    assert math.isnan(state.grad_norm)
    assert np.isnan(out["b"]).all() and np.isnan(out["a"]).all()
    np.testing.assert_array_equal(out["b"], want["b"])


def test_clip_by_global_norm_inf_leaf_matches_torch():
    torch = pytest.importorskip("torch")
    grads = {"a": np.array([1.0, np.inf]), "b": np.array([3.0, 4.0])}
    out, _, want = _clipped_like_torch(torch, grads)
    np.testing.assert_array_equal(out["a"], want["a"])
    np.testing.assert_array_equal(out["b"], want["b"])


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_schedule_giving_a_bad_learning_rate_raises(bad):
    opt = fnn.sgd(lambda step: 0.1 if step == 0 else bad)
    params = _params()
    state = opt.init(params)
    params, state = optim.apply_gradients(opt, _grads(), state, params)
    with pytest.raises(ValueError, match=r"schedule gave the learning rate .* at step 1"):
        optim.apply_gradients(opt, _grads(), state, params)
    with pytest.raises(ValueError, match="learning rate"):
        opt.update(_grads(), state, params)


@pytest.mark.parametrize("target, own", [(lambda: fnn.rmsprop(0.1), "scale_by_rms"),
                                         (lambda: fnn.momentum(0.1, 0.9), "trace"),
                                         (lambda: fnn.rmsprop(0.1, centered=True),
                                          "scale_by_stddev")])
def test_adam_state_given_to_another_optimiser_is_refused_naming_both(target, own):
    params = _params()
    adam_state = fnn.adam(0.1).init(params)
    opt = target()
    for run in (lambda: opt.update(_grads(), adam_state, params),
                lambda: optim.apply_gradients(opt, _grads(), adam_state, params)):
        with pytest.raises(TypeError, match=rf"{own}: got a ScaleByAdamState \(the state of "
                                            r"scale_by_adam\)"):
            run()


def test_own_state_read_back_as_look_alike_is_accepted():
    """A NamedTuple look-alike of the same name (fnn.load without a template) still works."""
    import collections

    LookAlike = collections.namedtuple("TraceState", ["steps", "trace"])
    opt = optim.trace(0.9)
    out, state = opt.update({"w": np.ones(2)}, LookAlike(0, {"w": np.zeros(2)}))
    assert state.steps == 1


def test_gradient_leaf_of_another_shape_is_refused_naming_the_path():
    params, grads = _params(), _grads()
    grads["00_linear"]["b"] = grads["00_linear"]["b"].reshape(1, 3)
    opt = fnn.sgd(0.1)
    with pytest.raises(ValueError, match=r"params/00_linear/b has shape \(1, 3\), the param "
                                         r"\(3,\)"):
        optim.apply_gradients(opt, grads, opt.init(params), params)
    with pytest.raises(ValueError, match="params/00_linear/b"):
        opt.update(grads, opt.init(params), params)
    with pytest.raises(ValueError, match="params/00_linear/b"):
        fnn.apply_updates(params, grads)
    adam = fnn.adam(0.1)
    with pytest.raises(ValueError, match="params/00_linear/b"):
        optim.apply_gradients(adam, grads, adam.init(params), params)


def test_missing_and_extra_gradient_keys_are_refused_naming_the_path():
    params = _params()
    opt = fnn.adam(0.1)
    missing = {"00_linear": {"w": np.ones((2, 3))}}
    with pytest.raises(ValueError, match="no entry for params/00_linear/b"):
        optim.apply_gradients(opt, missing, opt.init(params), params)
    extra = _grads()
    extra["01_linear"] = {"w": np.ones(2)}
    with pytest.raises(ValueError, match="entry params/01_linear/w that the params do not have"):
        optim.apply_gradients(opt, extra, opt.init(params), params)
    with pytest.raises(ValueError, match="params/01_linear/w"):
        fnn.apply_updates(params, extra)


@pytest.mark.parametrize("make", [fnn.adam, fnn.adamw])
def test_adam_eps_zero_refused_at_construction(make):
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0 .*0 / 0"):
        make(1e-3, eps=0.0)
    assert make(1e-3, eps=1e-12) is not None


def test_supervised_step_with_a_bad_user_gradient_names_the_path():
    """The training step goes through the same check: a layer whose backward returns a (1, D)
    bias gradient fails at the step, naming the path, instead of reshaping the param."""
    model = fnn.linear(3)
    _, params = model.init(fnn.key(0), (-1, 2))
    bad = model._replace(vjp=lambda p, x, **kw: (lambda y, pb: (
        y, lambda dy: ({"b": pb(dy)[0]["b"][None], "w": pb(dy)[0]["w"]}, None)))(
        *model.vjp(p, x, **kw)))
    step = fnn.supervised_step(bad, fnn.mse, fnn.sgd(0.1))
    state = fnn.TrainState.create(params, fnn.sgd(0.1))
    with pytest.raises(ValueError, match=r"params/b has shape \(1, 3\)"):
        step(state, (np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32)))
