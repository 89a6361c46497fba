"""Text data for sequence models: the two corpora (checked files), vocabularies, tokenising,
the eng-fra split, and the batch sources' resume protocol (fnn.train, exact resume)."""

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

import fnn
from fnn.datasets import (
    CharVocab,
    DatasetError,
    PairBatches,
    TokenWindows,
    WordVocab,
    detokenize,
    eng_fra,
    normalize_text,
    reference_streams,
    references,
    sample_windows,
    split_pairs,
    split_text,
    tiny_shakespeare,
    token_chunks,
    tokenize,
)
from fnn.datasets.downloader import ChecksumError

# ----------------------------------------------------------------------------- the real files


def _with(data_dir: Path, sub: str) -> Path:
    """``data_dir`` (conftest's fixture: skips without FNN_DATA) if it holds ``sub/``."""
    if not (data_dir / sub).is_dir():
        pytest.skip(f"real data: {data_dir} (FNN_DATA) has no {sub}/")
    return data_dir


@pytest.mark.slow
def test_tiny_shakespeare_file_split_and_vocab(data_dir):
    text = tiny_shakespeare(_with(data_dir, "tinyshakespeare"))
    assert len(text) == 1115394 and text.startswith("First Citizen:")
    split = split_text(text)
    assert (len(split.train), len(split.validation)) == (1003854, 111540)
    assert split.train + split.validation == text
    vocab = CharVocab.from_text(text)
    assert len(vocab) == 65 and vocab.chars[:3] == "\n !"
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (1115394,) and ids.max() == 64
    assert vocab.decode(ids) == text


@pytest.mark.slow
def test_eng_fra_file_split_and_vocab_sizes(data_dir):
    pairs = eng_fra(_with(data_dir, "eng-fra"))
    assert len(pairs) == 18065 and pairs[6] == ("Jump.", "Saute.")
    assert len({normalize_text(e) for e, _ in pairs}) == 10974
    split = split_pairs(pairs)
    counts = split.counts()
    assert counts == {"train": {"pairs": 14332, "sentences": 8701},
                      "validation": {"pairs": 1828, "sentences": 1118},
                      "test": {"pairs": 1905, "sentences": 1155}}
    sides = [{normalize_text(e) for e, _ in side} for side in split]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sorted(split.train + split.validation + split.test) == sorted(pairs)
    en = [tokenize(e) for e, _ in split.train]
    fr = [tokenize(f, "fr") for _, f in split.train]
    assert (len(WordVocab.build(en, min_count=2)), len(WordVocab.build(fr, min_count=2))) == (
        2000, 2953)
    refs = references(split.test)
    assert len(refs) == 1155 and sum(len(r) for _, r in refs) <= 1905


@pytest.mark.slow
def test_eng_fra_detokenize_round_trip_share(data_dir):
    pairs = eng_fra(_with(data_dir, "eng-fra"))
    shares = {}
    for i, lang in enumerate(("en", "fr")):
        texts = [p[i] for p in pairs]
        same = sum(detokenize(tokenize(s, lang), lang) == normalize_text(s) for s in texts)
        shares[lang] = same / len(texts)
    print(f"detokenize(tokenize(s)) == normalize_text(s): {shares}")
    assert shares["en"] > 0.9999 and shares["fr"] > 0.997


def test_missing_files_name_the_folder_and_fnn_data(tmp_path, monkeypatch):
    for load, sub in ((tiny_shakespeare, "tinyshakespeare"), (eng_fra, "eng-fra")):
        with pytest.raises(DatasetError, match="FNN_DATA") as err:
            load(tmp_path)
        assert str(tmp_path / sub) in str(err.value) and "never downloaded" in str(err.value)
        monkeypatch.setenv("FNN_DATA", str(tmp_path / "env"))
        with pytest.raises(DatasetError, match=str(tmp_path / "env" / sub)):
            load()


def test_checksum_mismatch_is_an_error(tmp_path):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("First Citizen:\n")
    with pytest.raises(ChecksumError, match="input.txt has SHA-256"):
        tiny_shakespeare(tmp_path)
    (tmp_path / "eng-fra").mkdir()
    (tmp_path / "eng-fra" / "eng-fra.txt").write_text("Go.\tVa !\n")
    with pytest.raises(ChecksumError, match="eng-fra.txt has SHA-256"):
        eng_fra(tmp_path)


# ----------------------------------------------------------------------------- vocabularies


