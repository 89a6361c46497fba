"""The training toolkit (issue 24): EMA of the weights, gradient accumulation, per-group and
frozen transforms, label smoothing; each against PyTorch (or a hand reference where optax has
the semantics) in float64, and each through a checkpointed run that fails and resumes bitwise."""

import numpy as np
import pytest

import fnn
from fnn import optim


def _tree(seed=0):
    rng = np.random.default_rng(seed)
    return {"00_linear": {"b": rng.normal(size=2), "w": rng.normal(size=(3, 2))},
            "01_linear": {"b": rng.normal(size=4), "w": rng.normal(size=(2, 4))}}


def _grad_sequence(n, seed=1):
    return [_tree(seed + i) for i in range(n)]


def _torch_params(torch, params):
    return {k: torch.tensor(v, requires_grad=True) for k, v in fnn.tree.flatten_with_paths(params).items()}


def _same(a, b, rtol=1e-12, atol=1e-15):
    fa, fb = fnn.tree.flatten_with_paths(a), fnn.tree.flatten_with_paths(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_allclose(fa[k], np.asarray(fb[k]), rtol=rtol, atol=atol, err_msg=k)


# ----------------------------------------------------------------------------- EMA

@pytest.mark.parametrize("fused", [True, False])
def test_ema_matches_torch_averaged_model(fused):
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    params = _tree()
    tp = _torch_params(torch, params)
    module = torch.nn.ParameterDict({k.replace("/", "__"): torch.nn.Parameter(v.detach().clone())
                                     for k, v in tp.items()})
    averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    topt = torch.optim.Adam(module.parameters(), lr=0.05)
    opt = optim.with_ema(fnn.adam(0.05), decay=0.9)
    state = opt.init(params)
    _same(optim.ema_params(state), params)
    for grads in _grad_sequence(5):
        if fused:
            params, state = optim.apply_gradients(opt, grads, state, params)
        else:
            updates, state = opt.update(grads, state, params)
            params = fnn.apply_updates(params, updates)
        for k, g in fnn.tree.flatten_with_paths(grads).items():
            module[k.replace("/", "__")].grad = torch.tensor(g)
        topt.step()
        averaged.update_parameters(module)
        want = {k: p.detach().numpy() for k, p in averaged.module.named_parameters()}
        got = {k.replace("/", "__"): v for k, v in fnn.tree.flatten_with_paths(
            optim.ema_params(state)).items()}
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert state.steps == 5 and fnn.optim.stats(state)["lr"] == 0.05


def test_ema_is_refused_without_params_and_evaluator_needs_one():
    opt = optim.with_ema(fnn.sgd(0.1))
    params = _tree()
    with pytest.raises(ValueError, match="with_ema: update needs params"):
        opt.update(params, opt.init(params))
    with pytest.raises(ValueError, match="decay must be a number in"):
        optim.with_ema(fnn.sgd(0.1), decay=1.0)
    model = fnn.linear(2)
    _, p = model.init(fnn.key(0), (-1, 3))
    eval_fn = fnn.evaluator(model, np.ones((4, 3)), np.zeros((4, 2)), loss=fnn.mse, ema=True)
    with pytest.raises(ValueError, match="keeps no moving average.*with_ema"):
        eval_fn(fnn.TrainState.create(p, fnn.sgd(0.1)))
    with pytest.raises(ValueError, match="ema=True evaluates a TrainState"):
        eval_fn(p)


# ----------------------------------------------------------------------------- accumulation

def _model_and_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, :2].sum(axis=1) > 0).astype(np.int64)
    model = fnn.serial(fnn.linear(8), fnn.tanh(), fnn.linear(2))
    _, params = model.init(fnn.key(seed), (-1, 5))
    return model, fnn.tree.tree_map(lambda a: a.astype(np.float64), params), x, y


@pytest.mark.parametrize("make", [lambda: fnn.adam(0.05), lambda: fnn.sgd(0.3, momentum=0.9),
                                  lambda: fnn.adamw(optim.linear_schedule(0.1, 0.01, 4))])
