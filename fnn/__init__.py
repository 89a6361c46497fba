"""fnn — a pure-functional neural-network library on numpy.

A layer is ``(init, apply, vjp)``; params are nested dicts of arrays; training is a pure step
function folded over batches. See README.md and DESIGN.md.
"""

from fnn import datasets, initializers, layers, ops, plot, threads
from fnn.checks import LayerError
from fnn.core import (
    Key,
    Layer,
    add,
    concatenate,
    fold_in,
    key,
    parallel,
    residual,
    rng,
    serial,
    split,
    value_and_grad,
)
from fnn.gradient_check import gradcheck
from fnn.io import FnnFileError, load, save
from fnn.layers import *  # noqa: F403  (every layer constructor)
from fnn.layers import __all__ as _layer_names
from fnn.logger import LossLogger
from fnn.losses import Loss, bce, bce_with_logits, cross_entropy, mse, nll
from fnn.memory import reuse_freed_memory
from fnn.optim import Optimizer, adam, apply_updates, cosine_decay, momentum, sgd, step_decay
from fnn.training import (
    Batches,
    EarlyStopping,
    History,
    TrainState,
    accuracy,
    batches,
    evaluator,
    fit,
    predict,
    supervised_step,
    train,
)
from fnn.tree import tree_size

__version__ = "0.1.0"

__all__ = [
    *_layer_names,
    "Batches", "EarlyStopping", "FnnFileError", "History", "Key", "Layer", "LayerError", "Loss",
    "LossLogger", "Optimizer", "TrainState", "accuracy", "adam", "add", "apply_updates", "batches",
    "bce", "bce_with_logits", "concatenate", "cosine_decay", "cross_entropy", "datasets",
    "evaluator", "fit", "fold_in", "gradcheck", "initializers", "key", "layers", "load", "momentum", "mse",
    "nll", "ops", "parallel", "plot", "predict", "residual", "reuse_freed_memory", "rng", "save",
    "serial", "sgd", "split",
    "step_decay", "supervised_step", "threads", "train", "tree_size", "value_and_grad",
]