def test_char_vocab_round_trip_and_errors():
    vocab = CharVocab.from_text("héllo wörld\n")
    assert vocab.chars == "\n dhlorwéö" and len(vocab) == 10
    ids = vocab.encode("wörld héllo")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "wörld héllo"
    assert vocab.decode(np.array([], np.int64)) == "" and vocab.encode("").shape == (0,)
    with pytest.raises(ValueError, match=r"character 'x' at position 3 is not in the vocab"):
        vocab.encode("hélxo")
    with pytest.raises(ValueError, match=r"character '\\U0010ffff' at position 0"):
        vocab.encode("\U0010ffff")
    with pytest.raises(ValueError, match=r"id 10 at position 1 is out of range.*ids 0\.\.9"):
        vocab.decode([0, 10])
    with pytest.raises(ValueError, match=r"id -1 at position 0 is out of range"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="1-D array of ints"):
        vocab.decode(np.array([1.0]))
    with pytest.raises(ValueError, match="distinct; repeated: \\['a'\\]"):
        CharVocab("aba")
    with pytest.raises(ValueError, match="single characters"):
        CharVocab(["ab", "c"])


def test_vocab_save_load(tmp_path):
    chars = CharVocab.from_text("to be or not to be")
    chars.save(tmp_path / "chars.json")
    assert CharVocab.load(tmp_path / "chars.json") == chars
    words = WordVocab(["le", "chat", "été"])
    words.save(tmp_path / "words.json")
    loaded = WordVocab.load(tmp_path / "words.json")
    assert loaded == words and loaded.words[4:] == ("le", "chat", "été")
    content = json.loads((tmp_path / "words.json").read_text(encoding="utf-8"))
    assert content["format"] == "fnn-word-vocab-1" and content["words"] == ["le", "chat", "été"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chars.json", "words.json"]  # no temp
    with pytest.raises(DatasetError, match="is not a fnn-char-vocab-1 file"):
        CharVocab.load(tmp_path / "words.json")
    (tmp_path / "bad.json").write_text('{"format": "fnn-char-vocab-1", "chars": "aa"}')
    with pytest.raises(DatasetError, match="bad.json.*distinct"):
        CharVocab.load(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json is not a JSON vocabulary"):
        WordVocab.load(tmp_path / "bad.json")
    content["specials"] = ["<pad>", "<unk>"]
    (tmp_path / "bad.json").write_text(json.dumps(content))
    with pytest.raises(DatasetError, match="reserves"):
        WordVocab.load(tmp_path / "bad.json")


def test_word_vocab_build_encode_decode():
    sentences = [["le", "chat", "dort"], ["le", "chien", "dort"], ["le", "chat"]]
    vocab = WordVocab.build(sentences, min_count=2)
    assert vocab.words == ("<pad>", "<s>", "</s>", "<unk>", "le", "chat", "dort")
    assert WordVocab.build(sentences, max_size=2).words[4:] == ("le", "chat")
    assert len(WordVocab.build(sentences)) == 8 and "chien" in WordVocab.build(sentences)
    ids = vocab.encode(["le", "chien", "dort"], bos=True, eos=True)
    assert ids.dtype == np.int64 and ids.tolist() == [1, 4, 3, 6, 2]
    assert vocab.decode(ids) == ["le", "<unk>", "dort"]
    assert vocab.decode([4, 5, 2, 6, 0]) == ["le", "chat"]
    assert vocab.decode([4, 2, 6, 0], stop_at_eos=False) == ["le", "dort"]
    assert vocab.decode([1, 4, 2, 0], stop_at_eos=False, skip_special=False) == [
        "<s>", "le", "</s>", "<pad>"]
    with pytest.raises(ValueError, match=r"id 7 at position 0 is out of range"):
        vocab.decode([7])
    with pytest.raises(ValueError, match="other than"):
        WordVocab(["a", "</s>"])
    with pytest.raises(ValueError, match="min_count must be a positive int"):
        WordVocab.build(sentences, min_count=0)


# ----------------------------------------------------------------------------- tokenising


def test_normalize_and_tokenize():
    assert normalize_text("  E\u0301TE\u0301\u202f!\tJ’ai ") == "été ! j'ai"
    assert normalize_text(normalize_text("Ça  VA ?")) == normalize_text("Ça  VA ?")
    assert tokenize("It's 3:30, isn't it?") == ["it", "'s", "3:30", ",", "isn", "'t", "it", "?"]
    assert tokenize("Lève-toi, qu'il dit\u202f!", "fr") == [
        "lève-toi", ",", "qu'", "il", "dit", "!"]
    assert tokenize("It costs $1,000.50.") == ["it", "costs", "$", "1,000.50", "."]
    assert tokenize("Dis-m'en davantage.", "fr") == ["dis-m'", "en", "davantage", "."]
    assert tokenize('"Look," she said.') == ['"', "look", ",", '"', "she", "said", "."]
    for s, lang in [("It's 3:30, isn't it?", "en"), ("It costs $1,000.50.", "en"), ("Tom's $100 (new).", "en"),
                    ('"Look," she said.', "en"), ("It's a boys' club.", "en"),
                    ("Elle a dit : « Regarde. »", "fr"), ("Qu'est-ce que c'est\u202f?", "fr"),
                    ('Elle a dit "au revoir".', "fr"), ("Il n' y avait personne.", "fr")]:
        assert detokenize(tokenize(s, lang), lang) == normalize_text(s), s
    with pytest.raises(ValueError, match="lang must be one of"):
        tokenize("hi", "de")


# ----------------------------------------------------------------------------- the split

PAIRS = [(f"Sentence number {i}.", f"Phrase {i}{v}.") for i in range(300) for v in "abc"[:1 + i % 3]]


def test_split_keeps_translations_together_and_is_stable():
    split = split_pairs(PAIRS)
    side_of = {}
    for side, pairs in enumerate(split):
        for e, _ in pairs:
            assert side_of.setdefault(normalize_text(e), side) == side
    assert len(side_of) == 300 and sum(len(s) for s in split) == len(PAIRS)
    counts = [c["sentences"] for c in split.counts().values()]
    assert 200 <= counts[0] <= 280 and 15 <= counts[1] <= 50 and 15 <= counts[2] <= 50, counts
    # the order and number of pairs, and letter case, do not move a sentence
    reordered = split_pairs([(e.upper(), f) for e, f in PAIRS[::-1]] + [("New one.", "Neuf.")])
    for side, pairs in enumerate(reordered):
        for e, _ in pairs:
            assert side_of.get(normalize_text(e), side) == side
    assert [len(s) for s in split] == [480, 59, 61]  # not the process: sha256, not hash()
    assert split_pairs(PAIRS) == split
    assert split_pairs(PAIRS, salt="other") != split
    assert [len(s) for s in split_pairs(PAIRS, (1.0, 0.0, 0.0))] == [len(PAIRS), 0, 0]
    with pytest.raises(ValueError, match="sum to 1"):
        split_pairs(PAIRS, (0.8, 0.1, 0.2))


def test_references_group_all_translations():
    pairs = [("Run!", "Cours\u202f!"), ("Hi.", "Salut."), ("run!", "Courez !"),
             ("Run!", "Cours !")]
    refs = references(pairs)
    assert refs == [("run!", ["cours !", "courez !"]), ("hi.", ["salut."])]
    assert reference_streams(refs) == [["cours !", "salut."], ["courez !", "salut."]]
    assert reference_streams([]) == []


# ----------------------------------------------------------------------------- TokenWindows


def test_token_windows_are_deterministic_and_resumable():
    ids = np.random.default_rng(1).integers(0, 50, size=1000)
    data = TokenWindows(ids, context=16, batch_size=4, steps_per_epoch=6, rng=3)
    first = list(data.epoch(2))
    assert len(first) == len(data) == 6
    for x, y in first:
        assert x.shape == y.shape == (4, 16) and x.dtype == ids.dtype
        assert (x[:, 1:] == y[:, :-1]).all()
    offsets = data.offsets(2)
    assert offsets.shape == (6, 4) and offsets.min() >= 0 and offsets.max() <= 1000 - 17
    assert (first[1][1][2] == ids[offsets[1, 2] + 1:offsets[1, 2] + 17]).all()
    for b in (0, 3, 5, 6):
        tail = list(data.epoch(2, start=b))
        assert len(tail) == 6 - b
        assert all((x == fx).all() and (y == fy).all() for (x, y), (fx, fy) in zip(tail, first[b:]))
    again = TokenWindows(ids, 16, 4, 6, rng=fnn.key(3))
    assert all((a[0] == b[0]).all() for a, b in zip(again.epoch(2), first))
    assert not (data.offsets(1) == offsets).all()
    short = TokenWindows(np.arange(18), 16, 8, 4)  # offsets 0 and 1 only
    assert set(short.offsets(0).ravel().tolist()) == {0, 1}
    assert [len(x) for x, _ in data] == [4] * 6  # iterating walks epochs 0, 1, ...
    assert (next(iter(data))[0] == next(iter(data.epoch(1)))[0]).all()
    with pytest.raises(ValueError, match="need at least 17"):
        TokenWindows(ids[:16], 16, 4, 6)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        TokenWindows(ids, 16, 0, 6)
    with pytest.raises(ValueError, match="1-D array of ints"):
        TokenWindows(ids.astype(float), 16, 4, 6)


def test_token_windows_describe_covers_every_token():
    ids = np.arange(5000) % 61
    base = TokenWindows(ids, 8, 2, 3).describe()
    assert json.loads(json.dumps(base)) == base
    for where in (0, 2500, 4999):
        changed = ids.copy()
        changed[where] += 1
        assert TokenWindows(changed, 8, 2, 3).describe()["crc32"] != base["crc32"], where
    assert TokenWindows(ids, 8, 2, 3, rng=1).describe() != base
    assert TokenWindows(ids, 9, 2, 3).describe() != base
    assert TokenWindows(ids.copy(), 8, 2, 3).describe() == base


def test_token_chunks_and_sample_windows():
    ids = np.arange(23)
    x, y = token_chunks(ids, 5)
    assert x.shape == y.shape == (4, 5) and (y == x + 1).all() and x[-1, -1] == 19
    assert token_chunks(np.arange(6), 5)[0].shape == (1, 5)
    with pytest.raises(ValueError, match="hold no window"):
        token_chunks(np.arange(5), 5)
    x, y = sample_windows(ids, 5, 7, rng=2)
    assert x.shape == (7, 5) and (y == x + 1).all() and y.max() <= 22
    assert (sample_windows(ids, 5, 7, rng=2)[0] == x).all()


# ----------------------------------------------------------------------------- PairBatches


def _pairs(n=103, seed=0):
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, 30, size=rng.integers(1, 12)) for _ in range(n)]
    tgt = [rng.integers(4, 30, size=rng.integers(0, 14)) for _ in range(n)]
    return src, tgt


