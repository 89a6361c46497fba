"""Optimisers, transforms and schedules against steps computed by hand."""

import math

import numpy as np
import optree
import pytest

import fnn
from fnn import optim

P = {"a": {"w": np.array([1.0, -2.0], np.float32)}, "b": np.array(0.5, np.float32)}
G = {"a": {"w": np.array([0.5, 1.0], np.float32)}, "b": np.array(-1.0, np.float32)}


def _run(opt, steps=2, grads=G, params=P):
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(grads, state, params)
        params = fnn.apply_updates(params, updates)
    return params


def _updates(t, grads_seq, params=None):
    """The updates ``t`` gives for each grads tree of ``grads_seq`` (params fixed)."""
    state, out = t.init(params if params is not None else grads_seq[0]), []
    for g in grads_seq:
        u, state = t.update(g, state, params)
        out.append(u)
    return out, state


def w(x):
    return {"w": np.array(x, dtype=float)}


# ----------------------------------------------------------------------------- aliases

def test_sgd():
    p = _run(fnn.sgd(0.1))
    np.testing.assert_allclose(p["a"]["w"], [1.0 - 0.1, -2.0 - 0.2], rtol=1e-6)
    assert p["a"]["w"].dtype == np.float32


def test_sgd_weight_decay_and_schedule():
    p = _run(fnn.sgd(lambda step: 0.1 / (step + 1), weight_decay=0.5), steps=1)
    # g + wd * p = 0.5 + 0.5 * 1.0 = 1.0 for w[0]
    assert p["a"]["w"][0] == pytest.approx(1.0 - 0.1 * 1.0)


def test_momentum_and_nesterov():
    p = _run(fnn.momentum(0.1, 0.9))
    # v1 = g, v2 = 0.9 g + g = 1.9 g; total step = 0.1 * (1 + 1.9) g
    np.testing.assert_allclose(p["a"]["w"], np.array([1.0, -2.0]) - 0.1 * 2.9 * np.array([0.5, 1.0]), rtol=1e-6)
    p = _run(fnn.momentum(0.1, 0.9, nesterov=True))
    # steps: g + 0.9 v1 = 1.9 g, then g + 0.9 v2 = 2.71 g
    np.testing.assert_allclose(p["b"], 0.5 + 0.1 * (1.9 + 2.71), rtol=1e-6)


def test_momentum_dampening():
    # v1 = g (undamped, as PyTorch), v2 = 0.9 g + 0.25 g = 1.15 g, v3 = 0.9 * 1.15 g + 0.25 g
    p = _run(fnn.sgd(0.1, momentum=0.9, dampening=0.75), steps=3)
    np.testing.assert_allclose(p["b"], 0.5 + 0.1 * (1 + 1.15 + 1.285), rtol=1e-6)


def test_adam_matches_textbook():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = _run(fnn.adam(lr, b1, b2, eps), steps=3)
    w, m, v = np.array([1.0, -2.0]), 0.0, 0.0
    g = np.array([0.5, 1.0])
    for t in range(1, 4):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p["a"]["w"], w, rtol=1e-6)


def test_adam_l2_vs_adamw_decoupled():
    params = {"w": np.array([2.0]), "b": np.array([2.0])}
    grads = {"w": np.array([1.0]), "b": np.array([1.0])}
    # adam: g <- g + 0.5 * 2 = 2 first, so the direction stays m_hat / sqrt(v_hat) = 1
    u, _ = fnn.adam(0.1, weight_decay=0.5).update(grads, fnn.adam(0.1, weight_decay=0.5).init(params), params)
    np.testing.assert_allclose(u["w"], [-0.1], rtol=1e-6)
    # adamw: -lr * (1 + wd * p) = -0.1 * 2 on the kernel, -0.1 on the bias (not decayed)
    opt = fnn.adamw(0.1, weight_decay=0.5)
    u, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(u["w"], [-0.2], rtol=1e-6)
    np.testing.assert_allclose(u["b"], [-0.1], rtol=1e-6)
    opt = fnn.adamw(0.1, weight_decay=0.5, mask=None)  # every leaf decays
    u, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(u["b"], [-0.2], rtol=1e-6)


