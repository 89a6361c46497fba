"""Data, baseline and BLEU for ``examples/translate.py`` (English -> French, Tatoeba eng-fra).

* :func:`prepare`: the pairs split by ``fnn.datasets.split_pairs`` (every translation of one
  English sentence on one side), tokenised, word vocabularies built on the training side only
  (``min_count``), ids for :class:`fnn.datasets.PairBatches`, and the test split's references
  (one entry per English sentence, all its translations).
* :func:`corpus_bleu`: sacreBLEU's corpus BLEU against several references per sentence
  (sacrebleu is imported here, on use: ``pip install 'fnn[text]'``).
* :func:`word_by_word`: the baseline row, each English word replaced by its most probable
  French word under IBM model 1 (``t(f | e)``, EM from uniform, with a NULL source word),
  fitted on the training pairs.
* :func:`statistics`: what the scores rest on (split sizes, references per test sentence,
  the share of test words that are ``<unk>``), recorded in the results and read by RESULTS.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnn._extras import require
from fnn.datasets import (
    WordVocab,
    detokenize,
    eng_fra,
    reference_streams,
    references,
    split_pairs,
    tokenize,
)


def words(sentence: str, lang: str) -> list[str]:
    """``fnn.datasets.tokenize`` with hyphenated words cut before each inner hyphen, so
    French imperatives and inversions share their pieces (``"donnez-les-moi"`` -> ``"donnez"
    "-les" "-moi"``, ``"est-ce"`` -> ``"est" "-ce"``): far fewer rare words.

    >>> words("Donnez-les-moi !", "fr")
    ['donnez', '-les', '-moi', '!']
    """
    out: list[str] = []
    for token in tokenize(sentence, lang):
        parts = token.split("-")
        if len(parts) > 1 and all(parts):
            out += [parts[0], *("-" + p for p in parts[1:])]
        else:
            out.append(token)
    return out


def text(tokens: Sequence[str], lang: str) -> str:
    """The inverse of :func:`words`: pieces starting with a hyphen glued back, then
    ``fnn.datasets.detokenize``.

    >>> text(['donnez', '-les', '-moi', '!'], "fr")
    'donnez-les-moi !'
    """
    out: list[str] = []
    for token in tokens:
        if token.startswith("-") and len(token) > 1 and out:
            out[-1] += token
        else:
            out.append(token)
    return detokenize(out, lang)


class Data(NamedTuple):
    """Everything the translation example trains and scores on."""

    src_vocab: WordVocab
    tgt_vocab: WordVocab
    train: tuple[list[np.ndarray], list[np.ndarray]]       # (source ids, target ids) per pair
    validation: tuple[list[np.ndarray], list[np.ndarray]]
    test_groups: list[tuple[str, list[str]]]               # (english, [french references])
    validation_groups: list[tuple[str, list[str]]]
    train_tokens: tuple[list[list[str]], list[list[str]]]  # for the baseline


def _ids(pairs, src_vocab: WordVocab, tgt_vocab: WordVocab):
    return ([src_vocab.encode(words(e, "en")) for e, _ in pairs],
            [tgt_vocab.encode(words(f, "fr")) for _, f in pairs])


def prepare(data_dir: Any = None, *, min_count: int = 2, limit: int | None = None,
            pairs: Sequence[tuple[str, str]] | None = None) -> Data:
    """The split eng-fra pairs as ids; ``limit`` keeps the first pairs of each side (quick
    runs); ``pairs`` replaces the file (tests)."""
    split = split_pairs(eng_fra(data_dir) if pairs is None else pairs)
    train, val, test = (side[:limit] if limit else side for side in split)
    en = [words(e, "en") for e, _ in train]
    fr = [words(f, "fr") for _, f in train]
    src_vocab = WordVocab.build(en, min_count=min_count)
    tgt_vocab = WordVocab.build(fr, min_count=min_count)
    return Data(src_vocab, tgt_vocab, _ids(train, src_vocab, tgt_vocab),
                _ids(val, src_vocab, tgt_vocab), references(test), references(val), (en, fr))


def corpus_bleu(hypotheses: Sequence[str], groups: Sequence[tuple[str, Sequence[str]]]
                ) -> float:
    """Corpus BLEU (sacreBLEU, default 13a tokenisation) of one hypothesis per group against
    all of the group's references.

    >>> corpus_bleu(["le chat est noir ."], [("the cat is black.", ["le chat est noir ."])])
    100.00000000000004
    """
    if len(hypotheses) != len(groups):
        raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses for {len(groups)} "
                         f"sentences")
    sacrebleu = require("sacrebleu", "corpus BLEU (examples/translate.py)")
    return float(sacrebleu.corpus_bleu(list(hypotheses), reference_streams(groups)).score)


def translate_all(groups: Sequence[tuple[str, Sequence[str]]], src_vocab: WordVocab,
                  tgt_vocab: WordVocab, decode: Callable[[list[np.ndarray]], list[np.ndarray]],
                  batch: int = 128) -> list[str]:
    """French text for every group's English sentence: ``decode(list of source id arrays)
    -> list of target id arrays`` (in batches of ``batch``), then detokenised."""
    sources = [src_vocab.encode(words(e, "en")) for e, _ in groups]
    out: list[str] = []
    for i in range(0, len(sources), batch):
        for ids in decode(sources[i:i + batch]):
            out.append(text(tgt_vocab.decode(ids), "fr"))
    return out


def ibm1(en: Sequence[Sequence[str]], fr: Sequence[Sequence[str]], iterations: int = 5
         ) -> dict[str, str]:
    """Each English word's most probable French word under IBM model 1 (with a NULL word on
    the English side), by ``iterations`` rounds of EM from uniform ``t(f | e)``.

    >>> ibm1([["the", "cat"], ["the", "dog"]], [["le", "chat"], ["le", "chien"]])["cat"]
    'chat'
    """
    null = "<null>"
    t: dict[tuple[str, str], float] = defaultdict(lambda: 1.0)
    for _ in range(iterations):
        count: dict[tuple[str, str], float] = defaultdict(float)
        total: dict[str, float] = defaultdict(float)
        for e_sent, f_sent in zip(en, fr):
            es = [null, *e_sent]
            for f in f_sent:
                weights = [t[(e, f)] for e in es]
                z = sum(weights)
                for e, w in zip(es, weights):
                    count[(e, f)] += w / z
                    total[e] += w / z
        t = defaultdict(float, {(e, f): c / total[e] for (e, f), c in count.items()})
    best: dict[str, tuple[float, str]] = {}
    for (e, f), p in t.items():
        if e != null and p > best.get(e, (-1.0, ""))[0]:
            best[e] = (p, f)
    return {e: f for e, (_, f) in best.items()}


def word_by_word(groups: Sequence[tuple[str, Sequence[str]]], table: dict[str, str]
                 ) -> list[str]:
    """The baseline's French for each group: every English token replaced by ``table``'s
    word (unknown words copied as they are)."""
    return [text([table.get(w, w) for w in words(e, "en")], "fr") for e, _ in groups]


def frequent_words(sentences: Sequence[Sequence[str]], n: int = 10) -> list[str]:
    """The ``n`` most frequent tokens (for the report)."""
    return [w for w, _ in Counter(w for s in sentences for w in s).most_common(n)]


def statistics(data: Data) -> dict:
    """What the scores rest on: split sizes, references per test sentence, the share of
    test words outside the training vocabularies (they become ``<unk>``), sentence lengths.

    >>> d = prepare(pairs=[("Hi.", "Salut."), ("Hi.", "Bonjour."), ("Run!", "Cours !")] * 9,
    ...             min_count=1)
    >>> sorted(statistics(d))[:3]
    ['references_per_test_sentence', 'test_mean_words_en', 'test_pairs']
    """
    src = [words(e, "en") for e, _ in data.test_groups]
    refs = [words(r, "fr") for _, group in data.test_groups for r in group]

    def unknown(vocab: WordVocab, sentences: list[list[str]]) -> float:
        n = sum(len(s) for s in sentences)
        return sum(w not in vocab for s in sentences for w in s) / max(n, 1)

    sentences = max(len(data.test_groups), 1)
    return {"train_pairs": len(data.train[0]), "validation_pairs": len(data.validation[0]),
            "train_sentences_en": len({tuple(s) for s in data.train_tokens[0]}),
            "test_sentences": len(data.test_groups), "test_pairs": len(refs),
            "references_per_test_sentence": len(refs) / sentences,
            "test_unk_en": unknown(data.src_vocab, src),
            "test_unk_fr": unknown(data.tgt_vocab, refs),
            "test_mean_words_en": sum(len(s) for s in src) / sentences,
            "vocab_en": len(data.src_vocab), "vocab_fr": len(data.tgt_vocab)}
