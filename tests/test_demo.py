import json
import os
import subprocess
import sys

import numpy as np

import fnn
from fnn import demo


def test_demo_quick_writes_everything(tmp_path):
    result = demo.run(epochs=2, out=tmp_path, progress=False)
    assert 0.5 < result["test_accuracy"] <= 1.0
    for f in result["files"]:
        assert f.exists() and f.stat().st_size > 0
    params = fnn.load(tmp_path / "params.npz", like=demo.build_model().init(fnn.key(0), (-1, 64))[1])
    data = fnn.datasets.digits()
    acc = fnn.accuracy(demo.build_model().apply(params, data.x_test), data.y_test)
    assert acc == result["test_accuracy"]


def test_demo_defaults_reach_95_percent(tmp_path):
    """The issue's bar: the demo's default settings give >= 95% test accuracy on digits."""
    result = demo.run(out=tmp_path, progress=False)
    assert result["test_accuracy"] >= 0.95


def test_demo_cli_quick(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fnn.demo", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr
    assert "test accuracy:" in out.stdout and str(tmp_path) in out.stdout
    manifest = np.load(tmp_path / "params.npz", allow_pickle=False)["meta/manifest"]
    assert json.loads(str(manifest))["format"] == "fnn-tree-2"