def test_pair_batches_shapes_padding_bos_eos():
    src, tgt = _pairs()
    data = PairBatches(src, tgt, 8, pad_id=0, bos_id=1, eos_id=2, rng=5)
    assert len(data) == 13
    order = data.order(0)
    assert sorted(np.concatenate(order).tolist()) == list(range(103))  # each pair once
    for rows, ((s, t_in), t_out) in zip(order, data.epoch(0), strict=True):
        assert s.dtype == t_in.dtype == t_out.dtype == np.int64
        assert s.shape == (len(rows), max(len(src[i]) for i in rows))
        assert t_in.shape == t_out.shape == (len(rows), 1 + max(len(tgt[i]) for i in rows))
        for row, i in enumerate(rows):
            m, n = len(src[i]), len(tgt[i])
            assert (s[row, :m] == src[i]).all() and (s[row, m:] == 0).all()
            assert (t_in[row, :n + 1] == np.r_[1, tgt[i]]).all() and (t_in[row, n + 1:] == 0).all()
            assert (t_out[row, :n + 1] == np.r_[tgt[i], 2]).all() and (t_out[row, n + 1:] == 0).all()
    (s, t_in), t_out = next(iter(PairBatches([[5]], [[]], 4, pad_id=9, bos_id=7, eos_id=8).epoch(0)))
    assert s.tolist() == [[5]] and t_in.tolist() == [[7]] and t_out.tolist() == [[8]]


