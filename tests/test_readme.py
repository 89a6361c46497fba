"""The README's first-model example runs as written, and says what it promises."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(ROOT / "README.md")
    assert len(blocks) == 2
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
