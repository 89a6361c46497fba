"""fnn.generate: cached (one position at a time: recurrent state, key/value cache) and
uncached generation give the same tokens; step logits equal the full forward's."""

import numpy as np
import pytest

import fnn
from fnn.generation import sample, stepper

V = 11


def gpt(width=16, heads=2, blocks=2, max_len=24, sinusoidal=False):
    pos = fnn.sinusoidal_embedding(max_len) if sinusoidal else fnn.positional_embedding(max_len)
    return fnn.serial(fnn.embedding(V, width), pos,
                      *[fnn.transformer_block(heads, width) for _ in range(blocks)],
                      fnn.layer_norm(), fnn.linear(V))


MODELS = {
    "gpt": gpt,
    "gpt_sinusoidal": lambda: gpt(sinusoidal=True),
    "lstm": lambda: fnn.serial(fnn.embedding(V, 8), fnn.lstm(12), fnn.lstm(12), fnn.linear(V)),
    "gru": lambda: fnn.serial(fnn.embedding(V, 8), fnn.gru(12), fnn.linear(V)),
    "rnn": lambda: fnn.serial(fnn.embedding(V, 8), fnn.rnn(12, "relu"), fnn.linear(V)),
}


def _init(model, seed=0):
    _, params = model.init(fnn.key(seed), (-1, 5))
    return params


@pytest.mark.parametrize("name", sorted(MODELS))
def test_step_logits_equal_the_full_forward(name):
    model = MODELS[name]()
    params = fnn.tree.tree_map(lambda a: np.asarray(a, np.float64), _init(model))
    ids = np.random.default_rng(0).integers(0, V, size=(3, 9))
    full = model.apply(params, ids)
    dec = stepper(model)
    carry = dec.start(params, 3, np.float64)
    for t in range(9):
        y, carry = dec.step(params, ids[:, t:t + 1], carry)
        np.testing.assert_allclose(y[:, 0], full[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.8, 3), (0.0, None)])
def test_cached_and_uncached_generation_give_the_same_tokens(name, temperature, top_k):
    model = MODELS[name]()
    params = _init(model)
    prompt = np.random.default_rng(1).integers(0, V, size=(2, 4))
    kw = {"temperature": temperature, "top_k": top_k}
    cached = fnn.generate(model, params, prompt, 15, fnn.key(7), **kw)
    uncached = fnn.generate(model, params, prompt, 15, fnn.key(7), cache=False, **kw)
    assert cached.shape == (2, 19) and (cached[:, :4] == prompt).all()
    np.testing.assert_array_equal(cached, uncached)
    other = fnn.generate(model, params, prompt, 15, fnn.key(8), **kw)
    assert temperature == 0 or not (other == cached).all()


def test_sample_top_k_and_greedy():
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]] * 2000))
    draws = sample(logits, fnn.key(0), top_k=2)
    assert set(draws.tolist()) == {2, 3}
    assert abs((draws == 3).mean() - 4 / 7) < 0.05
    all_draws = sample(logits, fnn.key(0))
    assert abs((all_draws == 0).mean() - 0.1) < 0.03
    assert (sample(logits, fnn.key(0), temperature=0) == 3).all()


def test_layers_that_cannot_step_are_named():
    model = fnn.serial(fnn.embedding(V, 8), fnn.lstm(6, bidirectional=True), fnn.linear(V))
    params = _init(model)
    with pytest.raises(fnn.LayerError, match=r"\[01_lstm\] lstm\(6, bidirectional=True\): "
                                             r"cannot run one position at a time"):
        fnn.generate(model, params, np.array([1, 2]), 3, fnn.key(0))
    out = fnn.generate(model, params, np.array([1, 2]), 3, fnn.key(0), cache=False)
    assert out.shape == (5,)


def test_generation_past_the_position_table():
    model = gpt(max_len=8)
    params = _init(model)
    with pytest.raises(fnn.LayerError, match="longer than the position table"):
        fnn.generate(model, params, np.array([1, 2]), 8, fnn.key(0))


def test_bad_prompt():
    model = MODELS["gru"]()
    with pytest.raises(ValueError, match="prompt_ids must be a non-empty integer array"):
        fnn.generate(model, _init(model), np.array([1.0, 2.0]), 3, fnn.key(0))
