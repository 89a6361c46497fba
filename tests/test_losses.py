import numpy as np
import pytest

import fnn

RNG = np.random.default_rng(1)


def _probs(shape):
    return 1 / (1 + np.exp(-RNG.standard_normal(shape)))


CASES = [
    ("mse", fnn.mse, lambda: RNG.standard_normal((4, 3)), lambda: RNG.standard_normal((4, 3))),
    ("bce", fnn.bce, lambda: _probs((4, 5)), lambda: RNG.random((4, 5))),
    ("bce_with_logits", fnn.bce_with_logits, lambda: RNG.standard_normal((4, 5)) * 3,
     lambda: (RNG.random((4, 5)) > 0.5).astype(float)),
    ("cross_entropy/int", fnn.cross_entropy, lambda: RNG.standard_normal((5, 4)),
     lambda: RNG.integers(0, 4, 5)),
    ("cross_entropy/onehot", fnn.cross_entropy, lambda: RNG.standard_normal((5, 4)),
     lambda: np.eye(4)[RNG.integers(0, 4, 5)]),
    ("nll", fnn.nll, lambda: fnn.log_softmax().apply({}, RNG.standard_normal((5, 4))),
     lambda: RNG.integers(0, 4, 5)),
]


@pytest.mark.parametrize("name,loss,pred,target", CASES, ids=[c[0] for c in CASES])
def test_loss_gradcheck(name, loss, pred, target):
    errors = fnn.gradcheck(loss, None, pred(), target())
    assert errors["x"] < 1e-6


def test_values_against_formulas():
    p = np.array([[0.9, 0.2], [0.4, 0.7]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    expected = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / 2
    assert fnn.bce.value(p, y) == pytest.approx(expected)
    z = np.log(p / (1 - p))
    assert fnn.bce_with_logits.value(z, y) == pytest.approx(expected)
    assert fnn.mse.value(p, y) == pytest.approx(np.sum((p - y) ** 2) / 2)
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    lse = np.log(np.exp(logits).sum(1))
    assert fnn.cross_entropy.value(logits, np.array([0, 2])) == pytest.approx(
        np.mean(lse - logits[[0, 1], [0, 2]])
    )


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    z = RNG.standard_normal((8, 5)).astype(np.float32)
    t = RNG.integers(0, 5, 8)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(t))
    ref.backward()
    value, grad = fnn.cross_entropy.vjp(z, t)
    assert value == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_stability_extreme_inputs():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.isfinite(fnn.bce_with_logits.value(np.array([[1000.0, -1000.0]]),
                                                     np.array([[0.0, 1.0]])))
        assert np.isfinite(fnn.bce.value(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])))
        v, g = fnn.cross_entropy.vjp(np.array([[1e4, -1e4]]), np.array([1]))
        assert v == pytest.approx(2e4) and np.all(np.isfinite(g))


def test_float32_gradients_stay_float32():
    for loss, pred, target in ((fnn.mse, np.ones((2, 3)), np.zeros((2, 3))),
                               (fnn.bce, np.full((2, 3), 0.5), np.zeros((2, 3))),
                               (fnn.cross_entropy, np.ones((2, 3)), np.array([0, 1]))):
        _, g = loss.vjp(pred.astype(np.float32), target)
        assert g.dtype == np.float32, loss.name


def test_label_errors():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(fnn.LossError, match=r"cross_entropy: labels must lie in \[0, 4\).*\[4\]"):
        fnn.cross_entropy.value(z, np.array([0, 1, 4]))
    with pytest.raises(fnn.LossError, match=r"\[-1\]"):
        fnn.nll.value(z, np.array([0, -1, 2]))
    with pytest.raises(fnn.LossError, match=r"integer labels \(3,\) or one-hot \(3, 4\)"):
        fnn.cross_entropy.value(z, np.zeros((3, 5)))
    with pytest.raises(fnn.LossError, match=r"mse: targets must have the predictions' shape"):
        fnn.mse.value(z, np.zeros((3, 3)))
    with pytest.raises(fnn.LossError, match="floating point"):
        fnn.mse.value(np.zeros((3, 4), int), np.zeros((3, 4)))


def test_loss_errors_are_their_own_type():
    assert issubclass(fnn.LossError, ValueError) and not issubclass(fnn.LossError, fnn.LayerError)
    with pytest.raises(fnn.LossError, match="bce: targets must lie in"):
        fnn.bce.value(np.full((2, 1), 0.5), np.full((2, 1), 2.0))


def test_the_ops_table_computes_every_loss():
    from fnn.ops.losses import LOSSES

    assert sorted(LOSSES) == ["bce", "bce_with_logits", "cross_entropy", "mse", "nll"]
    z = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    for name in ("cross_entropy", "nll"):
        loss, kernels = getattr(fnn, name), LOSSES[name]
        pred = z if name == "cross_entropy" else z - np.log(np.exp(z).sum(-1, keepdims=True))
        v_labels, g_labels = kernels.labels(pred, labels)
        v_rows, g_rows = kernels.dense(pred, onehot)
        assert v_labels == pytest.approx(v_rows) == pytest.approx(loss.value(pred, labels))
        np.testing.assert_allclose(g_labels, g_rows, atol=1e-15)
        assert kernels.dense(pred, onehot, False)[1] is None
