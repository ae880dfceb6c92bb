"""Training wrappers: ``WithLossCell``, ``WithEvalCell``, ``TrainOneStepCell``, ``ForwardValueAndGrad``.

``TrainOneStepCell`` is the whole train step as one Cell: forward, backward (one pass, through
:func:`sporax.ops.composite._differentiate`), gradient reduction and ``optimizer(grads)``. The
optimizer writes the new parameter and state values with ``Parameter.set_data``; in
GRAPH_MODE the step runs compiled (``Cell.__call__`` -> :func:`sporax.common.api.run_cell`)
and those writes are carried out of ``jax.jit`` by the state binding, with the buffers
donated. In PYNATIVE_MODE the same code runs eagerly.

Gradient reduction seam: in ``data_parallel``/``hybrid_parallel`` mode the gradients pass
through ``self.grad_reducer`` before the optimizer. :func:`_grad_reducer` builds it: the
identity in stand-alone mode, and ``nn.DistributedGradReducer(parameters, gradients_mean)``
(a Cell mapping the gradient tuple to the reduced tuple, its degree the data-parallel device
count) in the data-parallel modes. Holding a reducer makes the cell a data-parallel step:
``Cell.__call__`` runs it under ``shard_map`` over the devices
(:mod:`sporax.parallel.data_parallel`).
"""

from __future__ import annotations

import importlib

import jax.numpy as jnp

from sporax import context as _context
from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell

__all__ = ["WithLossCell", "WithEvalCell", "TrainOneStepCell", "ForwardValueAndGrad"]


def _check_cell(value, arg: str, where: str) -> Cell:
    if not isinstance(value, Cell):
        raise TypeError(msg(where, arg, "a Cell", type(value).__name__))
    return value


class WithLossCell(Cell):
    """``loss_fn(backbone(data), label)``: a network with its loss, the input of TrainOneStepCell."""

    def __init__(self, backbone: Cell, loss_fn) -> None:
        super().__init__(auto_prefix=False)
        self._backbone = _check_cell(backbone, "backbone", "WithLossCell")
        if not callable(loss_fn):
            raise TypeError(msg("WithLossCell", "loss_fn", "a Cell or function", type(loss_fn).__name__))
        self._loss_fn = loss_fn

    def construct(self, data, label):
        return self._loss_fn(self._backbone(data), label)

    @property
    def backbone_network(self) -> Cell:
        """The network without its loss."""
        return self._backbone


def _to_fp32(x):
    if isinstance(x, Tensor) and jnp.issubdtype(x.dtype.np_dtype, jnp.floating):
        return Tensor._wrap(unwrap(x).astype(jnp.float32))
    return x


