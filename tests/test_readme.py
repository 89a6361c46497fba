"""The README's examples (first model, resumable run, a layer of your own) run as written, and
say what they promise."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) == 3  # first model, resumable run, own layer: each has a test here
    monkeypatch.chdir(tmp_path)  # it writes digits.npz
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    test_accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert test_accuracy > 0.9
    history = namespace["history"]
    assert history.best_epoch is not None
    # the test set is never given to training: only the validation split is evaluated
    assert set(history.eval) == {"loss", "accuracy"}
    assert (tmp_path / "digits.npz").is_file()


def test_readme_states_one_python_version():
    text = (ROOT / "README.md").read_text()
    assert "Python 3.10 or newer" in text
    assert "3.11)" in text  # only as what CI runs
    assert 'requires-python = ">=3.10"' in (ROOT / "pyproject.toml").read_text()


def test_readme_resume_example_checkpoints_and_resumes(tmp_path, monkeypatch):
    """The second block (the first one's run with a checkpoint folder) writes checkpoints, and
    running it again gives the finished run back without training."""
    import numpy as np

    blocks = python_blocks(ROOT / "README.md")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"print": lambda *a, **k: None}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    first = namespace["state"]
    assert list((tmp_path / "runs" / "digits").glob("ckpt-*.npz"))
    assert namespace["history"].epochs == 40 and first.step > 0
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    for a, b in zip(namespace["state"].params.values(), first.params.values()):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_readme_layer_recipe_runs_and_trains():
    """The third block (a layer with params and state, built with fnn.layer) runs on its own,
    passes its gradient check, and trains as the text after it says: TrainState carries the
    state, supervised_step updates it, predict uses it."""
    import numpy as np

    import fnn

    blocks = python_blocks(ROOT / "README.md")
    namespace: dict = {}
    exec(compile(blocks[2], "README.md", "exec"), namespace)
    model, params, state = namespace["model"], namespace["params"], namespace["state"]
    assert model.stateful and list(state) == ["01_centering"]
    errors = fnn.gradcheck(model, params, namespace["x"], state=state)
    assert max(errors.values()) < 1e-6 and any(k.startswith("no_dx/") for k in errors)

    data = fnn.datasets.xor(200)
    opt = fnn.adam(1e-2)
    step = fnn.supervised_step(model, fnn.cross_entropy, opt)
    train_state = fnn.TrainState.create(params, opt, model_state=state)
    for x, y in fnn.batches(data.x_train, data.y_train, batch_size=32).epoch(0):
        train_state, _ = step(train_state, (x, y))
    mean = train_state.model_state["01_centering"]["mean"]
    assert mean.shape == (16,) and np.any(mean != 0)
    pred = fnn.predict(model, train_state.params, data.x_test, state=train_state.model_state)
    assert pred.shape == (len(data.x_test), 2) and np.isfinite(pred).all()
