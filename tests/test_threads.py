import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fnn

RNG = np.random.default_rng(0)


def _conv_model():
    return fnn.serial(fnn.conv2d(3, 3, padding="same", bias=True), fnn.relu(), fnn.max_pool2d(2),
                      fnn.flatten(), fnn.linear(4))


@pytest.mark.parametrize("n,threads", [(7, 2), (7, 3), (8, 2), (2, 4)])
def test_shards_give_the_unsplit_loss_and_gradient(n, threads):
    model = _conv_model()
    _, params = model.init(fnn.key(0), (-1, 6, 6, 2))
    params = fnn.tree.tree_map(lambda a: a.astype(np.float64), params)
    x, y = RNG.standard_normal((n, 6, 6, 2)), RNG.integers(0, 4, n)
    value, grads = fnn.value_and_grad(model, fnn.cross_entropy)(params, x, y)
    value2, grads2 = fnn.value_and_grad(model, fnn.cross_entropy, threads=threads)(params, x, y)
    assert value2 == pytest.approx(value, rel=1e-12)
    assert fnn.tree.same_structure(grads, grads2)
    for a, b in zip(fnn.tree.tree_leaves(grads), fnn.tree.tree_leaves(grads2)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)


def test_a_batch_of_one_is_not_split_and_blas_threads_are_restored():
    model = fnn.serial(fnn.linear(3))
    _, params = model.init(fnn.key(0), (-1, 2))
    before = [lib["num_threads"] for lib in threadpool_info()]
    f = fnn.value_and_grad(model, fnn.mse, threads=2)
    x, y = np.ones((1, 2)), np.zeros((1, 3))
    assert f(params, x, y)[0] == fnn.value_and_grad(model, fnn.mse)(params, x, y)[0]
    f(params, np.ones((6, 2)), np.zeros((6, 3)))
    assert [lib["num_threads"] for lib in threadpool_info()] == before


def test_dropout_gets_one_key_per_shard_and_stays_reproducible():
    model = fnn.serial(fnn.linear(8), fnn.dropout(0.5), fnn.linear(1))
    _, params = model.init(fnn.key(0), (-1, 4))
    x, y = RNG.standard_normal((10, 4)), RNG.standard_normal((10, 1))
    f = fnn.value_and_grad(model, fnn.mse, threads=2)
    first, second = f(params, x, y, key=fnn.key(3)), f(params, x, y, key=fnn.key(3))
    assert first[0] == second[0]
    with pytest.raises(fnn.LayerError, match="random key"):
        f(params, x, y)  # a shard's error reaches the caller


def test_bad_thread_counts_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="positive int"):
        fnn.threads.sharded(lambda *a, **k: None, 0)
    model = _conv_model()
    _, params = model.init(fnn.key(0), (-1, 6, 6, 2))
    with pytest.raises(fnn.LayerError, match="conv2d"):
        fnn.value_and_grad(model, fnn.cross_entropy, threads=2)(
            params, np.ones((4, 6, 6, 5), np.float32), np.zeros(4, int))