class WithEvalCell(Cell):
    """``(loss, outputs, label)`` of ``network(data)``: what ``Model.eval`` feeds its metrics."""

    def __init__(self, network: Cell, loss_fn, add_cast_fp32: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self._network = _check_cell(network, "network", "WithEvalCell")
        self._loss_fn = loss_fn
        self.add_cast_fp32 = check_bool(add_cast_fp32, "add_cast_fp32", "WithEvalCell")

    def construct(self, data, label):
        outputs = self._network(data)
        if self.add_cast_fp32:  # as MindSpore's mixed_precision_cast: floating tensors only
            label = _to_fp32(label)
            outputs = _to_fp32(outputs)
        loss = self._loss_fn(outputs, label)
        return loss, outputs, label


def _grad_reducer(parameters) -> object:
    """The gradient reducer for the current parallel mode (see the module docstring)."""
    from sporax import context

    mode = context._parallel_mode()
    if mode not in (context.ParallelMode.DATA_PARALLEL, context.ParallelMode.HYBRID_PARALLEL):
        return None
    try:
        module = importlib.import_module("sporax.parallel.grad_reducer")
    except ImportError:
        return None  # stand-alone behaviour until the data-parallel issue lands
    mean = context.get_auto_parallel_context("gradients_mean")
    return module.DistributedGradReducer(parameters, mean)  # degree: the data-parallel devices


def _optimizer_weights(optimizer, network: Cell) -> list:
    params = getattr(optimizer, "parameters", None)
    if params is None:
        return network.trainable_params()
    return list(params)


def _uses_ps(cell) -> bool:
    return _context._ps_active() and any(p.is_param_ps for p in cell.weights)


class TrainOneStepCell(Cell):
    """One training step: loss, gradients of the optimizer's parameters, ``optimizer(grads)``.

    ``TrainOneStepCell(network, optimizer, sens=1.0)``: ``network`` returns the loss (a
    ``WithLossCell``); ``sens`` scales the gradient (the loss's cotangent). Returns the loss.
    """

    def __init__(self, network: Cell, optimizer: Cell, sens=1.0, return_grad: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self.network = _check_cell(network, "network", "TrainOneStepCell")
        self.network.set_grad()
        self.optimizer = _check_cell(optimizer, "optimizer", "TrainOneStepCell")
        if sens is not None and (isinstance(sens, bool) or not isinstance(sens, (int, float))):
            raise TypeError(msg("TrainOneStepCell", "sens", "a float or None", sens))
        self.sens = None if sens is None else float(sens)
        self.return_grad = check_bool(return_grad, "return_grad", "TrainOneStepCell")
        self.weights = tuple(_optimizer_weights(optimizer, network))
        self.grad_reducer = _grad_reducer(self.weights)
        self.reducer_flag = self.grad_reducer is not None

    def __call__(self, *inputs, **kwargs):
        # Parameter-server mode: the step talks to the servers between its passes (sporax.ps).
        if self.__dict__.get("_ps_plan") is not None or _uses_ps(self):
            from sporax.ps.worker import train_step

            return train_step(self, inputs)
        return super().__call__(*inputs, **kwargs)

    def construct(self, *inputs):
        from sporax.ops.composite import _differentiate

        sens = None if self.sens is None or self.sens == 1.0 else self.sens
        loss, _, grads = _differentiate(self.network, inputs, {}, (), list(self.weights), sens, False)
        grads = tuple(grads)
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        self.optimizer(grads)
        if self.return_grad:
            return loss, grads
        return loss


class ForwardValueAndGrad(Cell):
    """``(outputs, grads)`` of ``network`` in one pass, gradients chosen as in ``GradOperation``.

    ``ForwardValueAndGrad(network, weights=None, get_all=False, get_by_list=False,
    sens_param=False)``: with ``sens_param`` the last input is the output's cotangent.
    """

    def __init__(self, network: Cell, weights=None, get_all: bool = False, get_by_list: bool = False,
                 sens_param: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self.network = _check_cell(network, "network", "ForwardValueAndGrad")
        self.get_all = check_bool(get_all, "get_all", "ForwardValueAndGrad")
        self.get_by_list = check_bool(get_by_list, "get_by_list", "ForwardValueAndGrad")
        self.sens_param = check_bool(sens_param, "sens_param", "ForwardValueAndGrad")
        if get_by_list and weights is None:
            raise TypeError("For 'ForwardValueAndGrad', 'weights' must be given when 'get_by_list' is True.")
        self.weights = tuple(weights) if weights is not None else ()

    def construct(self, *inputs):
        from sporax.ops.composite import _differentiate

        sens = None
        if self.sens_param:
            inputs, sens = inputs[:-1], inputs[-1]
        if self.get_all:
            positions = tuple(i for i, a in enumerate(inputs) if isinstance(a, Tensor))
        elif self.get_by_list:
            positions = ()
        else:
            positions = (0,)
        weights = list(self.weights) if self.get_by_list else []
        out, g_in, g_w = _differentiate(self.network, inputs, {}, positions, weights, sens, False)
        if self.get_all and self.get_by_list:
            return out, (tuple(g_in), tuple(g_w))
        if self.get_all:
            return out, tuple(g_in)
        if self.get_by_list:
            return out, tuple(g_w)
        return out, g_in[0]

