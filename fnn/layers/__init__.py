"""All layers, re-exported by :mod:`fnn`."""

from fnn.layers.activations import (
    elementwise,
    elu,
    gaussian,
    gelu,
    identity,
    leaky_relu,
    log_softmax,
    parameter_free,
    relu,
    sigmoid,
    sinc,
    sine,
    softmax,
    softplus,
    stable_sigmoid,
    tanh,
)
from fnn.layers.dense import linear
from fnn.layers.dropout import dropout
from fnn.layers.shape import flatten, reshape

__all__ = [
    "dropout",
    "elementwise",
    "elu",
    "flatten",
    "gaussian",
    "gelu",
    "identity",
    "leaky_relu",
    "linear",
    "log_softmax",
    "parameter_free",
    "relu",
    "reshape",
    "sigmoid",
    "sinc",
    "sine",
    "softmax",
    "softplus",
    "stable_sigmoid",
    "tanh",
]