def test_pair_batches_order_bucketing_and_resume():
    src, tgt = _pairs(400)
    data = PairBatches(src, tgt, 16, rng=2, bucket=5)
    order = data.order(1)
    assert sorted(np.concatenate(order).tolist()) == list(range(400))
    assert not all((a == b).all() for a, b in zip(order, data.order(2)))
    first = list(data.epoch(1))
    for b in (0, 7, 24, 25):
        tail = list(data.epoch(1, start=b))
        assert len(tail) == 25 - b
        for ((s, ti), to), ((fs, fti), fto) in zip(tail, first[b:]):
            assert (s == fs).all() and (ti == fti).all() and (to == fto).all()
    # lengths of translations go together: bucketing leaves little padding
    rng = np.random.default_rng(3)
    src = [np.full(rng.integers(1, 15), 7) for _ in range(400)]
    tgt = [np.full(max(0, len(s) + rng.integers(-1, 2)), 8) for s in src]
    padding = [PairBatches(src, tgt, 16, rng=2, bucket=b).padding(1) for b in (1, 5, 25)]
    assert padding[0] > 0.3 and padding[1] < padding[0] / 2 and padding[2] < padding[1], padding
    in_order = PairBatches(src, tgt, 16, shuffle=False)
    assert [r.tolist() for r in in_order.order(3)] == [list(range(k, min(k + 16, 400)))
                                                       for k in range(0, 400, 16)]
    dropped = PairBatches(src[:40], tgt[:40], 16, drop_last=True)
    assert len(dropped) == 2 and all(len(r) == 16 for r in dropped.order(0))
    seen = {int(k) for e in range(10) for rows in dropped.order(e) for k in rows}
    assert seen == set(range(40))  # not always the same (e.g. the longest) pairs left out


