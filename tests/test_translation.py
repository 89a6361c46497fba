"""Translation: cross-attention and Luong attention (gradchecks, torch oracles), the
encoder-decoder recipes (training, threads, checkpoints, summary, decoding) and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fnn
from fnn.layers.decoder_attention import cross_attention_weights, luong_attention_weights

SHAPES = ((-1, 4, 6), (-1, 5, 3), (-1, 5))


def attention_inputs(seed: int = 0, n: int = 3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 6)).astype(dtype)
    memory = rng.normal(size=(n, 5, 3)).astype(dtype)
    lengths = np.array([5, 2, 4, 1, 3][:n])
    mask = np.arange(5)[None] < lengths[:, None]
    return x, memory, mask


def random_params(layer, shapes, seed=0):
    """The layer's params with random (non-zero) biases, in float64."""
    _, params = layer.init(fnn.key(seed), shapes)
    rng = np.random.default_rng(seed + 100)
    return {k: (v + 0.3 * rng.normal(size=v.shape)).astype(np.float64) for k, v in params.items()}


@pytest.mark.parametrize("layer", [fnn.cross_attention(1), fnn.cross_attention(2, dim=4),
                                   fnn.luong_attention(), fnn.luong_attention(dim=5)])
def test_attention_layers_pass_gradcheck(layer):
    params = random_params(layer, SHAPES)
    errors = fnn.gradcheck(layer, params, attention_inputs())
    assert {"x/0", "x/1"} <= set(errors) and "x/2" not in errors
    assert max(errors.values()) < 1e-6, errors


def test_padded_memory_positions_change_nothing():
    for layer in (fnn.cross_attention(2), fnn.luong_attention()):
        params = random_params(layer, SHAPES)
        x, memory, mask = attention_inputs()
        noisy = np.where(mask[..., None], memory, 1e3)
        y, back = layer.vjp(params, (x, memory, mask))
        y2, back2 = layer.vjp(params, (x, noisy, mask))
        np.testing.assert_allclose(y, y2, atol=1e-12)
        dy = np.ones_like(y)
        _, (dx, dm, dmask) = back(dy)
        assert dmask is None
        assert np.abs(dm[~mask]).max() == 0
        np.testing.assert_allclose(back2(dy)[1][0], dx, atol=1e-9)


def test_cross_attention_against_torch():
    torch = pytest.importorskip("torch")
    heads, layer = 2, fnn.cross_attention(2)
    params = random_params(layer, SHAPES, seed=3)
    x, memory, mask = attention_inputs(3)
    mha = torch.nn.MultiheadAttention(6, heads, kdim=3, vdim=3, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():
        mha.q_proj_weight.copy_(torch.from_numpy(params["wq"].T))
        mha.k_proj_weight.copy_(torch.from_numpy(params["wk"].T))
        mha.v_proj_weight.copy_(torch.from_numpy(params["wv"].T))
        mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
            [params["bq"], params["bk"], params["bv"]])))
        mha.out_proj.weight.copy_(torch.from_numpy(params["wo"].T))
        mha.out_proj.bias.copy_(torch.from_numpy(params["bo"]))
    tx, tm = (torch.tensor(a, requires_grad=True) for a in (x, memory))
    ty, tp = mha(tx, tm, tm, key_padding_mask=torch.from_numpy(~mask),
                 average_attn_weights=False)
    y, back = layer.vjp(params, (x, memory, mask))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cross_attention_weights(params, (x, memory, mask), heads),
                               tp.detach().numpy(), atol=1e-12)
    dy = np.random.default_rng(1).normal(size=y.shape)
    ty.backward(torch.from_numpy(dy))
    grads, (dx, dm, _) = back(dy)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm, tm.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["wq"], mha.q_proj_weight.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(grads["wo"], mha.out_proj.weight.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(np.concatenate([grads["bq"], grads["bk"], grads["bv"]]),
                               mha.in_proj_bias.grad.numpy(), atol=1e-10)


def test_luong_attention_against_torch():
    torch = pytest.importorskip("torch")
    layer = fnn.luong_attention()
    params = random_params(layer, SHAPES, seed=4)
    x, memory, mask = attention_inputs(4)
    tx, tm = (torch.tensor(a, requires_grad=True) for a in (x, memory))
    tw = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    scores = torch.einsum("ntd,de,nse->nts", tx, tw["wa"], tm)
    scores = scores.masked_fill(~torch.from_numpy(mask)[:, None, :], float("-inf"))
    a = torch.softmax(scores, dim=-1)
    ty = torch.tanh(torch.cat([a @ tm, tx], dim=-1) @ tw["wc"] + tw["bc"])
    y, back = layer.vjp(params, (x, memory, mask))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(luong_attention_weights(params, (x, memory, mask)),
                               a.detach().numpy(), atol=1e-12)
    dy = np.random.default_rng(2).normal(size=y.shape)
    ty.backward(torch.from_numpy(dy))
    grads, (dx, dm, _) = back(dy)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm, tm.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], tw[k].grad.numpy(), rtol=1e-9, atol=1e-12)


