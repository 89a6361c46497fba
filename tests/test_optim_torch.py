"""Each optimiser against its PyTorch counterpart: 20 steps in float64 on the same problem.

Both sides start from the same params and each computes its gradients from its own params (a
least-squares fit ``x @ w + b ~ y``, with an offset so the gradients stay large enough to clip),
so any difference in a step shows up in every later one. Skipped without torch (CI has none).
"""

import math

import numpy as np
import pytest

import fnn
from fnn import optim

torch = pytest.importorskip("torch")

STEPS = 20
RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 3))
Y = RNG.normal(size=(16, 2)) + 3.0
W0 = RNG.normal(size=(3, 2))
B0 = RNG.normal(size=(2,))


def grads(w, b):
    """Gradient of ``mean((x @ w + b - y)**2)`` with respect to ``w`` and ``b``."""
    r = 2.0 * (X @ w + b - Y) / Y.size
    return X.T @ r, r.sum(0)


def run_fnn(opt):
    params = {"00_linear": {"b": B0.copy(), "w": W0.copy()}}
    state, path, lrs = opt.init(params), [], []
    for _ in range(STEPS):
        gw, gb = grads(params["00_linear"]["w"], params["00_linear"]["b"])
        updates, state = opt.update({"00_linear": {"b": gb, "w": gw}}, state, params)
        params = fnn.apply_updates(params, updates)
        path.append((params["00_linear"]["w"], params["00_linear"]["b"]))
        lrs.append(optim.stats(state))
    return path, lrs


def run_torch(make, *, groups=False, clip=None, schedule=None):
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    opt = make([{"params": [w]}, {"params": [b], "weight_decay": 0.0}] if groups else [w, b])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule) if schedule else None
    path, stats = [], []
    for _ in range(STEPS):
        gw, gb = grads(w.detach().numpy(), b.detach().numpy())
        w.grad, b.grad = torch.from_numpy(gw), torch.from_numpy(gb)
        s = {"lr": opt.param_groups[0]["lr"]}
        if clip is not None:
            s["grad_norm"] = float(torch.nn.utils.clip_grad_norm_([w, b], clip))
        opt.step()
        if sched:
            sched.step()
        path.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
        stats.append(s)
    return path, stats


def assert_same_path(ours, theirs):
    for step, ((w, b), (tw, tb)) in enumerate(zip(ours, theirs)):
        assert w.dtype == np.float64
        np.testing.assert_allclose(w, tw, rtol=1e-10, atol=1e-12, err_msg=f"w after step {step + 1}")
        np.testing.assert_allclose(b, tb, rtol=1e-10, atol=1e-12, err_msg=f"b after step {step + 1}")


CASES = {
    "sgd": (lambda: fnn.sgd(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_weight_decay": (lambda: fnn.sgd(0.1, weight_decay=0.05),
                         lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
    "momentum": (lambda: fnn.momentum(0.05, 0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "momentum_dampening": (lambda: fnn.sgd(0.05, 0.9, dampening=0.3, weight_decay=0.01),
                           lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3,
                                                     weight_decay=0.01)),
    "nesterov": (lambda: fnn.momentum(0.05, 0.8, nesterov=True, weight_decay=0.01),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True,
                                           weight_decay=0.01)),
    "adam": (lambda: fnn.adam(0.05, 0.8, 0.99, 1e-6),
             lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    "adam_l2": (lambda: fnn.adam(0.05, weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1)),
    "adamw_all_leaves": (lambda: fnn.adamw(0.05, weight_decay=0.1, mask=None),
                         lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1)),
    "rmsprop": (lambda: fnn.rmsprop(0.01),
                lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop_momentum": (lambda: fnn.rmsprop(0.01, 0.9, 1e-6, momentum=0.8, weight_decay=0.01),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6, momentum=0.8,
                                                       weight_decay=0.01)),
    "rmsprop_centered": (lambda: fnn.rmsprop(0.01, centered=True),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True)),
    "rmsprop_centered_momentum": (lambda: fnn.rmsprop(0.01, momentum=0.9, centered=True),
                                  lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9,
                                                                centered=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_for_20_steps(name):
    ours, theirs = CASES[name]
    path, stats = run_fnn(ours())
    tpath, tstats = run_torch(theirs)
    assert_same_path(path, tpath)
    assert [s["lr"] for s in stats] == [s["lr"] for s in tstats]


def test_adamw_default_mask_is_torch_with_a_no_decay_group_for_biases():
    path, _ = run_fnn(fnn.adamw(0.05, weight_decay=0.1))
    tpath, _ = run_torch(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), groups=True)
    assert_same_path(path, tpath)
    other, _ = run_torch(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1))
    assert not np.allclose(path[-1][1], other[-1][1])  # the bias path does differ without the group


def test_clip_grad_norm_then_sgd():
    """``chain(clip_by_global_norm(m), sgd)`` = ``clip_grad_norm_(params, m); SGD.step()``, and
    the recorded norm is the one clip_grad_norm_ returns."""
    path, stats = run_fnn(optim.chain(optim.clip_by_global_norm(1.0), fnn.momentum(0.05, 0.9)))
    tpath, tstats = run_torch(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), clip=1.0)
    assert_same_path(path, tpath)
    np.testing.assert_allclose([s["grad_norm"] for s in stats],
                               [s["grad_norm"] for s in tstats], rtol=1e-12)
    norms = [s["grad_norm"] for s in stats]
    assert max(norms) > 1.0 > min(norms)  # both branches ran: clipped and left alone


def test_adamw_with_warmup_cosine_schedule_matches_lambda_lr():
    lr, schedule = 0.05, optim.warmup_cosine_decay(1.0, 5, STEPS, start=0.1)
    path, stats = run_fnn(fnn.adamw(lambda t: lr * schedule(t), weight_decay=0.1, mask=None))
    tpath, tstats = run_torch(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.1),
                              schedule=schedule)
    assert_same_path(path, tpath)
    np.testing.assert_allclose([s["lr"] for s in stats], [s["lr"] for s in tstats], rtol=1e-12)
    assert not math.isclose(stats[0]["lr"], stats[10]["lr"])
