"""Augmentation: exact on what can be computed by hand, seeded, and resumable in training."""

import numpy as np
import pytest

import fnn
from fnn import augment

RNG = np.random.default_rng(0)


def test_shift_matches_a_hand_made_shift_with_fill():
    x = RNG.random((3, 5, 6, 2)).astype(np.float32)
    out = augment.shift(x, np.array([1, 0, -2]), np.array([0, 2, 1]), fill=-1.0)
    want = np.full_like(x, -1.0)
    want[0, 1:] = x[0, :-1]
    want[1, :, 2:] = x[1, :, :-2]
    want[2, :-2, 1:] = x[2, 2:, :-1]
    np.testing.assert_array_equal(out, want)
    assert out.dtype == np.float32 and not np.shares_memory(out, x)


def test_rotations_of_0_90_180_degrees_are_exact():
    x = RNG.random((2, 7, 7, 3))
    np.testing.assert_allclose(augment.rotate(x, 0.0), x, atol=1e-12)
    np.testing.assert_allclose(augment.rotate(x, [90.0, 90.0]), np.rot90(x, axes=(1, 2)),
                               atol=1e-12)
    np.testing.assert_allclose(augment.rotate(x, 180.0), np.rot90(x, 2, axes=(1, 2)),
                               atol=1e-12)
    small = augment.rotate(x, 5.0)
    assert 0 < np.abs(small - x).max() and small.shape == x.shape


def test_random_draws_are_functions_of_the_key():
    x = RNG.random((8, 10, 10, 1)).astype(np.float32)
    a = augment.random_shifts(fnn.key(1), x, 3)
    np.testing.assert_array_equal(a, augment.random_shifts(fnn.key(1), x, 3))
    assert not np.array_equal(a, augment.random_shifts(fnn.key(2), x, 3))
    r = augment.random_rotations(fnn.key(1), x, 20)
    np.testing.assert_array_equal(r, augment.random_rotations(fnn.key(1), x, 20))
    with pytest.raises(ValueError, match="random_shifts: max_shift must be an int >= 0, got -1"):
        augment.random_shifts(fnn.key(0), x, -1)
    with pytest.raises(ValueError, match=r"random_rotations: degrees must be a number in \[0, 180\]"):
        augment.random_rotations(fnn.key(0), x, 270)
    with pytest.raises(ValueError, match=r"expects float images \(N, H, W, C\)"):
        augment.shift(np.zeros((2, 3)), 0, 0)


def test_augmented_batches_are_reproducible_and_resume_exactly(tmp_path):
    x = RNG.random((40, 8, 8, 1)).astype(np.float32)
    y = RNG.integers(0, 3, 40)
    data = augment.augmented(fnn.batches(x, y, batch_size=8, rng=1), fnn.key(5), shift=1,
                             degrees=15)
    first = [b[0] for b in data.epoch(0)]
    again = [b[0] for b in data.epoch(0)]
    later = [b[0] for b in data.epoch(0, start=2)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first[2:], later):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], next(iter(data.epoch(1)))[0])
    plain = next(iter(fnn.batches(x, y, batch_size=8, rng=1).epoch(0)))
    np.testing.assert_array_equal(next(iter(data.epoch(0)))[1], plain[1])  # labels unchanged
    model = fnn.serial(fnn.flatten(), fnn.linear(3))
    _, params = model.init(fnn.key(0), (-1, 8, 8, 1))
    opt = fnn.sgd(0.1)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    ref, _ = fnn.train(step, data, fnn.TrainState.create(params, opt), epochs=3, progress=False)

    def broken(epoch, state, history):
        if epoch == 1:
            raise RuntimeError("crash")

    with pytest.raises(fnn.TrainingError):
        fnn.train(step, data, fnn.TrainState.create(params, opt), epochs=3, progress=False,
                  callbacks=[broken], checkpoint=tmp_path)
    out, _ = fnn.train(step, data, fnn.TrainState.create(params, opt), epochs=3, progress=False,
                       checkpoint=tmp_path)
    np.testing.assert_array_equal(out.params["01_linear"]["w"], ref.params["01_linear"]["w"])


def test_augmented_refuses_bad_arguments_before_the_first_epoch():
    data = fnn.batches(np.zeros((4, 6, 6, 1), np.float32), np.arange(4), batch_size=2)
    with pytest.raises(ValueError, match=r"augmented: degrees must be a number in \[0, 180\]"):
        augment.augmented(data, fnn.key(0), degrees=float("nan"))
    with pytest.raises(ValueError, match=r"augmented: shift must be an int >= 0, got 1.5"):
        augment.augmented(data, fnn.key(0), shift=1.5)
    with pytest.raises(ValueError, match=r"augmented: fill must be a finite number"):
        augment.augmented(data, fnn.key(0), fill="white")
    with pytest.raises(TypeError, match="augmented: key must be an fnn key"):
        augment.augmented(data, 0)
