"""Two text corpora for sequence models, read from the data folder and SHA-256 checked.

* :func:`tiny_shakespeare`: the 1,115,394 characters of Karpathy's Tiny Shakespeare
  (``<root>/tinyshakespeare/input.txt``), with nanoGPT's split (:func:`split_text`: the first
  90% of the characters train, the last 10% validate);
* :func:`eng_fra`: 18,065 English-French pairs from Tatoeba (``<root>/eng-fra/eng-fra.txt``,
  ``english<TAB>french`` per line; several translations of one sentence are separate lines).

``root`` is ``data_dir``, else ``$FNN_DATA``, else ``~/.cache/fnn`` (:func:`data_home`).
Neither file is ever downloaded: a missing file is a :class:`DatasetError` naming the folder,
a file with other bytes a :class:`ChecksumError`. Vocabularies are in
:mod:`fnn.datasets.vocab`, tokenising and splitting the pairs in
:mod:`fnn.datasets.translation`, batch sources in :mod:`fnn.datasets.sequences`.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

from fnn.datasets.base import DATA_ENV, DatasetError, data_home
from fnn.datasets.downloader import ChecksumError
from fnn.validate import fraction

__all__ = ["CHECKSUMS", "TextSplit", "eng_fra", "split_text", "tiny_shakespeare"]

#: ``(folder, file) -> SHA-256`` of the two corpora (see the data folder's README).
CHECKSUMS = {
    ("tinyshakespeare", "input.txt"):
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ("eng-fra", "eng-fra.txt"):
        "c52ae3c5a2f6b3c96d985aad8e2f1aab814c6701cfa9face467989069624bcaa",
}

#: Characters in Tiny Shakespeare and pairs in eng-fra.
SIZES = {"tinyshakespeare": 1115394, "eng-fra": 18065}

_SOURCES = {
    "tinyshakespeare": "Tiny Shakespeare, karpathy/char-rnn data/tinyshakespeare/input.txt",
    "eng-fra": "the Tatoeba English-French pairs (manythings.org fra.txt, first 18,065 lines)",
}


def read_checked(who: str, folder_name: str, file_name: str,
                 data_dir: str | os.PathLike | None) -> str:
    """The UTF-8 text of ``<root>/<folder_name>/<file_name>`` after checking its SHA-256
    against :data:`CHECKSUMS` (``who`` names the caller in errors)."""
    folder = data_home(data_dir) / folder_name
    path = folder / file_name
    if not path.is_file():
        raise DatasetError(
            f"{who}: {path} not found. Put {file_name} ({_SOURCES[folder_name]}) in {folder}, "
            f"or pass data_dir= / set ${DATA_ENV} to a folder that contains "
            f"{folder_name}/{file_name} (this file is never downloaded)")
    data = path.read_bytes()
    digest, expected = hashlib.sha256(data).hexdigest(), CHECKSUMS[folder_name, file_name]
    if digest != expected:
        raise ChecksumError(
            f"{who}: {path} has SHA-256 {digest}, expected {expected}: the file is damaged or "
            f"not the one fnn expects; put the right {file_name} in {folder}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:  # cannot happen with the checked bytes; kept for clarity
        raise DatasetError(f"{who}: {path} is not UTF-8 text ({err})") from None


def tiny_shakespeare(data_dir: str | os.PathLike | None = None) -> str:
    """The Tiny Shakespeare text: 1,115,394 characters (65 distinct, ASCII), 40,000 lines.

    Read from ``<root>/tinyshakespeare/input.txt`` (``root``: ``data_dir``, else
    ``$FNN_DATA``, else ``~/.cache/fnn``), SHA-256 checked on every load, never downloaded.
    Split it with :func:`split_text` (nanoGPT: first 90% train, last 10% validation) and
    encode it with :class:`CharVocab`.

    >>> import fnn
    >>> text = fnn.datasets.tiny_shakespeare()  # doctest: +SKIP
    >>> len(text), text[:14]  # doctest: +SKIP
    (1115394, 'First Citizen:')
    """
    text = read_checked("tiny_shakespeare", "tinyshakespeare", "input.txt", data_dir)
    if len(text) != SIZES["tinyshakespeare"]:  # the checksum makes this impossible
        raise DatasetError(f"tiny_shakespeare: {len(text)} characters, expected "
                           f"{SIZES['tinyshakespeare']}")
    return text


class TextSplit(NamedTuple):
    """A text cut in two: ``train`` (the first part) and ``validation`` (the rest).

    >>> from fnn.datasets import split_text
    >>> train, validation = split_text("to be or not", 0.5)
    >>> train, validation
    ('to be ', 'or not')
    """

    train: str
    validation: str


def split_text(text: str, train_fraction: float = 0.9) -> TextSplit:
    """nanoGPT's protocol: the first ``int(len(text) * train_fraction)`` characters train, the
    rest validate (Tiny Shakespeare: 1,003,854 and 111,540 characters).

    >>> from fnn.datasets import split_text
    >>> split_text("abcdefghij")
    TextSplit(train='abcdefghi', validation='j')
    """
    share = fraction("split_text", "train_fraction", train_fraction)
    cut = int(len(text) * share)
    return TextSplit(text[:cut], text[cut:])


def eng_fra(data_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """The 18,065 ``(english, french)`` pairs of ``<root>/eng-fra/eng-fra.txt``, in file order.

    The text is returned as stored (case, punctuation, the narrow no-break spaces of French
    typography); :func:`tokenize` normalises it. One English sentence has one line per
    translation (10,974 distinct English sentences; 4 pairs occur twice): split with
    :func:`split_pairs`, which keeps them together. SHA-256 checked, never downloaded.

    >>> import fnn
    >>> pairs = fnn.datasets.eng_fra()  # doctest: +SKIP
    >>> len(pairs), pairs[6]  # doctest: +SKIP
    (18065, ('Jump.', 'Saute.'))
    """
    text = read_checked("eng_fra", "eng-fra", "eng-fra.txt", data_dir)
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise DatasetError(f"eng_fra: line {number} is not 'english<TAB>french': {line!r}")
        pairs.append((parts[0], parts[1]))
    if len(pairs) != SIZES["eng-fra"]:
        raise DatasetError(f"eng_fra: {len(pairs)} pairs, expected {SIZES['eng-fra']}")
    return pairs