def test_k_micro_batches_make_one_batch_k_times_larger(make):
    model, params, x, y = _model_and_data(n=64)
    grad_fn = fnn.value_and_grad(model, fnn.cross_entropy)
    big, big_state = params, make().init(params)
    acc_opt = optim.multi_steps(make(), 4)
    small, small_state = params, acc_opt.init(params)
    for i in range(0, 64, 16):  # 4 updates of 16 samples / 16 micro-batches of 4
        _, g = grad_fn(big, x[i:i + 16], y[i:i + 16])
        big, big_state = optim.apply_gradients(make(), g, big_state, big)
        for j in range(i, i + 16, 4):
            _, g = grad_fn(small, x[j:j + 4], y[j:j + 4])
            before = small
            small, small_state = optim.apply_gradients(acc_opt, g, small_state, small)
            if j < i + 12:
                assert small is before  # no update between
        _same(small, big, rtol=1e-10)
    assert small_state.steps == 4 and small_state.mini_steps == 0
    assert optim.stats(small_state) == optim.stats(big_state)  # the schedule counted updates


def test_multi_steps_update_path_and_optax_semantics():
    """The unfused path: zero updates between, the inner state untouched (optax MultiSteps)."""
    opt = optim.multi_steps(fnn.adam(0.1), 3)
    params = _tree()
    state = opt.init(params)
    for i, grads in enumerate(_grad_sequence(3)):
        updates, state = opt.update(grads, state, params)
        if i < 2:
            assert not any(np.any(u) for u in fnn.tree.tree_leaves(updates))
            assert state.inner[0].steps == 0 and state.mini_steps == i + 1
    mean = fnn.tree.tree_map(lambda *g: sum(g) / 3.0, *_grad_sequence(3))
    want, _ = fnn.adam(0.1).update(mean, fnn.adam(0.1).init(params), params)
    _same(updates, want)
    with pytest.raises(ValueError, match="every must be a positive int"):
        optim.multi_steps(fnn.sgd(0.1), 0)


# ----------------------------------------------------------------------------- groups, frozen

def test_per_group_learning_rates_match_torch_param_groups():
    torch = pytest.importorskip("torch")
    params = _tree()
    opt = optim.multi_transform(
        {"body": fnn.sgd(0.01, momentum=0.9), "head": fnn.adam(0.1)},
        lambda path: "body" if path.startswith("00_") else "head")
    state = opt.init(params)
    tp = _torch_params(torch, params)
    body = [v for k, v in tp.items() if k.startswith("00_")]
    head = [v for k, v in tp.items() if not k.startswith("00_")]
    tsgd = torch.optim.SGD(body, lr=0.01, momentum=0.9)
    tadam = torch.optim.Adam(head, lr=0.1)
    for grads in _grad_sequence(4):
        params, state = optim.apply_gradients(opt, grads, state, params)
        for k, g in fnn.tree.flatten_with_paths(grads).items():
            tp[k].grad = torch.tensor(g)
        tsgd.step()
        tadam.step()
    _same(params, fnn.tree.unflatten_paths({k: v.detach().numpy() for k, v in tp.items()}))
    assert sorted(state.inner["head"][0].mu) == ["01_linear"]


def test_frozen_leaves_never_move_and_cost_no_optimiser_memory():
    params = _tree()
    frozen = lambda path: path.startswith("00_")  # noqa: E731
    opt = optim.freeze(fnn.adam(0.1), frozen)
    state = opt.init(params)
    full = fnn.adam(0.1).init(params)
    assert fnn.tree_size(state) == fnn.tree_size(full) - 2 * fnn.tree_size(params["00_linear"])
    new = params
    for grads in _grad_sequence(3):
        new, state = optim.apply_gradients(opt, grads, state, new)
        updates, _ = opt.update(grads, state, new)
        assert not np.any(updates["00_linear"]["w"]) and np.any(updates["01_linear"]["w"])
    assert new["00_linear"]["w"] is params["00_linear"]["w"]
    # the trained part moved exactly as Adam on it alone
    alone, alone_state = params["01_linear"], fnn.adam(0.1).init(params["01_linear"])
    for grads in _grad_sequence(3):
        alone, alone_state = optim.apply_gradients(fnn.adam(0.1), grads["01_linear"],
                                                   alone_state, alone)
    _same(new["01_linear"], alone, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"params/00_linear/b has the label 'x'"):
        optim.multi_transform({"a": fnn.sgd(0.1)}, lambda p: "x").init(params)


# ----------------------------------------------------------------------------- resume