def test_fit_on_two_threads_matches_one():
    d = fnn.datasets.digits()
    model = fnn.serial(fnn.linear(16), fnn.tanh(), fnn.linear(10))
    kw = dict(epochs=2, batch_size=64, progress=False)
    one, _ = fnn.fit(model, fnn.cross_entropy, fnn.sgd(0.1), d.x_train, d.y_train, **kw)
    two, _ = fnn.fit(model, fnn.cross_entropy, fnn.sgd(0.1), d.x_train, d.y_train, threads=2, **kw)
    for a, b in zip(fnn.tree.tree_leaves(one), fnn.tree.tree_leaves(two)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,chunk,threads", [(7, 2, 1), (9, 4, 1), (8, 3, 2), (3, 5, 1)])
def test_chunks_give_the_unsplit_loss_and_gradient(n, chunk, threads):
    model = _conv_model()
    _, params = model.init(fnn.key(0), (-1, 6, 6, 2))
    params = fnn.tree.tree_map(lambda a: a.astype(np.float64), params)
    x, y = RNG.standard_normal((n, 6, 6, 2)), RNG.integers(0, 4, n)
    value, grads = fnn.value_and_grad(model, fnn.cross_entropy)(params, x, y)
    f = fnn.value_and_grad(model, fnn.cross_entropy, threads=threads, chunk=chunk)
    value2, grads2 = f(params, x, y)
    assert value2 == pytest.approx(value, rel=1e-12)
    for a, b in zip(fnn.tree.tree_leaves(grads), fnn.tree.tree_leaves(grads2)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)


def test_chunks_are_run_one_after_the_other_with_a_key_each():
    seen = []

    def spy(params, x, y, *, key=None):
        seen.append((len(x), key))
        return float(len(x)), {"w": np.full(2, float(len(x)))}

    value, grads = fnn.threads.chunked(spy, 3, batch_mean=True)(None, np.zeros((7, 1)),
                                                                np.zeros(7), key=fnn.key(1))
    assert [size for size, _ in seen] == [2, 2, 3]
    assert len({k.spawn_key for _, k in seen}) == 3
    assert value == pytest.approx((2 * 2 + 2 * 2 + 3 * 3) / 7)
    np.testing.assert_allclose(grads["w"], value)
    with pytest.raises(ValueError, match="positive int"):
        fnn.threads.chunked(spy, 0, batch_mean=True)


def test_shards_and_chunks_are_refused_for_losses_that_are_not_batch_means():
    model = fnn.serial(fnn.linear(2))
    _, params = model.init(fnn.key(0), (-1, 3))
    each = fnn.Loss(fnn.mse.value, fnn.mse.vjp, "each_mse", reduction="none")
    for wrap in (lambda f: fnn.threads.sharded(f, 2), lambda f: fnn.threads.chunked(f, 4)):
        with pytest.raises(ValueError, match="'each_mse' has reduction 'none'"):
            wrap(fnn.value_and_grad(model, each))
        with pytest.raises(TypeError, match="declare that its loss is a mean over the batch"):
            wrap(lambda params, x, y, *, key=None: (0.0, params))
    mine = fnn.threads.sharded(lambda p, x, y, *, key=None: (float(np.mean(x)), p), 2,
                               batch_mean=True)
    assert mine(params, np.arange(6.0).reshape(6, 1), np.zeros(6))[0] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="reduction 'none'"):
        fnn.value_and_grad(model, each, threads=2)


def test_value_and_grad_gives_a_grad_fn_and_shards_and_chunks_keep_it_declared():
    model = fnn.serial(fnn.linear(2))
    f = fnn.value_and_grad(model, fnn.mse)
    assert isinstance(f, fnn.GradFn) and f.loss is fnn.mse and f.stateful is False
    for wrapped in (fnn.threads.sharded(f, 2), fnn.threads.chunked(f, 3),
                    fnn.value_and_grad(model, fnn.mse, threads=2, chunk=3)):
        assert isinstance(wrapped, fnn.GradFn) and wrapped.loss is fnn.mse
        assert not hasattr(wrapped.fn, "loss")  # declared in the GradFn, not on a function
    bn = fnn.value_and_grad(fnn.serial(fnn.linear(2), fnn.batch_norm()), fnn.mse, threads=2)
    assert bn.stateful and bn.loss is fnn.mse
    mine = fnn.threads.sharded(lambda p, x, y, *, key=None: (0.0, p), 2, batch_mean=True)
    assert isinstance(mine, fnn.GradFn) and mine.loss is None and not mine.stateful


def test_a_grad_fn_wrapped_in_a_plain_function_declares_nothing():
    model = fnn.serial(fnn.linear(2), fnn.batch_norm())
    _, params, state = fnn.init(model, fnn.key(0), (-1, 3))
    f = fnn.value_and_grad(model, fnn.mse)

    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)

    for wrap in (fnn.threads.sharded, fnn.threads.chunked):
        with pytest.raises(TypeError, match="expects a fnn.GradFn"):
            wrap(wrapper, 2)
    x, y = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
    with pytest.raises(ValueError, match="returned 3 values.*stateful=True"):
        fnn.threads.sharded(wrapper, 2, batch_mean=True)(params, x, y, state=state)
    with pytest.raises(TypeError, match="state"):  # chunks take no state
        fnn.threads.chunked(wrapper, 2, batch_mean=True)(params, x, y, state=state)
    with pytest.raises(ValueError, match="returned 3 values"):
        fnn.threads.chunked(lambda p, x, y, *, key=None: (0.0, p, {}), 2, batch_mean=True)(
            {}, np.zeros((5, 1)), np.zeros(5))
    declared = fnn.threads.sharded(wrapper, 2, batch_mean=True, stateful=True)
    value, _, new_state = declared(params, x, y, state=state)
    expected = f(params, x, y, state=state)
    assert value == pytest.approx(expected[0])
    np.testing.assert_allclose(new_state["01_batch_norm"]["mean"],
                               expected[2]["01_batch_norm"]["mean"], rtol=1e-6)
    with pytest.raises(ValueError, match="contradicts the GradFn's stateful=True"):
        fnn.threads.sharded(f, 2, stateful=False)