def test_attention_layers_name_bad_inputs():
    layer = fnn.cross_attention(2)
    _, params = layer.init(fnn.key(0), SHAPES)
    x, memory, mask = attention_inputs(dtype=np.float32)
    with pytest.raises(fnn.LayerError, match=r"input 2 \(mask\).*\(N, S\) = \(3, 5\)"):
        layer.apply(params, (x, memory, mask[:, :4]))
    with pytest.raises(fnn.LayerError, match=r"input 2 \(mask\): expected a bool array"):
        layer.apply(params, (x, memory, mask.astype(np.float32)))
    with pytest.raises(fnn.LayerError, match="tuple of 3 arrays"):
        layer.apply(params, x)
    with pytest.raises(fnn.LayerError, match="not a multiple of 4 heads"):
        fnn.cross_attention(4).init(fnn.key(0), SHAPES)


# --------------------------------------------------------------------- encoder-decoders

from fnn.datasets import PairBatches, WordVocab  # noqa: E402
from fnn.seq2seq import (  # noqa: E402
    encoder_decoder,
    pad_batch,
    sentence_cross_entropy,
    translate,
)
from fnn.translators import (  # noqa: E402
    attention_weights,
    gru_translator,
    masked_mean,
    transformer_translator,
)

VS, VT = 13, 11


def tiny(kind: str):
    if kind == "gru":
        return gru_translator(VS, VT, dim=8, hidden=8)
    return transformer_translator(VS, VT, dim=8, heads=2, layers=1, max_len=12)


def reversal_pairs(n: int, seed: int = 0):
    """Sources of 2-6 words (ids 4..12), targets the source reversed, shifted into 4..10."""
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, VS, size=rng.integers(2, 7)) for _ in range(n)]
    tgt = [4 + (s[::-1] - 4) % (VT - 4) for s in src]
    return src, tgt


def init(model, seed: int = 0):
    return model.init(fnn.key(seed), ((-1, 6), (-1, 7)))[1]


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_a_two_input_model_trains_with_threads(kind):
    model = tiny(kind)
    params = init(model)
    data = PairBatches(*reversal_pairs(64), batch_size=32, rng=1)
    loss = sentence_cross_entropy()
    (x, y) = next(iter(data.epoch(0)))
    one = fnn.value_and_grad(model, loss)(params, x, y)
    two = fnn.value_and_grad(model, loss, threads=2)(params, x, y)
    np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
    for a, b in zip(fnn.tree.tree_leaves(two[1]), fnn.tree.tree_leaves(one[1])):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-5)
    opt = fnn.adam(1e-2)
    state, hist = fnn.train(fnn.supervised_step(model, loss, opt, threads=2), data,
                            fnn.TrainState.create(params, opt), epochs=8, progress=False)
    assert hist.train["loss"][-1] < 0.85 * hist.train["loss"][0], hist.train["loss"]


def test_gru_translator_passes_gradcheck():
    model = tiny("gru")
    params = fnn.tree.tree_map(lambda a: a.astype(np.float64), init(model))
    src = pad_batch(reversal_pairs(3)[0])
    tgt = np.array([[1, 5, 6, 8], [1, 7, 4, 4], [1, 4, 4, 9]])  # row 0 (<pad>) learns nothing
    errors = fnn.gradcheck(model, params, (src, tgt))
    assert max(errors.values()) < 1e-5, {k: v for k, v in errors.items() if v > 1e-5}


def test_checkpoints_resume_bit_for_bit(tmp_path):
    model = tiny("gru")
    loss, opt = sentence_cross_entropy(), fnn.adam(1e-2)
    step = fnn.supervised_step(model, loss, opt, threads=2)
    make = lambda: PairBatches(*reversal_pairs(40), batch_size=8, rng=2)  # noqa: E731
    start = lambda: fnn.TrainState.create(init(model), opt)  # noqa: E731
    whole, hist = fnn.train(step, make(), start(), epochs=2, progress=False)
    fnn.train(step, make(), start(), epochs=1, progress=False, checkpoint=tmp_path)
    resumed, hist2 = fnn.train(step, make(), start(), epochs=2, progress=False,
                               checkpoint=tmp_path)
    assert hist2.resumed
    for a, b in zip(fnn.tree.tree_leaves(resumed.params), fnn.tree.tree_leaves(whole.params)):
        assert np.array_equal(a, b)
    assert hist2.train["loss"] == hist.train["loss"]


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_summary_counts_every_param(kind):
    model = tiny(kind)
    rows = fnn.summary(model, ((-1, 6), (-1, 7)), print_fn=None)
    assert sum(r["params"] for r in rows) == fnn.tree_size(init(model))
    assert rows[-1]["output_shape"] == (-1, 7, VT)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
