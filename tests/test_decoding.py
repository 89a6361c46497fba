"""Greedy and beam-search decoding (fnn.decoding) on small numpy step functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fnn.decoding import beam_search, greedy, log_softmax

END, START, VOCAB = 2, 1, 7


def toy_rnn(seed: int = 0, hidden: int = 5, vocab: int = VOCAB, sharp: float = 2.0):
    """A step function with a carried state: h = tanh(h @ w + e[token]), logits = h @ v."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(hidden, hidden)) / np.sqrt(hidden)
    e = rng.normal(size=(vocab, hidden))
    v = rng.normal(size=(hidden, vocab)) * sharp

    def step(state, tokens):
        h = np.tanh(state["h"] @ w + e[tokens])
        return h @ v, {"h": h}

    return step


def states(n: int, seed: int = 1, hidden: int = 5) -> dict:
    return {"h": np.random.default_rng(seed).normal(size=(n, hidden))}


def one(state: dict, i: int) -> dict:
    return {k: a[i:i + 1] for k, a in state.items()}


@pytest.mark.parametrize("seed", range(6))
def test_beam_width_one_is_greedy_exactly(seed):
    step, s0 = toy_rnn(seed), states(8, seed + 10)
    g = greedy(step, s0, 8, start_id=START, end_id=END, max_len=12)
    for penalty in (0.0, 1.0):
        b = beam_search(step, s0, 8, start_id=START, end_id=END, max_len=12, width=1,
                        length_penalty=penalty)
        assert np.array_equal(b.ids, g.ids)
        assert np.array_equal(b.lengths, g.lengths)
        assert np.array_equal(b.scores, g.scores)


def test_beam_width_one_is_greedy_with_ties():
    """Equal logits everywhere: both break ties towards the smaller token id."""
    def step(state, tokens):
        return np.zeros((len(tokens), VOCAB)), state

    g = greedy(step, {}, 3, start_id=START, end_id=0, max_len=4)
    b = beam_search(step, {}, 3, start_id=START, end_id=0, max_len=4, width=1)
    assert g.ids.tolist() == b.ids.tolist() == [[0]] * 3


@pytest.mark.parametrize("decode, kwargs", [(greedy, {}), (beam_search, {"width": 3}),
                                            (beam_search, {"width": 4, "length_penalty": 0})])
def test_a_batch_decodes_as_each_sentence_alone(decode, kwargs):
    step, s0 = toy_rnn(3), states(6, 4)
    together = decode(step, s0, 6, start_id=START, end_id=END, max_len=10, **kwargs)
    for i in range(6):
        alone = decode(step, one(s0, i), 1, start_id=START, end_id=END, max_len=10, **kwargs)
        n = alone.lengths[0]
        assert together.lengths[i] == n
        assert np.array_equal(together.ids[i, :n], alone.ids[0, :n])
        assert (together.ids[i, n:] == 0).all()
        np.testing.assert_allclose(together.scores[i], alone.scores[0], rtol=1e-12)


def exhaustive(step, state, max_len: int, penalty: float) -> tuple[list[int], float]:
    """The best hypothesis by brute force (sequences ending at END or at max_len)."""
    best: tuple[float, list[int]] = (-np.inf, [])
    for n in range(1, max_len + 1):
        for body in itertools.product([t for t in range(VOCAB) if t != END], repeat=n - 1):
            for last in range(VOCAB):
                seq = [*body, last]
                if n < max_len and last != END:
                    continue
                s, tok, total = state, np.array([START]), 0.0
                for t in seq:
                    logits, s = step(s, tok)
                    total += float(log_softmax(logits)[0, t])
                    tok = np.array([t])
                score = total / n ** penalty
                if score > best[0]:
                    best = (score, seq)
    return best[1], best[0]


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_best_sequence(penalty):
    step, s0 = toy_rnn(5, sharp=0.7), states(1, 6)
    seq, score = exhaustive(step, s0, 3, penalty)
    out = beam_search(step, s0, 1, start_id=START, end_id=END, max_len=3, width=VOCAB ** 3,
                      length_penalty=penalty)
    assert out.ids[0, :out.lengths[0]].tolist() == seq
    np.testing.assert_allclose(out.scores[0] / out.lengths[0] ** penalty, score, rtol=1e-12)


def test_beam_scores_at_least_greedy_raw():
    step, s0 = toy_rnn(7, sharp=1.0), states(16, 8)
    g = greedy(step, s0, 16, start_id=START, end_id=END, max_len=8)
    b = beam_search(step, s0, 16, start_id=START, end_id=END, max_len=8, width=5,
                    length_penalty=0.0)
    assert (b.scores >= g.scores - 1e-12).mean() > 0.9
    assert (b.scores > g.scores + 1e-9).any()


def test_greedy_stops_at_the_end_id_and_pads():
    step, s0 = toy_rnn(2), states(5, 3)
    out = greedy(step, s0, 5, start_id=START, end_id=END, max_len=30)
    for row, n in zip(out.ids, out.lengths):
        if n < 30:
            assert row[n - 1] == END and (row[n:] == 0).all() and END not in row[:n - 1]
    assert out.ids.shape[1] == out.lengths.max()


def test_bad_arguments_are_named():
    step, s0 = toy_rnn(0), states(2)
    with pytest.raises(ValueError, match="width"):
        beam_search(step, s0, 2, start_id=START, end_id=END, max_len=5, width=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy(step, s0, 2, start_id=START, end_id=END, max_len=0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(step, s0, 2, start_id=START, end_id=END, max_len=5, length_penalty=-1)
    with pytest.raises(ValueError, match=r"batch \(3\) on axis 0"):
        beam_search(step, s0, 3, start_id=START, end_id=END, max_len=5)
    with pytest.raises(ValueError, match=r"logits of shape \(2, vocabulary\)"):
        greedy(lambda s, t: (np.zeros(3), s), s0, 2, start_id=START, end_id=END, max_len=5)


def test_width_one_is_greedy_when_rounding_ties_the_sums():
    """After ten uniform steps the score is about -19.5, whose float spacing (3.6e-15) hides a
    1e-15 gap between two log-probabilities: the sums tie, greedy's argmax does not."""
    def step(state, tokens):
        t = state["t"][0]
        logits = np.zeros((len(tokens), 40))
        if t == 10:
            logits[:, 4] = -1e-15
            logits[:, :4] = logits[:, 6:] = -50.0
        return logits, {"t": state["t"] + 1}

    s0 = {"t": np.zeros(1, np.int64)}
    g = greedy(step, s0, 1, start_id=START, end_id=END, max_len=11)
    b = beam_search(step, s0, 1, start_id=START, end_id=END, max_len=11, width=1)
    assert g.ids[0, -1] == 5
    assert np.array_equal(b.ids, g.ids)
