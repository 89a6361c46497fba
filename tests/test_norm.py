"""Normalisation layers and state in the contract: gradients against finite differences
(float64), batch statistics across shards, state threaded by combinators and training, and
PyTorch's BatchNorm/LayerNorm/GroupNorm as oracles (skipped without torch)."""

import numpy as np
import pytest

import fnn
from fnn.tree import tree_leaves, tree_map

RNG = np.random.default_rng(42)  # not gradcheck's cotangent seed (0): x must not be dy
SHAPES = {"dense": (6, 5), "1d": (4, 7, 3), "2d": (3, 5, 4, 4)}


def f64(tree):
    return tree_map(lambda a: np.asarray(a, np.float64), tree)


def randomized(params, seed=1):
    """Params away from the init (scale 1, bias 0) so every term of the gradient shows."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: a + rng.normal(size=a.shape), f64(params))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_batch_norm_gradients(shape, affine):
    bn = fnn.batch_norm(affine=affine)
    _, params, state = bn.init(fnn.key(0), (-1, *shape[1:]))
    x = RNG.normal(size=shape) * 3 + 1
    errors = fnn.assert_gradients_close(bn, randomized(params), x, state=state)
    assert ("params/scale" in errors) == affine and "x" in errors


@pytest.mark.parametrize("make,shape", [
    (lambda: fnn.layer_norm(), SHAPES["dense"]),
    (lambda: fnn.layer_norm(), SHAPES["2d"]),
    (lambda: fnn.layer_norm((-3, -2, -1)), SHAPES["2d"]),
    (lambda: fnn.layer_norm(affine=False), SHAPES["1d"]),
    (lambda: fnn.group_norm(2), SHAPES["2d"]),
    (lambda: fnn.group_norm(3), SHAPES["1d"]),
    (lambda: fnn.group_norm(1, affine=False), SHAPES["dense"]),
], ids=["ln-dense", "ln-2d", "ln-chw", "ln-noaffine", "gn-2d", "gn-1d", "gn-dense"])
def test_layer_and_group_norm_gradients(make, shape):
    layer = make()
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    fnn.assert_gradients_close(layer, randomized(params), RNG.normal(size=shape) * 2 - 1)


def test_batch_norm_training_uses_the_batch_and_inference_the_running_statistics():
    bn = fnn.batch_norm(momentum=0.5)
    _, params, state = bn.init(fnn.key(0), (-1, 2))
    x = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    y, _, new = bn.vjp(params, x, state=state)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(new["mean"], 0.5 * x.mean(0))                      # 0.5*0 + 0.5*mean
    np.testing.assert_allclose(new["var"], 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-6)  # unbiased
    assert new["mean"].dtype == np.float32 and state["mean"][0] == 0  # the old state is intact
    np.testing.assert_allclose(bn.apply(params, x, state=new),
                               (x - new["mean"]) / np.sqrt(new["var"] + 1e-5), rtol=1e-5)


def test_state_errors_name_the_layer():
    bn = fnn.batch_norm()
    _, params, state = bn.init(fnn.key(0), (-1, 3))
    x = np.ones((4, 3), np.float32)
    with pytest.raises(fnn.LayerError, match=r"batch_norm\(\): has state .*pass state="):
        bn.apply(params, x)
    with pytest.raises(fnn.LayerError, match=r"batch_norm\(\): input \(4, 3\) does not fit "
                                             r"state\['var'\] of shape \(2,\)"):
        bn.vjp(params, x, state={"mean": state["mean"], "var": np.ones(2, np.float32)})
    with pytest.raises(fnn.LayerError, match="more than one value per channel"):
        bn.vjp(params, x[:1], state=state)
    model = fnn.serial(fnn.linear(3), fnn.batch_norm())
    _, p, s = fnn.init(model, fnn.key(0), (-1, 3))
    with pytest.raises(fnn.LayerError, match=r"serial: state should be a dict with keys "
                                             r"\['01_batch_norm'\]"):
        model.apply(p, x, state={})
    with pytest.raises(fnn.LayerError, match="this model has no state"):
        fnn.serial(fnn.linear(3)).apply({"00_linear": p["00_linear"]}, x, state=s)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        fnn.batch_norm(momentum=2)
    with pytest.raises(fnn.LayerError, match=r"group_norm\(4\): the channels \(6\) must split"):
        fnn.group_norm(4).init(fnn.key(0), (-1, 6))
    with pytest.raises(ValueError, match="axes must be the last axes"):
        fnn.layer_norm((-3, -1))


def bn_model():
    return fnn.serial(fnn.conv2d(4, 3, padding="same"), fnn.batch_norm(), fnn.relu(),
                      fnn.residual(fnn.conv2d(4, 3, padding="same"), fnn.batch_norm()),
                      fnn.flatten(), fnn.linear(6), fnn.batch_norm(), fnn.tanh(), fnn.linear(3))


def test_combinators_thread_state_keyed_like_params():
    model = bn_model()
    assert model.stateful and not fnn.serial(fnn.linear(2)).stateful
    _, params, state = fnn.init(model, fnn.key(0), (-1, 5, 5, 2))
    assert sorted(state) == ["01_batch_norm", "03_residual", "06_batch_norm"]
    assert sorted(state["03_residual"]) == ["01_batch_norm"]
    x = RNG.normal(size=(8, 5, 5, 2)).astype(np.float32)
    y, pullback, new = model.vjp(params, x, state=state)
    assert fnn.tree.same_structure(new, state)
    assert not np.allclose(new["03_residual"]["01_batch_norm"]["mean"], 0)
    grads, dx = pullback(np.ones_like(y))
    assert fnn.tree.same_structure(grads, params) and dx.shape == x.shape
    assert model.apply(params, x, state=new).shape == y.shape
    both = fnn.parallel(fnn.batch_norm(), fnn.identity())
    _, pp, ss = fnn.init(both, fnn.key(0), (-1, 3))
    (a, b), _, ss2 = both.vjp(pp, RNG.normal(size=(4, 3)), state=ss)
    assert sorted(ss2) == ["00_batch_norm"] and b.shape == a.shape


@pytest.mark.parametrize("batch", [8, 7])
def test_sharded_batch_statistics_are_the_whole_batchs(batch):
    model = bn_model()
    _, params, state = fnn.init(model, fnn.key(0), (-1, 5, 5, 2))
    params, state = randomized(params), f64(state)
    x, y = RNG.normal(size=(batch, 5, 5, 2)), RNG.integers(0, 3, batch)
    one = fnn.value_and_grad(model, fnn.cross_entropy)(params, x, y, state=state)
    two = fnn.value_and_grad(model, fnn.cross_entropy, threads=2)(params, x, y, state=state)
    assert two[0] == pytest.approx(one[0], rel=1e-12)
    for a, b in zip(tree_leaves(one[1:]), tree_leaves(two[1:])):  # grads and new state
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    # shards normalised on their own statistics would differ (the test can fail)
    half = fnn.value_and_grad(model, fnn.cross_entropy)(params, x[:4], y[:4], state=state)
    assert not np.allclose(half[2]["01_batch_norm"]["mean"], one[2]["01_batch_norm"]["mean"])


def test_a_failing_shard_fails_the_batch_instead_of_hanging():
    model = fnn.serial(fnn.linear(3), fnn.batch_norm())
    _, params, state = fnn.init(model, fnn.key(0), (-1, 2))
    f = fnn.value_and_grad(model, fnn.mse, threads=2)
    x = np.ones((3, 2), np.float32)  # shards of 1 and 2 rows: the first cannot... but the batch can
    value, grads, _ = f(params, x, np.zeros((3, 3), np.float32), state=state)
    bad = dict(params, **{"00_linear": {"w": params["00_linear"]["w"][:1], "b": params["00_linear"]["b"]}})
    with pytest.raises(fnn.LayerError, match="does not fit"):
        f(bad, x, np.zeros((3, 3), np.float32), state=state)


def test_chunks_refuse_batch_statistics():
    model = fnn.serial(fnn.linear(3), fnn.batch_norm())
    with pytest.raises(ValueError, match="chunked: the model keeps batch statistics"):
        fnn.value_and_grad(model, fnn.mse, chunk=4)


def test_training_carries_the_model_state_and_resumes_it_exactly(tmp_path):
    model = fnn.serial(fnn.linear(8), fnn.batch_norm(momentum=0.3), fnn.relu(), fnn.linear(3))
    x = RNG.normal(size=(60, 4)).astype(np.float32)
    y = np.argmax(x[:, :3] + 0.5 * x[:, 3:], axis=1)  # learnable
    _, params, mstate = fnn.init(model, fnn.key(0), (-1, 4))
    opt = fnn.adam(3e-2)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt, threads=2)
    start = fnn.TrainState.create(params, opt, model_state=mstate)
    eval_fn = fnn.evaluator(model, x, y, loss=fnn.cross_entropy, accuracy=True)
    data = fnn.batches(x, y, batch_size=16, rng=1)
    full, hist = fnn.train(step, data, start, epochs=6, eval_fn=eval_fn, progress=False)
    moved = full.model_state["01_batch_norm"]["mean"]
    assert not np.allclose(moved, 0) and hist.eval["accuracy"][-1] > 0.6
    with pytest.raises(ValueError, match="has state"):
        eval_fn(full.params)
    assert eval_fn((full.params, full.model_state)) == eval_fn(full)
    # stop after 2 epochs, resume from the checkpoint: the same bits as the straight run
    fnn.train(step, data, start, epochs=3, eval_fn=eval_fn, checkpoint=tmp_path, progress=False)
    resumed, _ = fnn.train(step, data, start, epochs=6, eval_fn=eval_fn, checkpoint=tmp_path,
                           progress=False)
    for a, b in zip(tree_leaves(full), tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="TrainState has none"):
        step(fnn.TrainState.create(params, opt), (x[:8], y[:8]))


def test_fit_returns_params_and_model_state():
    model = fnn.serial(fnn.linear(8), fnn.batch_norm(), fnn.tanh(), fnn.linear(2))
    x = RNG.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    (params, state), hist = fnn.fit(model, fnn.cross_entropy, fnn.adam(1e-2), x, y, epochs=3,
                                    progress=False)
    assert sorted(state) == ["01_batch_norm"]
    assert fnn.predict(model, params, x, state=state).shape == (40, 2)
    with pytest.raises(ValueError, match="pass state="):
        fnn.predict(model, params, x)


def test_summary_counts_state():
    rows = fnn.summary(bn_model(), (-1, 5, 5, 2), print_fn=None)
    assert sum(r["state"] for r in rows) == 2 * (4 + 4 + 6)
    assert sum(r["params"] for r in rows) == 72 + 8 + 144 + 8 + 100 * 6 + 6 + 12 + 6 * 3 + 3


# ---- PyTorch as the oracle ----------------------------------------------------------------

def _channels_first(a):
    return np.moveaxis(a, -1, 1) if a.ndim > 2 else a


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_batch_norm_matches_torch_in_train_and_eval_mode(shape, affine):
    torch = pytest.importorskip("torch")
    torch_bn = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        shape[-1], momentum=0.2, eps=1e-3, affine=affine).double()
    bn = fnn.batch_norm(momentum=0.2, eps=1e-3, affine=affine)
    _, params, state = bn.init(fnn.key(0), (-1, *shape[1:]))
    params, state = randomized(params), f64(state)
    if affine:
        with torch.no_grad():
            torch_bn.weight.copy_(torch.from_numpy(params["scale"]))
            torch_bn.bias.copy_(torch.from_numpy(params["bias"]))
    for step in range(4):  # several training steps: outputs, gradients, running statistics
        x = RNG.normal(size=shape) * (step + 1) + step
        dy = RNG.normal(size=shape)
        y, pullback, state = bn.vjp(params, x, state=state)
        grads, dx = pullback(dy)
        tx = torch.tensor(_channels_first(x), requires_grad=True)
        torch_bn.train()
        ty = torch_bn(tx)
        ty.backward(torch.from_numpy(_channels_first(dy)))
        np.testing.assert_allclose(y, np.moveaxis(ty.detach().numpy(), 1, -1) if len(shape) > 2
                                   else ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_channels_first(dx), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        if affine:
            np.testing.assert_allclose(grads["scale"], torch_bn.weight.grad.numpy(), rtol=1e-10)
            np.testing.assert_allclose(grads["bias"], torch_bn.bias.grad.numpy(), rtol=1e-10)
            torch_bn.zero_grad()
        np.testing.assert_allclose(state["mean"], torch_bn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(state["var"], torch_bn.running_var.numpy(), rtol=1e-12)
    torch_bn.eval()
    x = RNG.normal(size=shape)
    with torch.no_grad():
        expected = torch_bn(torch.from_numpy(_channels_first(x))).numpy()
    np.testing.assert_allclose(_channels_first(bn.apply(params, x, state=state)), expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,shape", [("layer", SHAPES["dense"]), ("layer", SHAPES["1d"]),
                                        ("layer3", SHAPES["2d"]), ("group", SHAPES["2d"]),
                                        ("group", SHAPES["1d"])])
def test_layer_and_group_norm_match_torch(kind, shape):
    torch = pytest.importorskip("torch")
    if kind == "group":
        groups = 2 if shape[-1] == 4 else 3
        layer, ref = fnn.group_norm(groups, eps=1e-4), torch.nn.GroupNorm(groups, shape[-1],
                                                                          eps=1e-4)
        to_torch = _channels_first  # torch's GroupNorm is channels-first
    else:
        axes = (-3, -2, -1) if kind == "layer3" else -1
        layer = fnn.layer_norm(axes, eps=1e-4)
        ref = torch.nn.LayerNorm(shape[1:] if kind == "layer3" else shape[-1:], eps=1e-4)
        to_torch = np.asarray  # LayerNorm normalises the last axes, as fnn does
    ref = ref.double()
    _, params = layer.init(fnn.key(0), (-1, *shape[1:]))
    params = randomized(params)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(params["scale"]))
        ref.bias.copy_(torch.from_numpy(params["bias"]))
    x, dy = RNG.normal(size=shape) * 2 + 1, RNG.normal(size=shape)
    y, pullback = layer.vjp(params, x)
    grads, dx = pullback(dy)
    tx = torch.tensor(to_torch(x), requires_grad=True)
    ty = ref(tx)
    ty.backward(torch.from_numpy(to_torch(dy).copy()))
    np.testing.assert_allclose(to_torch(y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_torch(dx), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["scale"], ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["bias"], ref.bias.grad.numpy(), rtol=1e-10)


def test_gradcheck_of_a_bias_before_batch_norm_whose_gradient_is_zero():
    """The bias is cancelled by the normalisation: its gradient is 0, the finite differences
    ~1e-10 of rounding noise; measured against the whole check's scale, that is no error."""
    model = fnn.serial(fnn.linear(4), fnn.batch_norm(), fnn.tanh(), fnn.linear(2))
    _, params, state = fnn.init(model, fnn.key(0), (-1, 3))
    errors = fnn.assert_gradients_close(model, randomized(params), RNG.normal(size=(5, 3)),
                                        state=state)
    assert "params/00_linear/b" in errors