@pytest.mark.parametrize("width", [1, 3])
def test_translating_a_batch_equals_each_sentence_alone(kind, width):
    model = tiny(kind)
    params = init(model, seed=3)
    sources = reversal_pairs(5, seed=4)[0]
    together = translate(model, params, sources, max_len=8, width=width)
    for i, s in enumerate(sources):
        alone = translate(model, params, [s], max_len=8, width=width)
        n = alone.lengths[0]
        assert together.lengths[i] == n
        assert np.array_equal(together.ids[i, :n], alone.ids[0, :n])
        np.testing.assert_allclose(together.scores[i], alone.scores[0], rtol=1e-4)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_beam_width_one_is_greedy_on_a_model(kind):
    model = tiny(kind)
    params = init(model, seed=5)
    sources = reversal_pairs(6, seed=6)[0]
    g = translate(model, params, sources, max_len=8)
    b = translate(model, params, sources, max_len=8, width=1, length_penalty=0.0)
    assert np.array_equal(g.ids, b.ids)
    from fnn.decoding import beam_search  # noqa: F401  (translate uses greedy at width 1)


def test_attention_maps_ignore_padding():
    for kind in ("gru", "transformer"):
        model = tiny(kind)
        w = attention_weights(model, init(model), np.array([[4, 5, 6, 0, 0]]),
                              np.array([[1, 4, 5]]))
        assert w.shape == (1, 3, 5)
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)
        assert (w[..., 3:] == 0).all()