def test_rmsprop_by_hand():
    # alpha 0.5, eps 0: v1 = 0.5 * 4 = 2, d1 = 2 / sqrt(2); v2 = 0.5 * 2 + 0.5 * 1 = 1.5, d2 = 1 / sqrt(1.5)
    out, _ = _updates(fnn.rmsprop(0.1, alpha=0.5, eps=0.0), [w([2.0]), w([1.0])], w([0.0]))
    np.testing.assert_allclose([u["w"][0] for u in out], [-0.1 * 2 / math.sqrt(2), -0.1 / math.sqrt(1.5)])
    # momentum 0.5: b1 = d1, b2 = 0.5 d1 + d2
    out, _ = _updates(fnn.rmsprop(0.1, alpha=0.5, eps=0.0, momentum=0.5), [w([2.0]), w([1.0])], w([0.0]))
    d1, d2 = 2 / math.sqrt(2), 1 / math.sqrt(1.5)
    np.testing.assert_allclose(out[1]["w"], [-0.1 * (0.5 * d1 + d2)])
    # centred: m1 = 1, v1 = 2 -> d1 = 2 / sqrt(2 - 1); m2 = 1, v2 = 1.5 -> 1 / sqrt(0.5)
    out, _ = _updates(fnn.rmsprop(0.1, alpha=0.5, eps=0.0, centered=True), [w([2.0]), w([1.0])], w([0.0]))
    np.testing.assert_allclose([u["w"][0] for u in out], [-0.2, -0.1 / math.sqrt(0.5)])


@pytest.mark.parametrize("make", [
    lambda: fnn.sgd(0.1, 0.9, nesterov=True, weight_decay=1e-2),
    lambda: fnn.adam(1e-2, weight_decay=1e-2),
    lambda: fnn.adamw(optim.warmup_cosine_decay(1e-2, 2, 10)),
    lambda: fnn.rmsprop(1e-2, momentum=0.9, centered=True, weight_decay=1e-2),
    lambda: optim.chain(optim.clip_by_global_norm(0.5), optim.clip(0.3), fnn.adamw(1e-2)),
])
def test_float32_stays_float32(make):
    opt = make()
    state = opt.init(P)
    for _ in range(3):
        updates, state = opt.update(G, state, P)
        assert all(u.dtype == np.float32 for u in optree.tree_leaves(updates))


def test_apply_updates_keeps_each_params_dtype():
    params = {"a": np.ones(2, np.float32), "b": np.ones(2)}
    out = fnn.apply_updates(params, {"a": np.full(2, 0.5), "b": np.full(2, 0.5, np.float32)})
    assert (out["a"].dtype, out["b"].dtype) == (np.float32, np.float64)
    assert out["a"].tolist() == [1.5, 1.5]


def test_adam_does_not_touch_its_inputs():
    opt = fnn.adam(0.1)
    state = opt.init(P)
    _, state = opt.update(G, state, P)
    kept = optree.tree_map(np.copy, (G, state))
    opt.update(G, state, P)
    for a, b in zip(optree.tree_leaves((G, state)), optree.tree_leaves(kept)):
        np.testing.assert_array_equal(a, b)


def test_old_call_sites_keep_working():
    for opt in (fnn.sgd(0.1, weight_decay=0.1), fnn.momentum(0.1, 0.9, nesterov=True, weight_decay=0.1),
                fnn.adam(1e-3, 0.9, 0.999, 1e-8, weight_decay=0.1), fnn.sgd(fnn.step_decay(0.1, 0.5, 2)),
                fnn.adam(fnn.cosine_decay(0.1, 10))):
        assert isinstance(opt, fnn.Optimizer)
        assert _run(opt)["a"]["w"].dtype == np.float32


# ----------------------------------------------------------------------------- transforms

def test_scale_and_learning_rate():
    assert optim.scale(-3.0).update(w([2.0]), optim.EmptyState())[0]["w"].tolist() == [-6.0]
    t = optim.scale_by_learning_rate(lambda step: [0.5, 0.25, 0.125][step])
    out, state = _updates(t, [w([2.0])] * 3)
    assert [u["w"][0] for u in out] == [-1.0, -0.5, -0.25]
    assert state == optim.ScaleByLearningRateState(3, 0.125)
    assert math.isnan(t.init(None).lr)
    with pytest.raises(ValueError, match="step 1"):
        _updates(optim.scale_by_learning_rate(lambda s: [1.0, math.nan][s]), [w([1.0])] * 2)


def test_add_decayed_weights():
    params = {"b": np.array([4.0]), "w": np.array([2.0])}
    grads = {"b": np.array([1.0]), "w": np.array([1.0])}
    t = optim.add_decayed_weights(0.5)
    u, _ = t.update(grads, t.init(params), params)
    assert (u["b"].tolist(), u["w"].tolist()) == ([3.0], [2.0])
    t = optim.add_decayed_weights(0.5, mask=optim.weights_only)
    u, _ = t.update(grads, t.init(params), params)
    assert (u["b"].tolist(), u["w"].tolist()) == ([1.0], [2.0])
    with pytest.raises(ValueError, match="needs params"):
        t.update(grads, t.init(params))


