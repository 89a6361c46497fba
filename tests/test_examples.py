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


def test_char_lm_pieces(monkeypatch):
    """char_lm's token loss (finite differences), nanoGPT's draws, its optimiser's lr (nanoGPT's
    ``get_lr``), generation past the position table, and one head's causal attention map."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import char_lm_models as models
    module = _load(EXAMPLES / "char_lm.py")

    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(2, 3, 5)), rng.integers(0, 5, size=(2, 3))
    value, grad = models.token_cross_entropy.vjp(logits, y)
    assert value == pytest.approx(models.token_cross_entropy.value(logits, y))
    eps, bumped = 1e-6, logits.copy()
    bumped[1, 2, 3] += eps
    numeric = (models.token_cross_entropy.value(bumped, y) - value) / eps
    assert grad.shape == logits.shape and grad[1, 2, 3] == pytest.approx(numeric, rel=1e-4)

    gpt = models.gpt(7, n_layer=2, heads=2, width=8, context=6)
    _, params, _ = fnn.init(gpt, fnn.key(0), (-1, 6))
    params = models.nanogpt_init(params, fnn.key(1), n_layer=2)
    flat = fnn.tree.flatten_with_paths(params)
    assert all(not v.any() for k, v in flat.items() if k.endswith(("/b", "/b_qkv", "/b_o", "/bias")))
    assert all((v == 1).all() for k, v in flat.items() if k.endswith("/scale"))
    w_o = [v for k, v in flat.items() if k.endswith("/w_o")]
    assert len(w_o) == 2 and all(v.std() < 0.02 for v in w_o)
    assert models.decayed("02_transformer_block/00_residual/01_multi_head_attention/w_qkv")
    assert not models.decayed("06_layer_norm/scale")

    args = module.arguments(["--iters", "2000"])
    opt = module.make_optimizer(args)
    p = {"w": np.ones(2)}
    state, lrs = opt.init(p), []
    for _ in range(2001):
        _, state = opt.update(p, state, p)
        lrs.append(fnn.optim.stats(state)["lr"])
    get_lr = [1e-3 * (it + 1) / 101 if it < 100 else
              1e-4 + 0.5 * (1 + np.cos(np.pi * (it - 100) / 1900)) * 9e-4 for it in range(2001)]
    assert lrs[0] == pytest.approx(get_lr[0]) and lrs[100] == pytest.approx(1e-3)
    assert np.allclose(lrs[100:], get_lr[100:]) and np.allclose(lrs[:100], get_lr[:100])

    prompt = np.array([[1, 2, 3]])
    out = models.sample(gpt, params, prompt, 11, fnn.key(2), context=6)  # past the 6 positions
    assert out.shape == (1, 11) and out.min() >= 0 and out.max() < 7
    assert np.array_equal(out, models.sample(gpt, params, prompt, 11, fnn.key(2), context=6))

    p_map = models.attention_map(gpt, params, np.array([[0, 1, 2, 3, 4]]), layer=1, head=1)
    assert p_map.shape == (5, 5) and np.allclose(p_map.sum(axis=1), 1)
    assert not np.triu(p_map, 1).any()