def test_pair_batches_describe_and_errors():
    src, tgt = _pairs(50)
    base = PairBatches(src, tgt, 8).describe()
    assert json.loads(json.dumps(base)) == base
    for side, k in ((src, 0), (src, 49), (tgt, 25)):
        changed = [a.copy() for a in side]
        changed[k][-1] += 1
        args = (changed, tgt) if side is src else (src, changed)
        assert PairBatches(*args, 8).describe()["crc32"] != base["crc32"]
    moved = [np.r_[src[0], src[1][:1]], src[1][1:], *src[2:]]  # same tokens, other pairs
    assert PairBatches(moved, tgt, 8).describe()["crc32"] != base["crc32"]
    assert PairBatches(src, tgt, 8, rng=1).describe() != base
    with pytest.raises(ValueError, match="50 sources but 49 targets"):
        PairBatches(src, tgt[:-1], 8)
    with pytest.raises(ValueError, match="1-D array of ints"):
        PairBatches([np.ones(2)] + src[1:], tgt, 8)
    with pytest.raises(ValueError, match="make no full batch"):
        PairBatches(src, tgt, 64, drop_last=True)
    with pytest.raises(ValueError, match="shuffle must be True or False"):
        PairBatches(src, tgt, 8, shuffle="yes")


# ----------------------------------------------------------------------------- fnn.train

FAIL_AT: list = [None]


def _leaves(batch):
    if isinstance(batch, tuple):
        return [leaf for part in batch for leaf in _leaves(part)]
    return [batch]


def count_step(state, batch):
    """A pure step that chains a CRC over the batches it sees (order-sensitive)."""
    if FAIL_AT[0] is not None and int(state["steps"]) == FAIL_AT[0]:
        raise RuntimeError("killed")
    crc, tokens = int(state["crc"]), 0
    for a in _leaves(batch):
        crc = zlib.crc32(np.ascontiguousarray(a).data, crc)
        tokens += a.size
    new = {"crc": np.array(crc, np.int64), "steps": state["steps"] + 1,
           "tokens": state["tokens"] + tokens}
    return new, {"tokens": float(tokens)}


COUNT_STEP = fnn.StepFn(count_step, fingerprint={"kind": "count_step"})


def _start():
    return {"crc": np.array(0, np.int64), "steps": np.array(0, np.int64),
            "tokens": np.array(0, np.int64)}


@pytest.mark.parametrize("kind", ["windows", "pairs"])
def test_train_resumes_mid_epoch_bit_for_bit(tmp_path, kind):
    if kind == "windows":
        make = lambda: TokenWindows(np.arange(3000) % 97, 32, 4, steps_per_epoch=7, rng=4)
    else:
        src, tgt = _pairs(90)
        make = lambda: PairBatches(src, tgt, 8, rng=4, bucket=3)
    kw = dict(epochs=3, progress=False, checkpoint_every=2)
    FAIL_AT[0] = None
    whole, hist = fnn.train(COUNT_STEP, make(), _start(), checkpoint=str(tmp_path / "a"), **kw)
    assert int(whole["steps"]) == 3 * len(make())
    FAIL_AT[0] = len(make()) + 3  # mid-epoch 2, after the checkpoint of step len + 2
    try:
        with pytest.raises(fnn.TrainingError):
            fnn.train(COUNT_STEP, make(), _start(), checkpoint=str(tmp_path / "b"), **kw)
    finally:
        FAIL_AT[0] = None
    resumed, hist2 = fnn.train(COUNT_STEP, make(), _start(), checkpoint=str(tmp_path / "b"), **kw)
    assert hist2.resumed and hist2.resumed[0]["epoch"] == 1 and hist2.resumed[0]["batch"] > 0
    assert all(int(resumed[k]) == int(whole[k]) for k in whole)
    assert hist2.train == hist.train
    # other data (one token changed) is refused, naming the data
    if kind == "windows":
        ids = np.arange(3000) % 97
        ids[1500] = 0
        other = TokenWindows(ids, 32, 4, steps_per_epoch=7, rng=4)
    else:
        other = PairBatches(src, [np.r_[t, 5] for t in tgt], 8, rng=4, bucket=3)
    with pytest.raises(ValueError, match="(?s)belongs to another run.*data.crc32"):
        fnn.train(COUNT_STEP, other, _start(), checkpoint=str(tmp_path / "b"), **kw)
