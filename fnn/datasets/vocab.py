"""Vocabularies: characters (:class:`CharVocab`) and words with reserved ids
(:class:`WordVocab`), each encoding to int64 id arrays, decoding back, and saved as small JSON
files (written atomically, like :func:`fnn.save`)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fnn.datasets.base import DatasetError
from fnn.io import atomic_write
from fnn.validate import integer, positive_int

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "UNK", "CharVocab", "WordVocab"]

#: The reserved words of every :class:`WordVocab`, at ids 0, 1, 2, 3.
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3

V = TypeVar("V", bound="_Vocab")

_CHAR_FORMAT = "fnn-char-vocab-1"
_WORD_FORMAT = "fnn-word-vocab-1"


def _write_json(path: str | os.PathLike, content: dict, who: str) -> None:
    data = (json.dumps(content, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(data), where=who)


def _read_json(path: str | os.PathLike, fmt: str, who: str) -> dict:
    path = Path(path).expanduser()
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{who}: {path} is not a JSON vocabulary ({err})") from None
    if not isinstance(content, dict) or content.get("format") != fmt:
        found = content.get("format") if isinstance(content, dict) else type(content).__name__
        raise DatasetError(f"{who}: {path} is not a {fmt} file (format {found!r})")
    return content


def _check_ids(ids: Any, size: int, who: str) -> np.ndarray:
    """``ids`` as a 1-D int64 array whose values are in ``[0, size)``."""
    a = np.asarray(ids)
    if a.ndim != 1 or not (a.dtype.kind in "iu" or a.size == 0):
        raise ValueError(f"{who}: ids must be a 1-D array of ints, got {a.dtype}{a.shape}")
    bad = np.flatnonzero((a < 0) | (a >= size))
    if bad.size:
        raise ValueError(f"{who}: id {a[bad[0]]} at position {bad[0]} is out of range: the "
                         f"vocabulary has {size} entries (ids 0..{size - 1})")
    return a.astype(np.int64, copy=False)


class _Vocab:
    """Length, equality, hashing and repr by the entries in id order (``_entries``)."""

    _entries: str | tuple[str, ...]

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._entries == self._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __repr__(self) -> str:
        more = "..." if len(self) > 20 else ""
        return f"{type(self).__name__}({len(self)} entries: {self._entries[:20]!r}{more})"

    @classmethod
    def _from_file(cls: type[V], path: str | os.PathLike, fmt: str, field: str,
                   kind: type) -> tuple[V, dict]:
        """The vocabulary in the JSON file ``path`` (format ``fmt``, entries in ``field``) and
        the file's content; a damaged file is a :class:`DatasetError` naming it."""
        who = f"{cls.__name__}.load"
        content = _read_json(path, fmt, who)
        entries = content.get(field)
        if not isinstance(entries, kind):
            raise DatasetError(f"{who}: {path} has no {field!r} {kind.__name__}")
        try:
            return cls(entries), content  # type: ignore[call-arg]
        except ValueError as err:
            raise DatasetError(f"{who}: {path}: {err}") from None


