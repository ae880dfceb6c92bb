"""sporax: MindSpore's Parameter system, in pure Python on JAX.

``import sporax as ms`` gives the names a MindSpore user expects at the top level
(``Tensor``, ``Parameter``, ``ParameterTuple``, dtypes, ``nn``, ``ops``, contexts); run an
unmodified MindSpore script with ``python -m sporax run train.py``.
"""

import numpy as _np

# Importing jax draws from numpy's global RNG; MindSpore's import does not, so a script that
# seeds numpy before ``import mindspore`` must see the same numbers after it.
_np_state = _np.random.get_state()
from sporax import _jax_setup  # noqa: F401  (must run before jax is used)
from sporax import amp, common, communication, context, nn, ops, parallel, train
from sporax.common import dtype
from sporax.common.dtype import *  # noqa: F403
from sporax.common.initializer import initializer
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor
from sporax.common._rng import get_seed, set_seed
from sporax.context import (
    GRAPH_MODE,
    PYNATIVE_MODE,
    ParallelMode,
    get_auto_parallel_context,
    get_context,
    get_fl_context,
    get_ps_context,
    reset_auto_parallel_context,
    set_auto_parallel_context,
    set_context,
    set_fl_context,
    set_ps_context,
)
from sporax.common.api import jit, ms_function
from sporax.ops.composite import grad, value_and_grad
from sporax.train import (
    Callback,
    CheckpointConfig,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    SummaryCollector,
    DynamicLossScaleManager,
    FixedLossScaleManager,
    LossScaleManager,
    build_train_network,
    export,
    load,
    LossMonitor,
    Model,
    RunContext,
    TimeMonitor,
    load_checkpoint,
    load_param_into_net,
    save_checkpoint,
)
from sporax.train.serialization import (
    build_searched_strategy,
    load_distributed_checkpoint,
    merge_sliced_parameter,
    rank_list_for_transform,
    transform_checkpoint_by_rank,
    transform_checkpoints,
)

from_numpy = Tensor.from_numpy  # mindspore.from_numpy builds a Tensor (the dtype helper is dtype.from_numpy)


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a Tensor (a Parameter is one); ``mindspore.is_tensor``."""
    return isinstance(obj, Tensor)


# MindSpore's jit syntax levels (``set_context(jit_syntax_level=...)``), top-level constants in 2.10.
STRICT, COMPATIBLE, LAX = 0, 1, 2

_np.random.set_state(_np_state)  # the imports above leave numpy's global RNG as they found it
del _np_state

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Parameter", "ParameterTuple", "initializer", "set_seed", "get_seed", "dtype",
    "amp", "common", "communication", "context", "nn", "ops",
    "GRAPH_MODE", "PYNATIVE_MODE", "ParallelMode", "set_context", "get_context",
    "set_auto_parallel_context", "get_auto_parallel_context", "reset_auto_parallel_context",
    "set_ps_context", "get_ps_context", "set_fl_context", "get_fl_context", "jit", "ms_function", "grad", "value_and_grad", "Model",
    "Callback", "LossMonitor",
    "RunContext", "TimeMonitor", "CheckpointConfig", "ModelCheckpoint", "EarlyStopping", "History", "LambdaCallback",
    "ReduceLROnPlateau", "SummaryCollector", "DynamicLossScaleManager", "FixedLossScaleManager",
    "LossScaleManager", "build_train_network", "export", "load", "save_checkpoint", "load_checkpoint", "load_param_into_net", "train", "parallel",
    "build_searched_strategy", "merge_sliced_parameter", "load_distributed_checkpoint", "transform_checkpoints",
    "transform_checkpoint_by_rank", "rank_list_for_transform",
    "from_numpy", "is_tensor", "STRICT", "COMPATIBLE", "LAX",
    *dtype.__all__,
]


def __getattr__(name):
    # ``mindspore.dataset`` without importing it first, as in MindSpore; loaded on first use
    # because Grain takes seconds to import.
    if name == "dataset":
        import importlib

        return importlib.import_module("sporax.dataset")
    raise AttributeError(f"module 'sporax' has no attribute {name!r}")
