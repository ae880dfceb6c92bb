"""``GraphCell`` (run an exported computation), ``ParameterUpdate``, ``WithGradCell``.

``GraphCell(graph, params_init=None)`` wraps a graph loaded by :func:`sporax.load` (an
:class:`ExportedGraph`, the counterpart of MindSpore's FuncGraph loaded from MindIR). Its
Parameters are the exported network's, by name (``fc1.weight``), initialised from the file or
from ``params_init``; calling it runs the exported program on them. Parameters the exported
computation writes (a ``ParameterUpdate``, BatchNorm statistics in training mode) are written
back after each call. The program is differentiable, so a GraphCell can also be fine-tuned.
"""

from __future__ import annotations

import jax
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell

__all__ = ["GraphCell", "ParameterUpdate", "WithGradCell", "ExportedGraph"]


class ExportedGraph:
    """A computation loaded from a ``STABLEHLO`` file: the program, its parameters and signature.

    ``program`` is a ``jax.export.Exported`` of ``f(parameter arrays, *inputs) -> (outputs,
    written parameter arrays)``; ``parameters`` maps names to numpy arrays in program order;
    ``written`` lists the indices of the parameters the program writes. Calling the graph runs
    it on its own parameters (as ``GraphCell(graph)(*inputs)`` would, without write-back).
    """

    def __init__(self, program, parameters: dict, requires_grad: dict, written: tuple, inputs: list,
                 file_name: str = "") -> None:
        self.program = program
        self.parameters = parameters
        self.requires_grad = requires_grad
        self.written = tuple(written)
        self.inputs = inputs  # [(shape, dtype name)]
        self.file_name = file_name

    def check_inputs(self, arrays: list) -> None:
        if len(arrays) != len(self.inputs):
            raise ValueError(f"For 'GraphCell', the exported graph '{self.file_name}' takes {len(self.inputs)} inputs, "
                             f"but got {len(arrays)}.")
        for i, (a, (shape, dtype)) in enumerate(zip(arrays, self.inputs)):
            if tuple(a.shape) != tuple(shape) or str(np.dtype(a.dtype)) != dtype:
                raise ValueError(
                    f"For 'GraphCell', input {i} should have shape {tuple(shape)} and dtype {dtype} as exported, but "
                    f"got shape {tuple(a.shape)} and dtype {np.dtype(a.dtype)}."
                )

    def run(self, param_arrays: list, inputs: tuple):
        """(outputs as Tensors, new values of the written parameters)."""
        arrays = [unwrap(x) for x in inputs]
        self.check_inputs(arrays)
        out, new = self.program.call(list(param_arrays), *arrays)
        out = jax.tree_util.tree_map(Tensor._wrap, out)
        return out, new

    def __call__(self, *inputs):
        return self.run([np.asarray(v) for v in self.parameters.values()], inputs)[0]


class GraphCell(Cell):
    """A Cell running an exported graph: ``GraphCell(graph, params_init=None, obf_random_seed=None)``."""

    def __init__(self, graph, params_init=None, obf_random_seed=None) -> None:
        super().__init__(auto_prefix=True)
        if obf_random_seed is not None:
            raise ValueError("For 'GraphCell', dynamic structure obfuscation ('obf_random_seed') is not supported by "
                             "sporax.")
        if not isinstance(graph, ExportedGraph):
            raise TypeError("For 'GraphCell', the argument 'graph' must be a graph loaded by sporax.load() from an "
                            f"exported 'STABLEHLO' file, but got type {type(graph)}.")
        params_init = {} if params_init is None else params_init
        if not isinstance(params_init, dict):
            raise TypeError(f"For 'GraphCell', the argument 'params_init' must be a dict, but got {type(params_init)}.")
        for name, value in params_init.items():
            if not isinstance(name, str) or not isinstance(value, Tensor):
                raise TypeError("For 'GraphCell', the key of the 'params_init' must be str, and the value must be "
                                f"Tensor or Parameter, but got the key type: {type(name)}, and the value type: "
                                f"{type(value)}")
        self.graph = graph
        order = []
        for name, array in graph.parameters.items():
            value = params_init.get(name)
            if value is not None:
                if tuple(value.shape) != tuple(array.shape):
                    raise ValueError(f"For 'GraphCell', 'params_init[{name!r}]' should have shape {tuple(array.shape)}, "
                                     f"but got {tuple(value.shape)}.")
                array = np.asarray(value.asnumpy(), array.dtype)
            p = Parameter(Tensor(array), name=name, requires_grad=graph.requires_grad.get(name, True))
            self._params[name] = p  # exported names keep their dots, as MindSpore's GraphCell does
            order.append(p)
        self.__dict__["_graph_params"] = order

    def construct(self, *inputs):
        params = self.__dict__["_graph_params"]
        out, new = self.graph.run([p._jax() for p in params], inputs)
        for i, value in zip(self.graph.written, new):
            params[i].set_data(Tensor._wrap(value))
        return out


class ParameterUpdate(Cell):
    """``ParameterUpdate(param)``: calling it with a Tensor assigns that value to ``param`` (and returns it)."""

    def __init__(self, param) -> None:
        super().__init__(auto_prefix=False)
        if not isinstance(param, Parameter):
            raise TypeError(msg("ParameterUpdate", "param", "a Parameter", type(param).__name__))
        self._param = param

    def construct(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(msg("ParameterUpdate", "x", "a Tensor", type(x).__name__))
        self._param.set_data(x.astype(self._param.dtype))
        return x


class WithGradCell(Cell):
    """The gradients of ``network`` (with ``loss_fn`` when given) with respect to its trainable parameters.

    ``WithGradCell(network, loss_fn=None, sens=None)``: ``cell(*inputs)`` returns a tuple with one
    gradient per trainable parameter; ``sens`` is the cotangent of the loss (default ones).
    """

    def __init__(self, network: Cell, loss_fn=None, sens=None) -> None:
        super().__init__(auto_prefix=False)
        from sporax.nn.wrap import WithLossCell

        if not isinstance(network, Cell):
            raise TypeError(msg("WithGradCell", "network", "a Cell", type(network).__name__))
        self.network = network
        self.loss_fn = loss_fn
        self.sens = sens
        self.weights = tuple(network.trainable_params())
        self.network_with_loss = network if loss_fn is None else WithLossCell(network, loss_fn)
        self.network_with_loss.set_train()

    def construct(self, *inputs):
        from sporax.ops.composite import _differentiate

        _, _, grads = _differentiate(self.network_with_loss, inputs, {}, (), list(self.weights), self.sens, False)
        return tuple(grads)