def test_sentence_cross_entropy_against_torch_and_gradcheck():
    torch = pytest.importorskip("torch")
    loss = sentence_cross_entropy(pad_id=0)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4, 5))
    ids = np.array([[1, 2, 0, 0], [3, 4, 1, 0], [2, 2, 2, 2]])
    value, dz = loss.vjp(z, ids)
    tz = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz.reshape(-1, 5), torch.from_numpy(ids).reshape(-1),
                                           ignore_index=0, reduction="sum") / 3
    tl.backward()
    np.testing.assert_allclose(value, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(dz, tz.grad.numpy(), atol=1e-12)
    assert fnn.gradcheck(loss, None, z, ids)["x"] < 1e-7
    with pytest.raises(fnn.LossError, match=r"ids must lie in \[0, 5\)"):
        loss.value(z, ids + 5)


def test_masked_mean_gradcheck():
    x, memory, mask = attention_inputs()
    errors = fnn.gradcheck(masked_mean(), {}, (memory, mask))
    assert errors["x/0"] < 1e-7


# ------------------------------------------------------------------------- bad input

def test_a_source_longer_than_the_model_maximum_is_refused():
    model = tiny("transformer")  # positions up to 12
    params = init(model)
    with pytest.raises(fnn.LayerError, match="13 tokens, more than the model's maximum of 12"):
        model.apply(params, (np.full((1, 13), 4), np.array([[1, 4]])))
    with pytest.raises(fnn.LayerError, match="more than the model's maximum of 12"):
        translate(model, params, [np.full(13, 4)], max_len=3)


def test_ids_out_of_range_name_the_embedding():
    model = tiny("gru")
    params = init(model)
    with pytest.raises(fnn.LayerError, match=r"encoder.*embedding\(13, 8\): ids must be in "
                                             r"\[0, 13\), got 13"):
        model.apply(params, (np.array([[4, 13]]), np.array([[1, 4]])))
    with pytest.raises(fnn.LayerError, match=r"decoder.*embedding\(11, 8\): ids must be in "
                                             r"\[0, 11\), got -1"):
        model.apply(params, (np.array([[4, 5]]), np.array([[1, -1]])))
    with pytest.raises(fnn.LayerError, match="integer"):
        model.apply(params, (np.array([[4.0, 5.0]]), np.array([[1, 4]])))


def test_a_target_without_the_start_id_is_refused():
    model = tiny("gru")
    with pytest.raises(fnn.LayerError, match=r"starts_with\(1\): target row 1 starts with id "
                                             r"5, not the start id 1"):
        model.apply(init(model), (np.array([[4, 5], [6, 7]]), np.array([[1, 4], [5, 4]])))


def test_unknown_words_become_unk():
    vocab = WordVocab(["i", "see"])
    assert vocab.encode(["i", "saw", "it"]).tolist() == [4, 3, 3]
    model = tiny("gru")
    out = translate(model, init(model), [vocab.encode(["i", "saw", "it"])], max_len=4)
    assert out.ids.shape[0] == 1


def test_encoder_decoder_needs_layers():
    with pytest.raises(TypeError):
        encoder_decoder("encoder", fnn.linear(3))  # type: ignore[arg-type]


# ----------------------------------------------------------------- BLEU and the baseline

def _common():
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    return importlib.import_module("translation_common")


def test_corpus_bleu_uses_every_reference():
    pytest.importorskip("sacrebleu")
    tc = _common()
    groups = [("i see the cat.", ["je vois le chat.", "je comprends le chat."]),
              ("run to the house!", ["cours vers la maison !", "courez à la maison !"])]
    hyps = ["je comprends le chat.", "courez à la maison !"]
    assert tc.corpus_bleu(hyps, groups) == pytest.approx(100.0)
    assert tc.corpus_bleu(hyps, [(e, r[:1]) for e, r in groups]) < 50
    with pytest.raises(ValueError, match="1 hypotheses for 2 sentences"):
        tc.corpus_bleu(hyps[:1], groups)


def test_word_by_word_baseline():
    tc = _common()
    en = [["the", "cat", "."], ["the", "dog", "."], ["a", "cat", "."]]
    fr = [["le", "chat", "."], ["le", "chien", "."], ["un", "chat", "."]]
    table = tc.ibm1(en, fr)
    assert (table["cat"], table["dog"], table["the"], table["."]) == ("chat", "chien", "le", ".")
    assert tc.word_by_word([("The dog.", ["le chien."]), ("A bird.", [])], table) == \
        ["le chien.", "un bird."]


def test_hyphenated_words_are_cut_and_glued_back():
    tc = _common()
    for sentence in ("donnez-les-moi !", "est-ce que tu viens ?", "a-t-il vingt-et-un ans ?"):
        assert tc.text(tc.words(sentence, "fr"), "fr") == sentence
    assert tc.words("Est-ce vrai ?", "fr") == ["est", "-ce", "vrai", "?"]


def test_prepare_keeps_each_sentence_on_one_side():
    tc = _common()
    pairs = [(f"Sentence {i}.", f"Phrase {i}{v}.") for i in range(60) for v in "ab"]
    data = tc.prepare(pairs=pairs, min_count=1)
    train_src = {tuple(s) for s in data.train[0]}
    assert data.test_groups and all(len(refs) == 2 for _, refs in data.test_groups)
    test_src = {tuple(data.src_vocab.encode(tc.words(e, "en"))) for e, _ in data.test_groups}
    assert not train_src & test_src


@pytest.mark.parametrize("width", [1, 3])
def test_the_carried_gru_state_decodes_as_the_prefix_recompute(width):
    from fnn.translators import gru_stepper

    model = tiny("gru")
    params = init(model, seed=7)
    sources = reversal_pairs(6, seed=8)[0]
    a = translate(model, params, sources, max_len=8, width=width)
    b = translate(model, params, sources, max_len=8, width=width, stepper=gru_stepper)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_dropout_acts_in_training_only(kind):
    from fnn.translators import gru_stepper

    model = (gru_translator(VS, VT, dim=8, hidden=8, dropout=0.3) if kind == "gru" else
             transformer_translator(VS, VT, dim=8, heads=2, layers=1, dropout=0.3))
    params = init(model)
    x = (pad_batch(reversal_pairs(4)[0]), np.array([[1, 4, 5]] * 4))
    y0, _ = model.vjp(params, x, key=fnn.key(1))
    y1, _ = model.vjp(params, x, key=fnn.key(2))
    assert not np.allclose(y0, y1)
    np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x))
    if kind == "gru":
        a = translate(model, params, reversal_pairs(4)[0], max_len=6)
        b = translate(model, params, reversal_pairs(4)[0], max_len=6, stepper=gru_stepper)
        assert np.array_equal(a.ids, b.ids)


@pytest.mark.parametrize("width", [1, 3])
def test_the_transformer_cache_decodes_as_the_prefix_recompute(width):
    from fnn.translators import transformer_stepper

    model = transformer_translator(VS, VT, dim=16, heads=2, layers=2, max_len=12, dropout=0.2)
    params = init(model, seed=3)
    params = fnn.tree.tree_map(lambda p: p * 3.0, params)  # sharper logits: different tokens per step
    sources = reversal_pairs(7, seed=4)[0]
    a = translate(model, params, sources, max_len=10, width=width)
    b = translate(model, params, sources, max_len=10, width=width, stepper=transformer_stepper)
    assert len(set(a.ids.ravel().tolist())) > 3  # not one token repeated
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4)
    step, state = transformer_stepper(model, params, *_memory(model, params, sources))
    assert state["ck0"].shape[:3] == (7, 2, max(len(s) for s in sources))  # computed once


def _memory(model, params, sources):
    from fnn.seq2seq import encoder_params, pad_batch

    src = pad_batch(sources)
    encoder = model.children[0].children[1]
    return encoder.apply(encoder_params(params), (src, src)), src != 0
