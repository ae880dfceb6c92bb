"""Optimizers of ``mindspore.nn`` and their learning-rate schedules."""

from sporax.nn.optim import dynamic_lr
from sporax.nn.optim.ada_grad import FTRL, Adagrad, ProximalAdagrad
from sporax.nn.optim.adam import Adam, AdamWeightDecay
from sporax.nn.optim.lamb import LARS, Lamb
from sporax.nn.optim.learning_rate_schedule import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)
from sporax.nn.optim.momentum import Momentum
from sporax.nn.optim.optax_adapter import OptaxOptimizer
from sporax.nn.optim.optimizer import Optimizer
from sporax.nn.optim.rmsprop import RMSProp
from sporax.nn.optim.sgd import SGD

__all__ = [
    "Optimizer", "OptaxOptimizer", "SGD", "Momentum", "Adam", "AdamWeightDecay", "RMSProp", "Adagrad",
    "ProximalAdagrad", "FTRL", "Lamb", "LARS", "LearningRateSchedule", "ExponentialDecayLR",
    "NaturalExpDecayLR", "InverseDecayLR", "CosineDecayLR", "PolynomialDecayLR", "WarmUpLR", "dynamic_lr",
]