def test_trace_plain_dampened_nesterov():
    g = [w([1.0]), w([2.0]), w([4.0])]
    out, state = _updates(optim.trace(0.5), g)
    # v1 = 1, v2 = 0.5 + 2 = 2.5, v3 = 1.25 + 4 = 5.25
    assert [u["w"][0] for u in out] == [1.0, 2.5, 5.25]
    assert state.steps == 3 and state.trace["w"].tolist() == [5.25]
    out, _ = _updates(optim.trace(0.5, dampening=0.5), g)
    # v1 = 1 (undamped), v2 = 0.5 + 1 = 1.5, v3 = 0.75 + 2 = 2.75
    assert [u["w"][0] for u in out] == [1.0, 1.5, 2.75]
    out, _ = _updates(optim.trace(0.5, nesterov=True), g)
    # g + 0.5 v: 1 + 0.5, 2 + 1.25, 4 + 2.625
    assert [u["w"][0] for u in out] == [1.5, 3.25, 6.625]
    assert optim.scale_by_momentum is optim.trace


def test_scale_by_adam_two_steps():
    out, state = _updates(optim.scale_by_adam(0.5, 0.75, eps=0.0), [w([2.0]), w([-2.0])])
    # t=1: m = 1, v = 1 -> m_hat = 2, v_hat = 4 -> 1
    # t=2: m = 0.5 - 1 = -0.5, v = 0.75 + 1 = 1.75; m_hat = -0.5 / 0.75, v_hat = 1.75 / 0.4375 = 4
    np.testing.assert_allclose([u["w"][0] for u in out], [1.0, (-0.5 / 0.75) / 2.0])
    assert state.steps == 2
    np.testing.assert_allclose(state.mu["w"], [-0.5])
    np.testing.assert_allclose(state.nu["w"], [1.75])
    u, _ = optim.scale_by_adam(eps=1.0).update(w([0.0]), optim.scale_by_adam().init(w([0.0])))
    assert u["w"].tolist() == [0.0]


def test_scale_by_rms_and_stddev():
    out, state = _updates(optim.scale_by_rms(0.5, eps=1.0), [w([2.0]), w([2.0])])
    # v1 = 2 -> 2 / (sqrt 2 + 1); v2 = 1 + 2 = 3 -> 2 / (sqrt 3 + 1)
    np.testing.assert_allclose([u["w"][0] for u in out], [2 / (math.sqrt(2) + 1), 2 / (math.sqrt(3) + 1)])
    np.testing.assert_allclose(state.nu["w"], [3.0])
    out, state = _updates(optim.scale_by_stddev(0.5, eps=0.0), [w([2.0]), w([-2.0])])
    # m1 = 1, v1 = 2 -> 2 / 1; m2 = 0.5 - 1 = -0.5, v2 = 3 -> -2 / sqrt(3 - 0.25)
    np.testing.assert_allclose([u["w"][0] for u in out], [2.0, -2 / math.sqrt(2.75)])
    np.testing.assert_allclose(state.mu["w"], [-0.5])


def test_clip_by_global_norm():
    t = optim.clip_by_global_norm(2.5)
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    u, state = t.update(grads, t.init(grads))
    factor = 2.5 / (5.0 + 1e-6)  # torch.nn.utils.clip_grad_norm_'s formula
    np.testing.assert_allclose(u["a"], [3.0 * factor], rtol=1e-12)
    np.testing.assert_allclose(u["b"], [[4.0 * factor]], rtol=1e-12)
    assert state.grad_norm == 5.0
    u, state = optim.clip_by_global_norm(10.0).update(grads, state)
    assert u is grads and state.grad_norm == 5.0  # under the limit: untouched
    assert optim.global_norm({"x": np.ones((2, 2), np.float32)}) == 2.0


def test_clip_by_value():
    u, _ = optim.clip(0.5).update({"w": np.array([-2.0, 0.25, 2.0])}, optim.EmptyState())
    assert u["w"].tolist() == [-0.5, 0.25, 0.5]


