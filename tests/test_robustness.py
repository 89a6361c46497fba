"""Nothing silent (issue 24): resumed runs that are not the same run, user layers that break
the contract, evaluation, fit and data mistakes, each refused with a clear error before any
work (or warned about)."""

import numpy as np
import pytest

import fnn


def _problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    return x, y


def _run(folder, x, y, opt, epochs=1, data=None):
    model = fnn.linear(2)
    _, params = model.init(fnn.key(0), (-1, 3))
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    data = fnn.batches(x, y, batch_size=16, rng=1) if data is None else data
    return fnn.train(step, data, fnn.TrainState.create(params, opt), epochs=epochs,
                     progress=False, checkpoint=folder)


# ----------------------------------------------------------------------- resumed runs


def test_resuming_with_another_learning_rate_is_refused(tmp_path):
    x, y = _problem()
    _run(tmp_path, x, y, fnn.adam(1e-2))
    with pytest.raises(ValueError, match=r"belongs to another run.*\n.*hyperparameters.*"
                                         r"0\.01 in the checkpoint, 0\.001 now"):
        _run(tmp_path, x, y, fnn.adam(1e-3), epochs=2)
    with pytest.raises(ValueError, match=r"hyperparameters.*b1.*0\.9 in the checkpoint"):
        _run(tmp_path, x, y, fnn.adam(1e-2, b1=0.8), epochs=2)
    _, history = _run(tmp_path, x, y, fnn.adam(1e-2), epochs=2)  # the same one resumes
    assert history.resumed


def test_resuming_with_labels_changed_outside_the_sample_is_refused(tmp_path):
    x, y = _problem(n=1000)
    _run(tmp_path, x, y, fnn.sgd(0.1))
    rows = np.unique(np.linspace(0, len(x) - 1, 256).astype(int))
    changed = y.copy()
    i = next(i for i in range(len(y)) if i not in set(rows))  # a row the old sample skipped
    changed[i] = 1 - changed[i]
    with pytest.raises(ValueError, match=r"data\.crc32"):
        _run(tmp_path, x, changed, fnn.sgd(0.1), epochs=2)


def test_resuming_with_a_changed_list_of_batches_is_refused(tmp_path):
    x, y = _problem()
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    _run(tmp_path, x, y, fnn.sgd(0.1), data=data)
    changed = [(bx.copy(), by) for bx, by in data]
    changed[2][0][0, 0] += 1.0
    with pytest.raises(ValueError, match=r"data\.crc32"):
        _run(tmp_path, x, y, fnn.sgd(0.1), epochs=2, data=changed)
    _, history = _run(tmp_path, x, y, fnn.sgd(0.1), epochs=2, data=list(data))
    assert history.resumed


def test_data_whose_contents_the_fingerprint_cannot_see_is_warned_about(tmp_path):
    x, y = _problem()

    class Stream:
        def __iter__(self):
            return iter([(x[:16], y[:16]), (x[16:32], y[16:32])])

        def __len__(self):
            return 2

    with pytest.warns(UserWarning, match="does not cover the contents of data of type Stream"):
        _run(tmp_path, x, y, fnn.sgd(0.1), data=Stream())


def test_checkpoints_of_older_fnn_without_the_new_fields_still_resume(tmp_path):
    from fnn.checkpoint import fingerprint_differences

    now = {"data": {"crc32": 5, "samples": 3}, "step_fn": {"hyperparameters": {"lr": 1}}}
    old = {"data": {"samples": 3}, "step_fn": {}}
    assert fingerprint_differences(old, now) == []
    assert fingerprint_differences({"data": {"samples": 4}, "step_fn": {}}, now) == [
        "data.samples: 4 in the checkpoint, 3 now"]
