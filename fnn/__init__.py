"""fnn — a pure-functional neural-network library on numpy.

A layer is ``(init, apply, vjp)``; params are nested dicts of arrays; training is a pure step
function folded over batches. See README.md and DESIGN.md.

``fnn.plot`` (matplotlib), ``fnn.datasets`` and ``fnn.distributed`` (MPI) are imported on
first use (module ``__getattr__`` below), so ``import fnn`` loads neither matplotlib,
scikit-learn nor mpi4py.
"""

from typing import TYPE_CHECKING

from fnn import augment, decoding, initializers, layers, ops, optim, perf, seq2seq, threads
from fnn.checkpoint import Checkpoint, CheckpointMismatch, load_checkpoint, save_checkpoint
from fnn.checks import LayerError
from fnn.combinators import each, parallel, pick, residual, serial
from fnn.core import Decoder, GradFn, Input, Layer, init
from fnn.decoding import beam_search, greedy
from fnn.generation import generate
from fnn.gradient_check import assert_gradients_close, gradcheck
from fnn.gradients import value_and_grad
from fnn.io import FnnFileError, load, save
from fnn.keys import Key, fold_in, key, rng, split
from fnn.layers import *  # noqa: F403  (every layer constructor)
from fnn.layers import __all__ as _layer_names
from fnn.locking import FolderLocked
from fnn.logger import LossLogger
from fnn.losses import Loss, LossError, bce, bce_with_logits, cross_entropy, mse, nll
from fnn.metrics import accuracy, bits_per_character, perplexity
from fnn.optim import (
    Optimizer,
    adam,
    adamw,
    apply_updates,
    cosine_decay,
    momentum,
    rmsprop,
    sgd,
    step_decay,
)
from fnn.seq2seq import encoder_decoder, sentence_cross_entropy, translate
from fnn.summaries import summary
from fnn.training import (
    Batches,
    EarlyStopping,
    EvalFn,
    History,
    StepFn,
    TrainingError,
    TrainState,
    batches,
    evaluator,
    fit,
    predict,
    supervised_step,
    train,
)
from fnn.translators import gru_translator, transformer_translator
from fnn.tree import tree_size

if TYPE_CHECKING:  # loaded lazily, on first use: see __getattr__ at the end
    from fnn import datasets, distributed, plot
    from fnn.experiments import SweepResult, grid, load_sweep, sweep, trial_key
    from fnn.interop.onnx_export import export_onnx
    from fnn.interop.torch_weights import from_torch, to_torch

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)

__all__ = [
    *_layer_names,
    "accuracy",
    "adam",
    "adamw",
    "apply_updates",
    "assert_gradients_close",
    "augment",
    "Batches",
    "batches",
    "bce",
    "bce_with_logits",
    "bits_per_character",
    "beam_search",
    "Checkpoint",
    "CheckpointMismatch",
    "cosine_decay",
    "cross_entropy",
    "datasets",
    "distributed",
    "Decoder",
    "decoding",
    "each",
    "EarlyStopping",
    "encoder_decoder",
    "EvalFn",
    "evaluator",
    "export_onnx",
    "fit",
    "FnnFileError",
    "FolderLocked",
    "fold_in",
    "from_torch",
    "generate",
    "GradFn",
    "gradcheck",
    "greedy",
    "gru_translator",
    "grid",
    "History",
    "init",
    "initializers",
    "Input",
    "Key",
    "key",
    "Layer",
    "LayerError",
    "layers",
    "load",
    "load_checkpoint",
    "load_sweep",
    "Loss",
    "LossError",
    "LossLogger",
    "momentum",
    "mse",
    "nll",
    "ops",
    "optim",
    "Optimizer",
    "parallel",
    "perf",
    "pick",
    "perplexity",
    "plot",
    "predict",
    "residual",
    "rmsprop",
    "rng",
    "save",
    "save_checkpoint",
    "serial",
    "sgd",
    "sentence_cross_entropy",
    "seq2seq",
    "split",
    "step_decay",
    "StepFn",
    "summary",
    "supervised_step",
    "sweep",
    "SweepResult",
    "threads",
    "to_torch",
    "train",
    "TrainingError",
    "TrainState",
    "transformer_translator",
    "translate",
    "tree_size",
    "trial_key",
    "value_and_grad",
]

# Submodules loaded on first attribute access: `fnn.plot` needs matplotlib (the `plot` extra),
# `fnn.datasets` is only needed by users who load data. Keep these names out of the eager imports
# above; tests/test_install.py checks that `import fnn` loads no matplotlib/sklearn/scipy.
_LAZY_SUBMODULES = ("datasets", "distributed", "plot")
# fnn.sweep & co. live in fnn.experiments (hashing, sockets, Dask on use): loaded on first use
_LAZY_NAMES = {name: "fnn.experiments"
               for name in ("SweepResult", "grid", "load_sweep", "sweep", "trial_key")}
# exchange with other tools (fnn.interop: ONNX, PyTorch weights): loaded on first use
_LAZY_NAMES.update(export_onnx="fnn.interop.onnx_export", from_torch="fnn.interop.torch_weights",
                   to_torch="fnn.interop.torch_weights")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        module = importlib.import_module(f"fnn.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        import importlib

        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES, *_LAZY_NAMES})