def _run(folder, optimizer, loss, epochs=3, fail_at=None, ema=False):
    model, params, x, y = _model_and_data(n=48)
    data = fnn.batches(x, y, batch_size=8, rng=3)
    step = fnn.supervised_step(model, loss, optimizer)
    calls = {"n": 0}

    def failing(s, batch):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("boom")
        return step(s, batch)

    eval_fn = fnn.evaluator(model, x[:16], y[:16], loss=loss, ema=ema)
    return fnn.train(step._replace(fn=failing), data, fnn.TrainState.create(params, optimizer),
                     epochs=epochs, eval_fn=eval_fn, progress=False, checkpoint=folder)


def _bitwise(a, b):
    assert fnn.tree.same_structure(a, b)
    for u, v in zip(fnn.tree.tree_leaves(a), fnn.tree.tree_leaves(b)):
        np.testing.assert_array_equal(u, v)
        assert np.asarray(u).dtype == np.asarray(v).dtype


TOOLS = {
    "ema": (lambda: optim.with_ema(fnn.adam(0.05), 0.9), fnn.cross_entropy, True),
    "multi_steps": (lambda: optim.multi_steps(fnn.adam(0.05), 4), fnn.cross_entropy, False),
    "groups": (lambda: optim.multi_transform({"a": fnn.sgd(0.1, momentum=0.9),
                                              "b": fnn.adam(0.01)},
                                             lambda p: "a" if p.startswith("00") else "b"),
               fnn.cross_entropy, False),
    "freeze": (lambda: optim.freeze(fnn.adam(0.05), lambda p: p.startswith("02")),
               fnn.cross_entropy, False),
    "label_smoothing": (lambda: fnn.adam(0.05), fnn.cross_entropy(label_smoothing=0.1), False),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_checkpointed_run_that_fails_resumes_bitwise(tmp_path, tool):
    make, loss, ema = TOOLS[tool]
    clean, clean_hist = _run(tmp_path / "clean", make(), loss, ema=ema)
    with pytest.raises(fnn.TrainingError):
        _run(tmp_path / "run", make(), loss, fail_at=11, ema=ema)  # 6 batches an epoch
    state, hist = _run(tmp_path / "run", make(), loss, ema=ema)
    assert hist.resumed and state.step == clean.step == 18
    _bitwise(state, clean)
    assert hist.train == clean_hist.train and hist.eval == clean_hist.eval
    if tool == "ema":
        averaged = optim.ema_params(state.opt_state)
        assert not np.array_equal(averaged["00_linear"]["w"], state.params["00_linear"]["w"])
    if tool == "freeze":
        assert state.params["02_linear"]["w"] is not None
        _, fresh, _, _ = _model_and_data(n=48)
        np.testing.assert_array_equal(state.params["02_linear"]["w"], fresh["02_linear"]["w"])


def test_evaluation_uses_the_average_when_asked():
    model, params, x, y = _model_and_data(n=48)
    opt = optim.with_ema(fnn.adam(0.05), 0.5)
    state = fnn.TrainState.create(params, opt)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    for i in range(0, 48, 8):
        state, _ = step(state, (x[i:i + 8], y[i:i + 8]))
    plain = fnn.evaluator(model, x, y, loss=fnn.cross_entropy)
    averaged = fnn.evaluator(model, x, y, loss=fnn.cross_entropy, ema=True)
    assert averaged(state)["loss"] == plain(optim.ema_params(state.opt_state))["loss"]
    assert averaged(state)["loss"] != plain(state)["loss"]
    assert averaged.fingerprint["ema"] is True


# ----------------------------------------------------------------------------- live plot

def _png(fig):
    import io

    from matplotlib.image import imread

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    buf.seek(0)
    return imread(buf)


@pytest.mark.parametrize("layout", ["constrained", "fixed"])
def test_refreshed_curves_are_pixel_identical_to_new_ones(layout):
    pytest.importorskip("matplotlib")
    history = fnn.History(train={"loss": [2.0, 1.0]}, eval={"loss": [2.2, 1.5],
                                                              "accuracy": [0.3, 0.5]})
    fig = fnn.plot.curves(history, title="run", layout=layout)
    _png(fig)
    for epoch in range(2, 9):
        history.train["loss"].append(1.0 / epoch)
        history.eval["loss"].append(1.2 / epoch + 0.05 * (epoch % 3))
        history.eval["accuracy"].append(0.5 + 0.05 * epoch)
        assert fnn.plot.refresh_curves(fig, history)
    new = lambda: fnn.plot.curves(history, title="run", layout=layout)  # noqa: E731
    np.testing.assert_array_equal(_png(fig), _png(new()))
    history.best_epoch = 3  # a new line: the figure must be made again
    assert not fnn.plot.refresh_curves(fig, history)
    fig = new()
    history.best_epoch = 5
    assert fnn.plot.refresh_curves(fig, history)
    np.testing.assert_array_equal(_png(fig), _png(new()))
    history.train["accuracy"] = [0.1] * 9  # a new line in a panel
    assert not fnn.plot.refresh_curves(fig, history)


def test_fixed_layout_figure_is_drawn_once_per_save(monkeypatch):
    """A figure with a layout engine (even matplotlib's placeholder for "none") is drawn
    twice by savefig, once to lay it out: the live plot's render would cost twice as much."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    history = fnn.History(train={"loss": [2.0, 1.0]}, eval={"loss": [2.2, 1.5]})
    fig = fnn.plot.curves(history, title="run", layout="fixed")
    draws = []
    plain_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, r: (draws.append(1), plain_draw(self, r)))
    _png(fig)
    assert len(draws) == 1
    assert fig.get_layout_engine() is None


def _fake_epochs(logger, n, history=None):
    history = history or fnn.History(train={"loss": []})
    for epoch in range(n):
        history.train["loss"].append(1.0 / (epoch + 1))
        logger(epoch, None, history)
    return history


def test_live_plot_renders_at_most_every_interval_and_all_epochs_at_the_end(tmp_path):
    pytest.importorskip("matplotlib")
    logger = fnn.LossLogger(tmp_path / "c.png", interval=60.0)
    _fake_epochs(logger, 30)
    assert logger.renders == 0 and not (tmp_path / "c.png").exists()
    logger.flush()
    assert logger.renders == 1 and (tmp_path / "c.png").stat().st_size > 1000
    assert len(logger._fig.axes[0].lines[0].get_xdata()) == 30  # the loss after each epoch
    copy = fnn.LossLogger(tmp_path / "d.png", interval=60.0)
    history = _fake_epochs(copy, 3)
    history.train["loss"].append(9.0)  # the loop keeps appending: the logger keeps a copy
    copy.flush()
    assert list(copy._fig.axes[0].lines[0].get_ydata()) == [1.0, 0.5, 1 / 3]
    with pytest.raises(ValueError, match="curves: layout must be one of"):
        fnn.plot.curves(history, layout="tight")
    logger.flush()
    assert logger.renders == 1  # nothing pending
    every = fnn.LossLogger(tmp_path / "e.png", interval=0)
    _fake_epochs(every, 4)
    assert every.renders == 4
    with pytest.raises(ValueError, match="interval must be a finite number >= 0"):
        fnn.LossLogger(tmp_path / "x.png", interval=-1)


def test_live_plot_timer_renders_the_pending_epochs(tmp_path):
    pytest.importorskip("matplotlib")
    import time

    logger = fnn.LossLogger(tmp_path / "c.png", interval=0.3)
    _fake_epochs(logger, 5)
    deadline = time.monotonic() + 20
    while logger.renders == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logger.renders == 1 and (tmp_path / "c.png").exists()
    with logger._lock:
        assert not logger._dirty and logger._timer is None


def test_resuming_with_other_loss_options_or_tools_is_refused(tmp_path):
    """The loss's options are in its name, so in the step's fingerprint; a wrapped optimiser
    has another state tree: either way the checkpoint belongs to another run."""
    _run(tmp_path / "a", fnn.adam(0.05), fnn.cross_entropy(label_smoothing=0.1), epochs=1)
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*label_smoothing=0.1"):
        _run(tmp_path / "a", fnn.adam(0.05), fnn.cross_entropy(label_smoothing=0.2), epochs=2)
    _run(tmp_path / "b", fnn.adam(0.05), fnn.cross_entropy, epochs=1)
    with pytest.raises(ValueError, match=r"belongs to another run"):
        _run(tmp_path / "b", optim.with_ema(fnn.adam(0.05)), fnn.cross_entropy, epochs=2)
