"""Layers of ``mindspore.nn``: dense, convolution, pooling, embedding, normalization, dropout, activations."""

from sporax.nn.layer.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    get_activation,
)
from sporax.nn.layer.basic import Dense, Dropout, Flatten
from sporax.nn.layer.conv import Conv2d
from sporax.nn.layer.embedding import Embedding, EmbeddingLookup
from sporax.nn.layer.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from sporax.nn.layer.pooling import AvgPool2d, MaxPool2d

__all__ = [
    "Dense", "Flatten", "Dropout", "Conv2d", "Embedding", "EmbeddingLookup", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "MaxPool2d", "AvgPool2d",
    "ReLU", "ReLU6", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "SiLU", "LeakyReLU", "ELU",
    "get_activation",
]