def test_chain_order():
    g = [w([4.0])]
    a, _ = _updates(optim.chain(optim.clip(1.0), optim.scale(3.0)), g)
    b, _ = _updates(optim.chain(optim.scale(3.0), optim.clip(1.0)), g)
    assert (a[0]["w"][0], b[0]["w"][0]) == (3.0, 1.0)
    opt = optim.chain(optim.trace(0.5), optim.scale_by_learning_rate(0.1))
    state = opt.init(w([0.0]))
    assert isinstance(state, tuple) and isinstance(state[0], optim.TraceState)
    with pytest.raises(TypeError, match="transform 1"):
        optim.chain(optim.scale(1.0), "sgd")
    with pytest.raises(ValueError, match="2 transforms"):
        opt.update(w([1.0]), (state[0],))


def test_masked_by_predicate_and_by_tree():
    params = {"00_linear": {"b": np.zeros(1), "w": np.zeros(1)}, "01_conv": {"w": np.zeros(1)}}
    grads = {"00_linear": {"b": np.ones(1), "w": np.ones(1)}, "01_conv": {"w": np.ones(1)}}
    t = optim.masked(optim.trace(0.5), optim.weights_only)
    state = t.init(params)
    assert sorted(state.inner.trace) == ["00_linear/w", "01_conv/w"]  # state only where it acts
    u, state = t.update(grads, state, params)
    u, state = t.update(grads, state, params)
    assert (u["00_linear"]["w"][0], u["01_conv"]["w"][0], u["00_linear"]["b"][0]) == (1.5, 1.5, 1.0)
    tree = {"00_linear": {"b": True, "w": False}, "01_conv": {"w": False}}
    t = optim.masked(optim.scale(0.0), tree)
    u, _ = t.update(grads, t.init(params), params)
    assert (u["00_linear"]["b"][0], u["00_linear"]["w"][0]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="structure"):
        optim.masked(optim.scale(0.0), {"00_linear": True}).init(params)


def test_weights_only_default():
    assert optim.weights_only("00_linear/w") and optim.weights_only("w")
    assert not optim.weights_only("00_linear/b") and not optim.weights_only("03_norm/scale")


# ----------------------------------------------------------------------------- stats

def test_stats_reports_lr_and_grad_norm():
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      fnn.adamw(optim.linear_schedule(0.0, 1e-2, 2), weight_decay=0.0))
    params = w([0.0, 0.0])
    state = opt.init(params)
    before = optim.stats(state)
    assert math.isnan(before["lr"]) and math.isnan(before["grad_norm"])
    seen = []
    for g in ([3.0, 4.0], [0.0, 0.5], [1.0, 0.0]):
        _, state = opt.update(w(g), state, params)
        seen.append(optim.stats(state))
    assert seen == [{"grad_norm": 5.0, "lr": 0.0}, {"grad_norm": 0.5, "lr": 5e-3},
                    {"grad_norm": 1.0, "lr": 1e-2}]
    assert optim.stats(optim.scale(1.0).init(params)) == {}
    assert optim.stats(fnn.sgd(0.1).init(params)).keys() == {"lr"}