class CharVocab(_Vocab):
    """Characters <-> ids 0..len-1, in the order given (:meth:`from_text`: sorted, as nanoGPT).

    >>> from fnn.datasets import CharVocab
    >>> vocab = CharVocab.from_text("hello world")
    >>> len(vocab), vocab.chars
    (8, ' dehlorw')
    >>> ids = vocab.encode("hold")
    >>> ids.tolist(), vocab.decode(ids)
    ([3, 5, 4, 1], 'hold')
    """

    def __init__(self, chars: Iterable[str]):
        if not isinstance(chars, str):
            items = list(chars)
            if not all(isinstance(c, str) and len(c) == 1 for c in items):
                raise ValueError(f"CharVocab: expected single characters, got {items[:5]!r}")
            chars = "".join(items)
        if not chars:
            raise ValueError("CharVocab: no characters")
        if len(set(chars)) != len(chars):
            twice = sorted(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"CharVocab: characters must be distinct; repeated: {twice!r}")
        self.chars: str = chars
        self._entries = chars
        self._points = np.frombuffer(chars.encode("utf-32-le"), np.uint32)
        # code point -> id, -1 for the characters outside (the last entry stands for all the
        # code points above the largest one); at most 4.4 MB, 512 bytes for ASCII
        self._table = np.full(int(self._points.max()) + 2, -1, np.int64)
        self._table[self._points] = np.arange(len(chars))

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The sorted distinct characters of ``text`` (nanoGPT's ``sorted(set(text))``).

        >>> from fnn.datasets import CharVocab
        >>> CharVocab.from_text("banana").chars
        'abn'
        """
        return cls(sorted(set(text)))

    def encode(self, text: str) -> np.ndarray:
        """``(len(text),)`` int64 ids. A character outside the vocabulary is a ``ValueError``
        naming it and its position.

        >>> from fnn.datasets import CharVocab
        >>> CharVocab("ab").encode("abc")
        Traceback (most recent call last):
        ...
        ValueError: CharVocab.encode: character 'c' at position 2 is not in the vocabulary (2 characters: 'ab')
        """
        points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        ids = self._table[np.minimum(points, len(self._table) - 1)]
        missing = np.flatnonzero(ids < 0)
        if missing.size:
            i = int(missing[0])
            shown = self.chars if len(self) <= 100 else self.chars[:100] + "..."
            raise ValueError(f"CharVocab.encode: character {text[i]!r} at position {i} is not in "
                             f"the vocabulary ({len(self)} characters: {shown!r})")
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of 1-D ``ids``; an id outside ``0..len-1`` is a ``ValueError``.

        >>> from fnn.datasets import CharVocab
        >>> CharVocab("ab").decode([1, 0, 1])
        'bab'
        """
        a = _check_ids(ids, len(self), "CharVocab.decode")
        return self._points[a].tobytes().decode("utf-32-le")

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (``{"format": "fnn-char-vocab-1", "chars": ...}``),
        atomically: a crash leaves the old file or the new one."""
        _write_json(path, {"format": _CHAR_FORMAT, "chars": self.chars}, "CharVocab.save")

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharVocab:
        """The vocabulary :meth:`save` wrote; a damaged file is a :class:`DatasetError`.

        >>> import os, tempfile
        >>> from fnn.datasets import CharVocab
        >>> path = os.path.join(tempfile.mkdtemp(), "chars.json")
        >>> CharVocab.from_text("to be or not").save(path)
        >>> CharVocab.load(path) == CharVocab.from_text("or not to be")
        True
        """
        return cls._from_file(path, _CHAR_FORMAT, "chars", str)[0]


class WordVocab(_Vocab):
    """Words <-> ids, with ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3 reserved
    (:data:`SPECIALS`) and the words from id 4 on.

    :meth:`encode` maps a word outside the vocabulary to ``<unk>`` (3): rare and unseen words
    all become one id. Build it from the training side only (:meth:`build`).

    >>> from fnn.datasets import WordVocab
    >>> vocab = WordVocab.build([["a", "cat"], ["a", "dog"]], min_count=1)
    >>> len(vocab), vocab.words[4:]
    (7, ('a', 'cat', 'dog'))
    >>> vocab.encode(["a", "cow"], eos=True).tolist()
    [4, 3, 2]
    >>> vocab.decode([1, 4, 6, 2, 0, 0])
    ['a', 'dog']
    """

    def __init__(self, words: Iterable[str]):
        words = tuple(words)
        bad = [w for w in words if not isinstance(w, str) or not w or w in SPECIALS]
        if bad:
            raise ValueError(f"WordVocab: words must be non-empty strings other than "
                             f"{SPECIALS}; got {bad[:5]!r}")
        if len(set(words)) != len(words):
            twice = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"WordVocab: words must be distinct; repeated: {twice[:5]!r}")
        self.words: tuple[str, ...] = SPECIALS + words
        self._entries = self.words
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], *, min_count: int = 1,
              max_size: int | None = None) -> WordVocab:
        """The words seen at least ``min_count`` times in ``sentences`` (lists of tokens),
        most frequent first (ties alphabetical), at most ``max_size`` of them (specials not
        counted).

        >>> from fnn.datasets import WordVocab
        >>> WordVocab.build([["b", "a"], ["a", "c"], ["c"]], min_count=2).words
        ('<pad>', '<s>', '</s>', '<unk>', 'a', 'c')
        """
        least = positive_int("WordVocab.build", "min_count", min_count)
        if max_size is not None:
            integer("WordVocab.build", "max_size", max_size, minimum=0)
        counts = Counter(w for sentence in sentences for w in sentence if w not in SPECIALS)
        kept = sorted((w for w, n in counts.items() if n >= least), key=lambda w: (-counts[w], w))
        return cls(kept if max_size is None else kept[:max_size])

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def encode(self, tokens: Iterable[str], *, bos: bool = False, eos: bool = False) -> np.ndarray:
        """``(n,)`` int64 ids of ``tokens``, unknown words as ``<unk>`` (3); with ``<s>`` (1)
        first when ``bos`` and ``</s>`` (2) last when ``eos``.

        >>> from fnn.datasets import WordVocab
        >>> WordVocab(["hi"]).encode(["hi", "there"], bos=True).tolist()
        [1, 4, 3]
        """
        get = self.index.get
        ids = [get(t, UNK) for t in tokens]
        return np.array([BOS] * bos + ids + [EOS] * eos, np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray, *, stop_at_eos: bool = True,
               skip_special: bool = True) -> list[str]:
        """The words of 1-D ``ids``: up to the first ``</s>`` when ``stop_at_eos``, without
        ``<pad>``, ``<s>`` and ``</s>`` when ``skip_special`` (``<unk>`` stays as a word). An
        id outside ``0..len-1`` is a ``ValueError``.

        >>> from fnn.datasets import WordVocab
        >>> v = WordVocab(["hi"])
        >>> v.decode([1, 4, 3, 2, 4]), v.decode([1, 4, 2, 4], stop_at_eos=False, skip_special=False)
        (['hi', '<unk>'], ['<s>', 'hi', '</s>', 'hi'])
        """
        a = _check_ids(ids, len(self), "WordVocab.decode").tolist()
        if stop_at_eos and EOS in a:
            a = a[:a.index(EOS)]
        words = self.words
        if skip_special:
            return [words[i] for i in a if i not in (PAD, BOS, EOS)]
        return [words[i] for i in a]

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (``{"format": "fnn-word-vocab-1", "specials": [...],
        "words": [...]}``, the words from id 4 on), atomically."""
        _write_json(path, {"format": _WORD_FORMAT, "specials": list(SPECIALS),
                           "words": list(self.words[len(SPECIALS):])}, "WordVocab.save")

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordVocab:
        """The vocabulary :meth:`save` wrote; a damaged file (or other reserved words) is a
        :class:`DatasetError`.

        >>> import os, tempfile
        >>> from fnn.datasets import WordVocab
        >>> path = os.path.join(tempfile.mkdtemp(), "words.json")
        >>> WordVocab(["le", "chat"]).save(path)
        >>> WordVocab.load(path).words[4:]
        ('le', 'chat')
        """
        vocab, content = cls._from_file(path, _WORD_FORMAT, "words", list)
        if content.get("specials") != list(SPECIALS):
            raise DatasetError(f"WordVocab.load: {path} reserves {content.get('specials')!r}, "
                               f"expected {list(SPECIALS)!r}")
        return vocab
