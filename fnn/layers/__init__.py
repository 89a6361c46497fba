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
from fnn.layers.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from fnn.layers.dense import linear
from fnn.layers.dropout import dropout
from fnn.layers.pool import (
    avg_pool1d,
    avg_pool2d,
    global_avg_pool,
    max_pool1d,
    max_pool2d,
    upsample1d,
    upsample2d,
)
from fnn.layers.shape import flatten, reshape

__all__ = [
    "avg_pool1d",
    "avg_pool2d",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "dropout",
    "elementwise",
    "elu",
    "flatten",
    "gaussian",
    "gelu",
    "global_avg_pool",
    "identity",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool1d",
    "max_pool2d",
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
    "upsample1d",
    "upsample2d",
]
