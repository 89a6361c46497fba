"""Optimisers against steps computed by hand."""

import math

import numpy as np
import pytest

import fnn

P = {"a": {"w": np.array([1.0, -2.0], np.float32)}, "b": np.array(0.5, np.float32)}
G = {"a": {"w": np.array([0.5, 1.0], np.float32)}, "b": np.array(-1.0, np.float32)}


def _run(opt, steps=2, grads=G):
    params, state = P, opt.init(P)
    for _ in range(steps):
        updates, state = opt.update(grads, state, params)
        params = fnn.apply_updates(params, updates)
    return params


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


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt_t = torch.optim.Adam([w], lr=0.05, weight_decay=0.1)
    params = {"w": np.array([1.0, -2.0], np.float32)}
    opt = fnn.adam(0.05, weight_decay=0.1)
    state = opt.init(params)
    for i in range(5):
        g = np.array([math.sin(i), math.cos(i)], np.float32)
        opt_t.zero_grad()
        w.grad = torch.tensor(g)
        opt_t.step()
        updates, state = opt.update({"w": g}, state, params)
        params = fnn.apply_updates(params, updates)
    np.testing.assert_allclose(params["w"], w.detach().numpy(), rtol=1e-5)


def test_schedules_and_bad_hparams():
    assert fnn.step_decay(1.0, 0.5, 10)(25) == 0.25
    assert fnn.cosine_decay(1.0, 100)(100) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="lr must be a positive"):
        fnn.sgd(-1.0)
    with pytest.raises(ValueError, match="b1"):
        fnn.adam(0.1, b1=-0.5)
