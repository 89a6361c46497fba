"""All layers, re-exported by :mod:`fnn`: activations, dense (``linear``), convolution,
pooling (and up-sampling), norm, stochastic (``dropout``), merge, shape; the builders of
your own (``layer``, ``parameter_free``); :mod:`fnn.layers.fusion`, the pairs
:func:`fnn.serial` fuses."""

from fnn.layers.activations import (
    elementwise,
    elu,
    gaussian,
    gelu,
    identity,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    sinc,
    sine,
    softmax,
    softplus,
    stable_sigmoid,
    tanh,
)
from fnn.layers.attention import multi_head_attention, transformer_block
from fnn.layers.base import layer, parameter_free
from fnn.layers.cells import scan
from fnn.layers.convolution import conv, conv1d, conv2d, conv_transpose1d, conv_transpose2d
from fnn.layers.decoder_attention import cross_attention, luong_attention
from fnn.layers.dense import linear
from fnn.layers.merge import add, concatenate
from fnn.layers.norm import batch_norm, group_norm, layer_norm
from fnn.layers.pooling import (
    avg_pool1d,
    avg_pool2d,
    global_avg_pool,
    max_pool1d,
    max_pool2d,
    pool,
    upsample,
    upsample1d,
    upsample2d,
)
from fnn.layers.positional import positional_embedding, sinusoidal_embedding
from fnn.layers.recurrent import gru, lstm, rnn
from fnn.layers.shape import flatten, reshape
from fnn.layers.stochastic import dropout
from fnn.layers.tokens import embedding

__all__ = [
    "add",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "concatenate",
    "conv",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "cross_attention",
    "dropout",
    "elementwise",
    "elu",
    "embedding",
    "flatten",
    "gaussian",
    "gelu",
    "global_avg_pool",
    "group_norm",
    "gru",
    "identity",
    "layer",
    "layer_norm",
    "leaky_relu",
    "linear",
    "luong_attention",
    "log_softmax",
    "lstm",
    "max_pool1d",
    "max_pool2d",
    "multi_head_attention",
    "parameter_free",
    "pool",
    "positional_embedding",
    "relu",
    "reshape",
    "scan",
    "rnn",
    "sigmoid",
    "sinc",
    "sinusoidal_embedding",
    "sine",
    "softmax",
    "softplus",
    "stable_sigmoid",
    "tanh",
    "transformer_block",
    "upsample",
    "upsample1d",
    "upsample2d",
]