def test_stats_in_a_training_history():
    """What ``supervised_step`` will do: merge ``stats`` into each step's metrics, so the
    History holds each epoch's mean lr (and gradient norm)."""
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(-1, 1)
    model = fnn.serial(fnn.linear(1))
    _, params = model.init(fnn.key(0), x.shape)
    lr = optim.in_epochs(optim.piecewise([0.1, 0.01], [2]), steps_per_epoch=4, per_step=False)
    opt = optim.chain(optim.clip_by_global_norm(10.0), fnn.sgd(lr))
    step = fnn.supervised_step(model, fnn.mse, opt)

    def step_with_stats(state, batch):
        state, metrics = step(state, batch)
        return state, {**metrics, **optim.stats(state.opt_state)}

    _, history = fnn.train(step_with_stats, fnn.batches(x, 2 * x, batch_size=10, rng=fnn.key(1)),
                           fnn.TrainState.create(params, opt), epochs=4, progress=False)
    assert history.train["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert len(history.train["grad_norm"]) == 4 and all(g > 0 for g in history.train["grad_norm"])


# ----------------------------------------------------------------------------- schedules

def test_schedules():
    assert fnn.step_decay(1.0, 0.5, 10)(25) == 0.25
    assert fnn.cosine_decay(1.0, 100)(100) == pytest.approx(0.0)
    assert fnn.cosine_decay(1.0, 100)(50) == pytest.approx(0.5)
    assert optim.constant(0.3)(10**6) == 0.3
    assert optim.exponential_decay(2.0, 0.5)(3) == 0.25
    assert optim.exponential_decay(2.0, 0.5, 2)(1) == pytest.approx(2 / math.sqrt(2))
    assert optim.exponential_decay(2.0, 0.5, 2, staircase=True)(3) == 1.0
    assert [optim.linear_schedule(1.0, 0.0, 4)(t) for t in (-1, 0, 1, 4, 8)] == [1.0, 1.0, 0.75, 0.0, 0.0]
    assert [optim.linear_warmup(2.0, 4, start=1.0)(t) for t in (0, 2, 4, 9)] == [1.0, 1.5, 2.0, 2.0]
    s = optim.piecewise([3.0, 2.0, 1.0], [5, 7])
    assert [s(t) for t in (0, 4, 5, 6, 7, 100)] == [3.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    s = optim.join_schedules([optim.constant(1.0), optim.linear_schedule(2.0, 0.0, 4), optim.constant(5.0)], [3, 5])
    assert [s(t) for t in (0, 2, 3, 4, 5, 9)] == [1.0, 1.0, 2.0, 1.5, 5.0, 5.0]
    s = optim.warmup_cosine_decay(1.0, 4, 12, start=0.5, final=0.1)
    assert [s(t) for t in (0, 2, 4)] == [0.5, 0.75, 1.0]
    assert s(8) == pytest.approx(0.55) and s(12) == pytest.approx(0.1) and s(50) == pytest.approx(0.1)


def test_in_epochs():
    s = optim.in_epochs(optim.warmup_cosine_decay(1.0, 2, 4), steps_per_epoch=10)
    assert [s(t) for t in (0, 5, 20, 30, 40)] == pytest.approx([0.0, 0.25, 1.0, 0.5, 0.0])
    s = optim.in_epochs(optim.step_decay(1.0, 0.1, 2), 10, per_step=False)
    assert [s(t) for t in (0, 19, 20, 39, 40)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    s = optim.in_epochs(optim.linear_schedule(0.0, 1.0, 1), 4, per_step=False)
    assert [s(t) for t in (0, 3, 4)] == [0.0, 0.0, 1.0]
    assert optim.in_epochs(optim.linear_schedule(0.0, 1.0, 1), np.int64(4))(2) == 0.5
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="in_epochs: steps_per_epoch must be a positive int"):
            optim.in_epochs(optim.constant(1.0), bad)


@pytest.mark.parametrize("build, match", [
    (lambda: optim.piecewise([1.0, 2.0], [1, 2]), r"piecewise: needs len\(boundaries\)"),
    (lambda: optim.piecewise([1.0, 2.0, 3.0], [5, 2]), "piecewise: boundaries must increase"),
    (lambda: optim.join_schedules([optim.constant(1.0)], [3]), "join_schedules"),
    (lambda: optim.join_schedules([optim.constant(1.0), 2.0], [3]), r"schedules\[1\]"),
    (lambda: optim.warmup_cosine_decay(1.0, 10, 5), "warmup_cosine_decay: steps"),
    (lambda: optim.cosine_decay(1.0, 0), "cosine_decay: steps"),
    (lambda: optim.step_decay(1.0, 0.5, 0), "step_decay: every"),
    (lambda: optim.linear_schedule(-1.0, 0.0, 3), "linear_schedule: start"),
    (lambda: optim.constant(math.inf), "constant: value"),
])
def test_schedule_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("build, match", [
    (lambda: fnn.sgd(-1.0), r"sgd: lr must be a finite number > 0 .* got -1.0"),
    (lambda: fnn.sgd(0.0), "sgd: lr"),
    (lambda: fnn.sgd(math.inf), "sgd: lr"),
    (lambda: fnn.adam(math.nan), "adam: lr"),
    (lambda: fnn.adamw(np.float32("nan")), "adamw: lr"),
    (lambda: fnn.rmsprop(-1e-3), "rmsprop: lr"),
    (lambda: fnn.sgd("0.1"), r"sgd: lr .* got '0.1' \(str\)"),
    (lambda: fnn.sgd(True), r"sgd: lr .*\(bool\)"),
    (lambda: fnn.sgd(lambda s: math.nan), r"sgd: lr\(0\)"),
    (lambda: fnn.adam(0.1, b1=-0.5), r"adam: b1 must be a number in \[0, 1\), got -0.5"),
    (lambda: fnn.adam(0.1, b2=1.0), "adam: b2"),
    (lambda: fnn.adamw(0.1, eps=-1.0), "adamw: eps"),
    (lambda: fnn.adamw(0.1, weight_decay=math.inf), "adamw: weight_decay"),
    (lambda: fnn.momentum(0.1, 1.5), "momentum: beta"),
    (lambda: fnn.momentum(0.1, 0.9, dampening=2.0), "momentum: dampening"),
    (lambda: fnn.sgd(0.1, 0.9, nesterov=True, dampening=0.5), "nesterov needs"),
    (lambda: fnn.sgd(0.1, nesterov=True), "nesterov needs momentum > 0"),
    (lambda: fnn.momentum(math.nan, 0.9), "momentum: lr"),
    (lambda: fnn.sgd(0.1, dampening=0.5), "needs momentum"),
    (lambda: fnn.rmsprop(0.1, alpha=1.0), "rmsprop: alpha"),
    (lambda: fnn.rmsprop(0.1, momentum=-0.1), "rmsprop: momentum"),
    (lambda: optim.clip_by_global_norm(0.0), "clip_by_global_norm: max_norm"),
    (lambda: optim.clip(-1.0), "clip: max_delta"),
    (lambda: optim.scale(math.nan), "scale: factor"),
])
def test_bad_hyperparameters_fail_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_numpy_scalars_are_accepted_and_become_floats():
    opt = fnn.adamw(np.float32(1e-3), np.float64(0.9), b2=np.float32(0.999), eps=np.array(1e-8),
                    weight_decay=np.float32(0.01))
    p = _run(opt)
    assert p["a"]["w"].dtype == np.float32
    opt = fnn.sgd(np.float32(0.1), np.float32(0.5), weight_decay=np.int64(0))
    _, state = opt.update(G, opt.init(P), P)
    assert type(optim.stats(state)["lr"]) is float
    assert type(state[-1].lr) is float  # a Python float, not np.float32: no promotion surprises
    fnn.rmsprop(np.float32(1e-2), np.float32(0.9), momentum=np.float32(0.9))


# ----------------------------------------------------------------------------- states as data

OPTIMIZERS = {
    "sgd": lambda: fnn.sgd(0.1),
    "nesterov": lambda: fnn.sgd(0.1, 0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: fnn.adam(1e-2, weight_decay=1e-3),
    "adamw": lambda: fnn.adamw(optim.warmup_cosine_decay(1e-2, 1, 5)),
    "rmsprop": lambda: fnn.rmsprop(1e-2, momentum=0.9, centered=True),
    "clipped": lambda: optim.chain(optim.clip_by_global_norm(0.5), fnn.adamw(1e-2)),
}
PARAMS = {"00_linear": {"b": np.zeros(2, np.float32), "w": np.ones((3, 2), np.float32)},
          "01_relu": {}}
GRADS = {"00_linear": {"b": np.array([0.1, -0.2], np.float32),
                       "w": np.arange(6, dtype=np.float32).reshape(3, 2) / 6}, "01_relu": {}}


def _steps(opt, state, n, params=PARAMS):
    for _ in range(n):
        u, state = opt.update(GRADS, state, params)
        params = fnn.apply_updates(params, u)
    return params, state


def _npz_round_trip(tmp_path, state, template):
    """Write the state's leaves as .npz (keys = paths, no pickle) and rebuild the state from the
    template's tree structure: what a checkpoint writer does."""
    paths, leaves, _ = optree.tree_flatten_with_path(state)
    np.savez(tmp_path / "s.npz", **{"/".join(map(str, p)) or "_": np.asarray(x) for p, x in zip(paths, leaves)})
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        loaded = [f["/".join(map(str, p)) or "_"] for p in optree.tree_paths(template)]
    return optree.tree_unflatten(optree.tree_structure(template), loaded)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_is_plain_data_and_resumes_after_round_trip(name, tmp_path):
    opt = OPTIMIZERS[name]()
    template = opt.init(PARAMS)
    _, state = _steps(opt, template, 3)
    leaves = optree.tree_leaves(state)
    assert all(isinstance(x, (np.ndarray, int, float)) and not isinstance(x, bool) for x in leaves)
    assert optree.tree_structure(state) == optree.tree_structure(template)
    loaded = _npz_round_trip(tmp_path, state, template)
    assert type(loaded) is type(state) and [type(s) for s in loaded] == [type(s) for s in state]
    # resuming from the loaded state (0-d arrays where ints and floats were) is bit-identical
    params, _ = _steps(opt, state, 1)
    again, _ = _steps(opt, loaded, 1)
    for a, b in zip(optree.tree_leaves(params), optree.tree_leaves(again)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert optim.stats(loaded) == optim.stats(state)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_survives_fnn_save_and_load(name, tmp_path):
    opt = OPTIMIZERS[name]()
    _, state = _steps(opt, opt.init(PARAMS), 2)
    try:
        fnn.save(tmp_path / "opt.npz", state)
    except TypeError as err:
        pytest.skip(f"fnn.save does not write NamedTuple trees on this branch yet: {err}")
    loaded = fnn.load(tmp_path / "opt.npz", like=opt.init(PARAMS))
    assert optree.tree_structure(loaded) == optree.tree_structure(state)
    for a, b in zip(optree.tree_leaves(loaded), optree.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda: fnn.sgd(0.1), lambda: fnn.sgd(optim.cosine_decay(0.1, 5), momentum=0.9, nesterov=True),
    lambda: fnn.adam(0.01, weight_decay=0.1), lambda: fnn.adamw(0.01),
    lambda: fnn.rmsprop(0.01, centered=True, momentum=0.5),
    lambda: optim.chain(optim.clip_by_global_norm(0.5), fnn.sgd(0.1, momentum=0.9)),
    lambda: optim.masked(fnn.sgd(0.1), lambda path: path.startswith("a")),  # not fused
    lambda: optim.chain(fnn.sgd(0.1), optim.scale(0.5)),  # not fused: the scale comes last
])
def test_apply_gradients_is_update_then_apply_bit_for_bit(make, backend):
    opt = make()
    rng = np.random.default_rng(0)
    # a float64 leaf among float32 ones, and random values (where rounding shows)
    big = (300, 300)  # past fnn.ops.update.ADD_SCALED_COMPILED_MIN: the compiled pass
    params = {**P, "h": np.array([1.0, 2.0]), "r": rng.standard_normal((7, 9), np.float32),
              "big": rng.standard_normal(big, np.float32)}
    grads = {**G, "h": np.array([0.25, -0.5]), "r": rng.standard_normal((7, 9), np.float32),
             "big": rng.standard_normal(big, np.float32)}
    p1 = p2 = params
    s1 = s2 = opt.init(params)
    for _ in range(3):
        updates, s1 = opt.update(grads, s1, p1)
        p1 = fnn.apply_updates(p1, updates)
        p2, s2 = optim.apply_gradients(opt, grads, s2, p2)
    for a, b in zip(optree.tree_leaves(p1), optree.tree_leaves(p2)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert optree.tree_structure(p1) == optree.tree_structure(p2)
    assert optim.stats(s1) == optim.stats(s2)
    assert params["a"]["w"].tolist() == [1.0, -2.0]  # inputs untouched


def test_apply_gradients_fuses_the_chains_that_end_with_the_learning_rate():
    assert fnn.adamw(0.1).step is not None and fnn.sgd(0.1).step is not None
    assert optim.scale_by_learning_rate(0.1).step is not None
    assert optim.chain(fnn.sgd(0.1), optim.scale(0.5)).step is None
    assert optim.masked(fnn.sgd(0.1), optim.weights_only).step is None
    # declared, not hidden: no function attributes
    assert not hasattr(fnn.sgd(0.1).update, "step")
    assert not hasattr(optim.scale_by_learning_rate(0.1).update, "step")


# ----------------------------------------------------------------------------- the protocol

def test_optimizer_is_init_update_and_an_optional_step():
    assert fnn.Optimizer._fields == ("init", "update", "step")
    t = fnn.Optimizer(lambda p: (), lambda g, s, p=None: (g, s))
    assert t.step is None and len(t) == 3
    assert optim.GradientTransformation is fnn.Optimizer


def test_a_wrapped_update_runs_the_wrapper_not_the_fused_step():
    """``Optimizer(opt.init, my_update)`` declares no step: apply_gradients runs the two calls
    (and the wrapper), with the same result as the fused step of the original."""
    opt, calls = fnn.sgd(0.1, momentum=0.9), []

    def logged(grads, state, params=None):
        calls.append(1)
        return opt.update(grads, state, params)

    wrapped = fnn.Optimizer(opt.init, logged)
    assert wrapped.step is None
    p1, s1 = optim.apply_gradients(opt, G, opt.init(P), P)
    p2, s2 = optim.apply_gradients(wrapped, G, wrapped.init(P), P)
    assert calls == [1]
    for a, b in zip(optree.tree_leaves((p1, s1)), optree.tree_leaves((p2, s2))):
        np.testing.assert_array_equal(a, b)


def test_chain_takes_pairs_and_triples_and_fuses_only_a_declared_last_step():
    lr = optim.scale_by_learning_rate(0.5)
    init, update, step = lr
    for t in ((init, update), (init, update, None)):  # plain tuples: no fused step
        opt = optim.chain(optim.clip(1.0), t)
        assert opt.step is None
        assert optim.apply_gradients(opt, w([4.0]), opt.init(w([0.0])), w([1.0]))[0]["w"].tolist() == [0.5]
    opt = optim.chain(optim.clip(1.0), (init, update, step))
    assert opt.step is not None
    new, state = optim.apply_gradients(opt, w([4.0]), opt.init(w([0.0])), w([1.0]))
    assert new["w"].tolist() == [0.5] and state[-1].steps == 1
    for bad in ((init,), (init, update, 3), (init, update, step, None), [init, update]):
        with pytest.raises(TypeError, match="transform 0 must be an Optimizer"):
            optim.chain(bad)


def test_an_optimizer_of_ones_own_without_step_field_still_applies():
    class Mine(tuple):  # (init, update) without a step field: the two calls
        init = property(lambda self: self[0])
        update = property(lambda self: self[1])

    opt = fnn.sgd(0.1)
    mine = Mine((opt.init, opt.update))
    new, _ = optim.apply_gradients(mine, G, mine.init(P), P)
    np.testing.assert_array_equal(new["a"]["w"], optim.apply_gradients(opt, G, opt.init(P), P)[0]["a"]["w"])


def test_every_old_transforms_name_still_works():
    from fnn.optim import transforms
    for name in ("ClipByGlobalNormState", "EmptyState", "GradientTransformation", "Mask",
                 "MaskedState", "Optimizer", "ScaleByAdamState", "ScaleByLearningRateState",
                 "ScaleByRmsState", "ScaleByStddevState", "Schedule", "TraceState",
                 "add_decayed_weights", "apply_gradients", "apply_updates", "chain", "clip",
                 "clip_by_global_norm", "global_norm", "masked", "scale", "scale_by_adam",
                 "scale_by_learning_rate", "scale_by_momentum", "scale_by_rms", "scale_by_stddev",
                 "stats", "trace", "weights_only"):
        assert getattr(transforms, name) is getattr(optim, name, getattr(transforms, name)), name
    assert transforms.scale_by_adam is optim.scale_by_adam


# ----------------------------------------------------------------------------- deprecated names

@pytest.fixture
def fresh_warnings(monkeypatch):
    """Deprecation warnings not yet given in this process (each warns once)."""
    import fnn._deprecated
    monkeypatch.setattr(fnn._deprecated, "_warned", set())


def test_state_count_is_a_deprecated_alias_of_steps(fresh_warnings):
    opt = fnn.adam(0.1, weight_decay=0.0)
    _, state = opt.update(G, opt.init(P), P)
    adam_state, lr_state = state
    with pytest.warns(DeprecationWarning, match=r"ScaleByAdamState.count is deprecated: use "
                                                r"fnn.optim.ScaleByAdamState.steps"):
        assert adam_state.count == 1
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adam_state.count == adam_state.steps == 1  # once only
    with pytest.warns(DeprecationWarning, match="ScaleByLearningRateState.count"):
        assert lr_state.count == 1
    _, tr = _updates(optim.trace(0.5), [w([1.0])])
    with pytest.warns(DeprecationWarning, match="TraceState.count"):
        assert tr.count == 1
    assert lr_state._fields == ("steps", "lr") and tr._fields == ("steps", "trace")


def test_linear_schedule_under_its_old_name_warns_once(fresh_warnings):
    with pytest.warns(DeprecationWarning, match="fnn.optim.linear is deprecated: use "
                                                "fnn.optim.linear_schedule"):
        s = optim.linear(0.0, 1.0, 4)
    assert s(1) == optim.linear_schedule(0.0, 1.0, 4)(1) == 0.25
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.linear(0.0, 1.0, 4)
    assert "linear" not in optim.__all__ and "linear_schedule" in optim.__all__
    assert fnn.linear is not optim.linear  # the layer keeps its name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_gives_the_same_bits_on_both_backends(dtype):
    """scale_by_adam's one pass per leaf (compiled, on leaves past ADD_SCALED_COMPILED_MIN)
    is numpy's three, bit for bit; small leaves and nested dicts too."""
    if not fnn.ops.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    params = {"big": rng.standard_normal((300, 300)).astype(dtype),
              "sub": {"b": rng.standard_normal(5).astype(dtype)}}
    opt, runs = fnn.adamw(0.01, weight_decay=0.1), []
    for backend in ("numpy", "compiled"):
        with fnn.ops.using(backend):
            p, s = params, opt.init(params)
            for i in range(3):
                grads = optree.tree_map(lambda a, i=i: np.cos(a * (i + 1)), p)
                p, s = optim.apply_gradients(opt, grads, s, p)
            runs.append(optree.tree_leaves((p, s)))
    for a, b in zip(*runs):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
