"""Every reproduction script runs end to end in quick mode and writes its results and figures."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fnn

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


def test_usps_conv1d_optimizer_choice(monkeypatch):
    """``--optimizer adamw``: AdamW whose lr warms up linearly over ``--warmup-epochs`` and
    follows a cosine to 0 at ``--decay-epochs``, in epochs of ``steps_per_epoch`` updates."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = _load(EXAMPLES / "usps_conv1d.py")
    import conv1d_common as cc

    def parse(*argv):
        p = cc.add_arguments(module.common.parser("usps_conv1d", ""), repeats=1)
        return cc.quick(p.parse_args(list(argv)))

    args = parse()
    assert (args.optimizer, args.lr, module.experiment(args)) == ("sgd", cc.LR, "usps_conv1d")
    args = parse("--optimizer", "adamw", "--lr", "0.01", "--warmup-epochs", "1",
                 "--decay-epochs", "3")
    assert args.weight_decay == cc.ADAMW["weight_decay"]
    assert module.experiment(args) == "usps_conv1d_adamw"
    assert cc.settings(args)["optimizer"] == "adamw"
    opt = cc.make_optimizer(args, steps_per_epoch=10)
    params = {"w": np.ones(2)}
    state, lrs = opt.init(params), []
    for _ in range(30):
        _, state = opt.update(params, state, params)
        lrs.append(fnn.optim.stats(state)["lr"])
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.005) and lrs[10] == pytest.approx(0.01)
    assert lrs[20] == pytest.approx(0.005) and lrs[-1] < 1e-4
    with pytest.raises(SystemExit):
        parse("--weight-decay", "0.1")  # an AdamW option without --optimizer adamw
