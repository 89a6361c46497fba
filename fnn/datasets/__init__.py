"""Datasets: every loader returns a :class:`Dataset` of float32 inputs and int64 labels.

* synthetic 2-D sets (seeded): :func:`gaussian_mixture`, :func:`xor`, :func:`chessboard`;
* offline: :func:`digits` (ships with scikit-learn);
* real image sets, read from ``<root>/<name>/`` where ``root`` is ``data_dir``, else
  ``$FNN_DATA``, else ``~/.cache/fnn`` (:func:`data_home`): :func:`usps` (``usps/``, never
  downloaded), :func:`fashion_mnist` (``fashion-mnist/``) and :func:`mnist` (``mnist/``),
  both downloaded on first use and SHA-256 checked;
* text for sequence models, read from the data folder, SHA-256 checked, never downloaded:
  :func:`tiny_shakespeare` (``tinyshakespeare/``; :func:`split_text`, :class:`CharVocab`) and
  :func:`eng_fra` (``eng-fra/``; :func:`tokenize`, :func:`detokenize`, :func:`split_pairs`,
  :func:`references`, :class:`WordVocab`); batch sources for :func:`fnn.train` with exact
  resume: :class:`TokenWindows` (with :func:`token_chunks`, :func:`sample_windows`) and
  :class:`PairBatches`;
* corruptions for denoising: :func:`gaussian_noise`, :func:`salt_and_pepper`, :func:`masking`;
* :func:`resplit` pools train and test and draws a new random split;
* building blocks: :func:`read_usps`, :func:`read_idx`, :func:`parse_idx`, :func:`download`.
"""

from fnn.datasets.base import Dataset, DatasetError, data_home, layout_images, resplit
from fnn.datasets.downloader import ChecksumError, DownloadError, download
from fnn.datasets.idx import parse_idx, read_idx
from fnn.datasets.idx_sets import FASHION_CLASSES, fashion_mnist, mnist
from fnn.datasets.noise import gaussian_noise, masking, salt_and_pepper
from fnn.datasets.sequences import PairBatches, TokenWindows, sample_windows, token_chunks
from fnn.datasets.sklearn_digits import digits
from fnn.datasets.text import TextSplit, eng_fra, split_text, tiny_shakespeare
from fnn.datasets.toy import chessboard, gaussian_mixture, xor
from fnn.datasets.translation import (
    PairSplit,
    detokenize,
    normalize_text,
    reference_streams,
    references,
    split_pairs,
    tokenize,
)
from fnn.datasets.usps_files import read_usps, usps
from fnn.datasets.vocab import CharVocab, WordVocab

__all__ = [
    "FASHION_CLASSES", "ChecksumError", "Dataset", "DatasetError", "DownloadError", "chessboard",
    "data_home", "digits", "download", "fashion_mnist", "gaussian_mixture", "gaussian_noise",
    "layout_images", "masking", "mnist", "parse_idx", "read_idx", "read_usps", "resplit",
    "salt_and_pepper", "usps", "xor",
    "CharVocab", "PairBatches", "PairSplit", "TextSplit", "TokenWindows", "WordVocab",
    "detokenize", "eng_fra", "normalize_text", "reference_streams", "references",
    "sample_windows", "split_pairs", "split_text", "tiny_shakespeare", "token_chunks", "tokenize",
]
