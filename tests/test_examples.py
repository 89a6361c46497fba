"""Every reproduction script runs end to end in quick mode and writes its results and figures."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# experiments are the scripts with a ``main(argv)``; the rest are helpers they share
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py")
                 if "\ndef main(" in p.read_text() and p.stem not in ("make_results", "reproduce"))


def _load(path: Path):
    name = f"example_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_quick(path, tmp_path, monkeypatch):
    uses_real_data = getattr(_load(path), "NEEDS_REAL_DATA", False)
    if uses_real_data and not (os.environ.get("FNN_DATA") and Path(os.environ["FNN_DATA"]).is_dir()):
        pytest.skip("FNN_DATA is not set to the real data folder")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = _load(path)
    out = tmp_path / path.stem
    module.main(["--quick", "--no-progress", "--out", str(out)])
    payload = json.loads((out / "results.json").read_text())
    assert payload["quick"] is True and payload["experiment"] == path.stem
    assert payload["metrics"], "an example must record what it measured"
    assert list(out.glob("*.png")), "an example must draw its figures"
