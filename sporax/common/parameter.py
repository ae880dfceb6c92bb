"""Parameter: a named, variable Tensor that a network trains, and ParameterTuple.

A Parameter is a Tensor (its one value slot) plus a small record of validated flags
(spec §2). It is lazy whenever it is built from a lazy tensor, in every mode (spec §2.3):
it holds the initializer and materializes in place on ``init_data()`` or first use.
"""

from __future__ import annotations

import numbers
import re
import sys

import numpy as np

from sporax.common import _binding
from sporax.common import dtype as mstype
from sporax.common._validation import check_bool, check_non_negative_int, msg
from sporax.common.tensor import Tensor, _cast, _escape, _infer_sequence, _readonly, lazy_tensor

__all__ = ["Parameter", "ParameterTuple"]

DEFAULT_NAME = "Parameter"
_MAX_NAME_LENGTH = 1024
_PREFIX_RE = re.compile(r"^\w+[0-9a-zA-Z_.]*$", re.ASCII)


def _check_name(name) -> str:
    if name is not None and not isinstance(name, str):
        raise ValueError(f"For 'Parameter', the 'name' should be a str or None, but got {type(name).__name__}.")
    name = (name or "").strip()
    if len(name) > _MAX_NAME_LENGTH:
        raise ValueError(
            f"For 'Parameter', the length of 'name' should be at most {_MAX_NAME_LENGTH}, but got {len(name)}."
        )
    return name or DEFAULT_NAME


def _in_semi_or_auto_parallel() -> bool:
    from sporax import context

    return context._state.auto_parallel.parallel_mode in ("semi_auto_parallel", "auto_parallel")


class Parameter(Tensor):
    """A named, trainable Tensor (spec §2).

    ``Parameter(default_input, name=None, requires_grad=True, layerwise_parallel=False,
    parallel_optimizer=True)``. ``default_input`` is a Tensor (possibly lazy), int, float,
    numpy array or list; its data is copied.
    """

    __slots__ = (
        "_name",
        "_requires_grad",
        "_layerwise_parallel",
        "_parallel_optimizer",
        "_comm_recompute",
        "_comm_fusion",
        "_cache_enable",
        "_cache_shape",
        "_key",
        "_inited_param",
        "_sliced",
        "unique",
        "is_init",
        "init_mode",
        "is_default_input_init",
        "is_in_parallel",
        "is_param_ps",
        "init_in_server",
        "push_weight_to_server",
        "pull_weight_from_server",
        "requires_aggr",
        "__dict__",
    )

    def __init__(self, default_input, name=None, requires_grad=True, layerwise_parallel=False, parallel_optimizer=True):
        if isinstance(default_input, bool):
            raise ValueError("Parameter data can not be `bool`")
        self._set_initial_data(default_input)
        self._name = _check_name(name)
        self._requires_grad = check_bool(requires_grad, "requires_grad", "Parameter")
        self._layerwise_parallel = check_bool(layerwise_parallel, "layerwise_parallel", "Parameter")
        self._parallel_optimizer = check_bool(parallel_optimizer, "parallel_optimizer", "Parameter")
        self._reset_flags()
        self.is_in_parallel = _in_semi_or_auto_parallel()

    def _set_initial_data(self, data) -> None:
        self.init = None
        self._seed = None
        self.init_mode = None
        self.is_default_input_init = False
        if isinstance(data, Tensor):
            if data.init is not None:
                self._value = None
                self.init = data.init
                self._seed = data._seed
                self.init_mode = data
                self.is_default_input_init = True
                self._shape = data._shape
                self._dtype = data._dtype
                return
            value = _escape(data._value)
        elif isinstance(data, int):
            value = _readonly(np.array(data, np.int32))
        elif isinstance(data, float):
            value = _readonly(np.array(data, np.float32))
        elif isinstance(data, np.ndarray):
            value = Tensor._convert(data, None)
        elif isinstance(data, list):
            value = _readonly(_infer_sequence(data))
        else:
            raise TypeError(
                "For 'Parameter', the 'default_input' should be a Tensor, int, float, numpy.ndarray "
                f"or list, but got {type(data).__name__}."
            )
        self._value = value
        self._shape = tuple(value.shape)
        self._dtype = mstype.from_numpy(value.dtype)

    def _reset_flags(self) -> None:
        """Every flag other than the constructor's, at its default (spec §2.2)."""
        self._comm_recompute = False
        self._comm_fusion = 1
        self._cache_enable = False
        self._cache_shape = []
        self._key = -1
        self._inited_param = None
        self.sliced = False
        self.unique = False
        self.is_init = False
        self.is_param_ps = False
        self.init_in_server = False
        self.push_weight_to_server = False
        self.pull_weight_from_server = False
        self.requires_aggr = True

    # ------------------------------------------------------------------ validated properties
    @property
    def name(self) -> str:
        """The parameter's name: its key in checkpoints and in a Cell."""
        return self._name

    @name.setter
    def name(self, value) -> None:
        self._name = _check_name(value)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value) -> None:
        value = check_bool(value, "requires_grad", "Parameter")
        if value != self._requires_grad:  # compiled/cached gradient calls read it at trace time
            _binding.bump_flags()
        self._requires_grad = value

    @property
    def layerwise_parallel(self) -> bool:
        return self._layerwise_parallel

    @layerwise_parallel.setter
    def layerwise_parallel(self, value) -> None:
        self._layerwise_parallel = check_bool(value, "layerwise_parallel", "Parameter")

    @property
    def parallel_optimizer(self) -> bool:
        return self._parallel_optimizer

    @parallel_optimizer.setter
    def parallel_optimizer(self, value) -> None:
        self._parallel_optimizer = check_bool(value, "parallel_optimizer", "Parameter")

    @property
    def parallel_optimizer_comm_recompute(self) -> bool:
        return self._comm_recompute

    @parallel_optimizer_comm_recompute.setter
    def parallel_optimizer_comm_recompute(self, value) -> None:
        self._comm_recompute = check_bool(value, "parallel_optimizer_comm_recompute", "Parameter")

    @property
    def comm_fusion(self) -> int:
        return self._comm_fusion

    @comm_fusion.setter
    def comm_fusion(self, value) -> None:
        self._comm_fusion = check_non_negative_int(value, "comm_fusion", "Parameter")

    @property
    def cache_enable(self) -> bool:
        return self._cache_enable

    @cache_enable.setter
    def cache_enable(self, value) -> None:
        self._cache_enable = check_bool(value, "cache_enable", "Parameter")

    @property
    def cache_shape(self) -> list:
        return self._cache_shape

    @cache_shape.setter
    def cache_shape(self, value) -> None:
        if not isinstance(value, (tuple, list)):
            raise TypeError(
                f"For 'Parameter', the 'cache_shape' should be a tuple or list, but got {type(value).__name__}."
            )
        self._cache_shape = list(value)

    @property
    def key(self) -> int:
        return self._key

    @key.setter
    def key(self, value) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"For 'Parameter', the 'key' should be an int, but got {type(value).__name__}.")
        self._key = value

    @property
    def sliced(self) -> bool:
        """Whether this parameter holds only its rank's slice of the full tensor."""
        return self._sliced

    @sliced.setter
    def sliced(self, value) -> None:
        self._sliced = check_bool(value, "sliced", "Parameter")

    @property
    def inited_param(self):
        return self._inited_param

    @property
    def data(self) -> Parameter:
        """The parameter object itself (seed behaviour)."""
        return self

    # ------------------------------------------------------------------ value paths
    def _assign(self, value) -> None:
        _binding.check_write(self, value)
        super()._assign(value)

    def _materialize_window(self, full_shape, offsets, sizes) -> None:
        super()._materialize_window(full_shape, offsets, sizes)
        self.init_mode = None

    def value(self) -> Tensor:
        """A plain Tensor holding a snapshot of the current values."""
        return Tensor._wrap(self._materialized())

    def init_data(self, layout=None, set_sliced=False, rank=None) -> Parameter:
        """Materialize a lazy parameter in place and return it (spec §2.4).

        ``layout`` is MindSpore's ``(dev_mat, tensor_map, slice_shape[, field_size,
        uniform_split, opt_shard_group])`` tuple: only this rank's slice is materialized (the
        exact window of the full tensor). ``rank`` defaults to ``communication.get_rank()``.
        """
        check_bool(set_sliced, "set_sliced", "Parameter.init_data")
        if self.is_default_input_init and self.is_in_parallel != _in_semi_or_auto_parallel():
            raise RuntimeError(
                "Must set or change parallel mode before any Initializer is created: parameter "
                f"'{self._name}' was created under a different parallel mode than the current one."
            )
        if layout is not None:
            if not isinstance(layout, tuple):
                raise TypeError(
                    f"For 'Parameter.init_data', the 'layout' should be a tuple, but got {type(layout).__name__}."
                )
            if len(layout) < 3:
                raise ValueError(
                    "For 'Parameter.init_data', the length of 'layout' should be at least 3 "
                    f"(dev_mat, tensor_map, slice_shape), but got {len(layout)}."
                )
        if self.init is None:
            return self
        if self._inited_param is not None:
            return self._inited_param
        if layout is None:
            self._materialize_window(self._shape, (0,) * len(self._shape), self._shape)
        else:
            try:
                offsets, sizes = self._layout_window(layout, rank)
            except (TypeError, ValueError) as e:
                raise type(e)(
                    f"For 'Parameter.init_data', the 'layout' {layout!r} does not fit parameter "
                    f"'{self._name}' of shape {self._shape}: {e}"
                ) from None
            self._materialize_window(self._shape, offsets, sizes)
        self.sliced = set_sliced
        return self

    def _layout_window(self, layout: tuple, rank) -> tuple:
        """This rank's window (and optimizer shard, if ``layout[5]`` is truthy) of the full shape."""
        from sporax import communication
        from sporax.parallel.layout import Layout

        if rank is None:
            rank = communication.get_rank()
        opt_shard = len(layout) >= 6 and bool(layout[5])
        return Layout.from_mindspore(layout).window(self._shape, rank, opt_shard=opt_shard)

    def to_global(self, layout, devices=None):
        """Hold this parameter as one global ``jax.Array`` sharded by ``layout``; return it.

        ``layout`` is a ``jax.sharding.Sharding``, a ``sporax.parallel.layout.Layout`` or
        MindSpore's ``(dev_mat, tensor_map, slice_shape, ...)`` tuple (its mesh is built over
        ``devices``, default ``jax.devices()``). Each device's shard is generated alone: a lazy
        parameter computes only that window of its initializer, so the full tensor never
        exists in host memory, and the values equal the unsharded ones bit for bit.
        """
        import jax

        from sporax.parallel import layout as layout_math

        if isinstance(layout, jax.sharding.Sharding):
            sharding = layout
        else:
            rec = layout if isinstance(layout, layout_math.Layout) else layout_math.Layout.from_mindspore(tuple(layout))
            mesh, spec = layout_math.to_mesh_and_spec(rec, devices)
            sharding = jax.sharding.NamedSharding(mesh, spec)
        full = self._shape
        if self.init is not None:
            init, seed, dtype = self.init, self._seed, self._dtype

            def shard(index):
                offsets, sizes = _window_of_index(index, full)
                return init.window(seed, full, dtype, offsets, sizes)
        else:
            value = self._value

            def shard(index):
                return value[index]

        array = jax.make_array_from_callback(full, sharding, shard)
        self._assign(array)
        self.init = None
        self.init_mode = None
        return array

    def set_data(self, data, slice_shape=False) -> Parameter:
        """Replace the parameter's data, keeping its identity and dtype (spec §2.5)."""
        check_bool(slice_shape, "slice_shape", "Parameter.set_data")
        if isinstance(data, (int, float)) and not isinstance(data, Tensor):
            if self._dtype in mstype.int_type and isinstance(data, float):
                raise TypeError(
                    "Incoming Parameter dtype can not be converted to current dtype implicitly. "
                    f"Current dtype is {self._dtype}, and incoming is a float: {data!r}."
                )
            try:
                value = np.array(data, self._dtype.np_dtype)
            except (OverflowError, ValueError):
                raise ValueError(
                    msg("Parameter.set_data", "data", f"a number that fits the parameter's dtype {self._dtype}", data)
                ) from None
            data = Tensor._wrap(_readonly(value))
        elif not isinstance(data, Tensor):
            raise TypeError(
                "For 'Parameter.set_data', the 'data' should be a Tensor, int or float, "
                f"but got {type(data).__name__}."
            )
        if not slice_shape and tuple(self._shape) != tuple(data.shape):
            raise ValueError(
                f"Can not change the shape of Parameter which has been initialized. Current shape is "
                f"{self._shape}, and incoming is {tuple(data.shape)}."
            )
        if data.init is not None and data.dtype == self._dtype:
            if self.init is not None:
                self.init, self._seed, self.init_mode = data.init, data._seed, data
                self._value, self._shape = None, data.shape
                if self._inited_param is not None:
                    self._inited_param.set_data(data, slice_shape)
            else:
                full = data.shape
                self._assign(_readonly(data.init.window(data._seed, full, data.dtype, (0,) * len(full), full)))
        else:
            value = data._materialized()
            if data.dtype != self._dtype:
                value = _cast(value, self._dtype)
            self._assign(value)
            self.init = None
            self.init_mode = None
        self.sliced = slice_shape
        return self

    # ------------------------------------------------------------------ copies
    def clone(self, init="same") -> Parameter:
        """A new, independent Parameter with the same name, shape, dtype and flags (spec §2.6.1).

        ``init='same'`` copies the values (a lazy source gives a lazy clone with the same
        initializer, hence the same values); anything else is given to ``initializer()``.
        """
        if isinstance(init, str) and init == "same":
            source = self
        else:
            from sporax.common.initializer import initializer

            if not isinstance(init, (str, numbers.Number, Tensor)) and not hasattr(init, "window"):
                raise TypeError(
                    "For 'Parameter.clone', the 'init' should be 'same', an initializer name, an "
                    f"Initializer, a number or a Tensor, but got {type(init).__name__}."
                )
            source = initializer(init, shape=self._shape, dtype=self._dtype)
            if source.init is None and source.dtype != self._dtype:
                source = source.astype(self._dtype)
        c = object.__new__(Parameter)
        c._set_initial_data(source)
        if source is self:
            c.init_mode = self.init_mode
            c.is_default_input_init = self.is_default_input_init
        c._name = self._name
        c._requires_grad = self._requires_grad
        c._layerwise_parallel = self._layerwise_parallel
        c._parallel_optimizer = self._parallel_optimizer
        c._reset_flags()
        c.is_in_parallel = self.is_in_parallel
        c._comm_recompute = self._comm_recompute
        c._comm_fusion = self._comm_fusion
        c._cache_enable = self._cache_enable
        if self._cache_shape:
            c._cache_shape = list(self._cache_shape)
        c.is_param_ps = self.is_param_ps
        c.init_in_server = self.init_in_server
        c.requires_aggr = self.requires_aggr
        return c

    def copy(self) -> Parameter:
        """Exactly ``clone(init='same')``."""
        return self.clone()

    def __deepcopy__(self, memo) -> Parameter:
        c = Parameter(self._lazy_or_value(), name=self._name, requires_grad=self._requires_grad)
        c._inited_param = self._inited_param
        memo[id(self)] = c
        return c

    def __copy__(self) -> Parameter:
        return Parameter(self._lazy_or_value(), self._name, self._requires_grad, self._layerwise_parallel)

    def __reduce__(self):
        return (Parameter, (self._lazy_or_value(), self._name, self._requires_grad, self._layerwise_parallel))

    def _lazy_or_value(self) -> Tensor:
        if self.init is not None:
            return self.init_mode if self.init_mode is not None else lazy_tensor(self.init, self._shape, self._dtype, self._seed)
        return Tensor._wrap(self._value)

    # ------------------------------------------------------------------ PS / FL
    def set_param_ps(self, init_in_server=False) -> None:
        """Mark this parameter as held and updated by the parameter server (spec §2.6.2)."""
        from sporax import context

        if not context._ps_active():
            raise RuntimeError(
                "Must complete following two steps before calling set_param_ps: 1. "
                "context.set_ps_context(enable_ps=True) 2. export MS_ROLE environment variable "
                "(MS_WORKER, MS_PSERVER or MS_SCHED)."
            )
        init_in_server = check_bool(init_in_server, "init_in_server", "Parameter.set_param_ps")
        worker = sys.modules.get("sporax.ps.worker")
        if not self.is_param_ps and worker is not None and worker.trained_locally(self):
            raise RuntimeError(
                f"For 'Parameter.set_param_ps', the parameter '{self._name}' is already being trained locally by a "
                "parameter-server training cell of this process; mark parameters with set_param_ps() before the "
                "first training step (build a new TrainOneStepCell to move it to the servers)."
            )
        self.is_param_ps = True
        self.init_in_server = init_in_server

    def set_param_fl(self, push_to_server=False, pull_from_server=False, requires_aggr=True) -> None:
        """Set how this parameter travels in federated learning; only moves flags off their defaults."""
        if push_to_server:
            self.push_weight_to_server = True
        if pull_from_server:
            self.pull_weight_from_server = True
        if not requires_aggr:
            self.requires_aggr = False

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        return (
            f"Parameter (name={self._name}, shape={self._shape}, dtype={self._dtype}, "
            f"requires_grad={self._requires_grad})"
        )

    __repr__ = __str__


class ParameterTuple(tuple):
    """A tuple of Parameters with unique names (spec §5); optimizers clone their state from it."""

    def __new__(cls, iterable) -> ParameterTuple:
        try:
            data = tuple(iterable)
        except TypeError:
            raise TypeError(msg("ParameterTuple", "iterable", "an iterable of Parameters", iterable)) from None
        seen_ids: set[int] = set()
        names: set[str] = set()
        for x in data:
            if not isinstance(x, Parameter):
                raise TypeError(
                    "For 'ParameterTuple', the 'iterable' should hold only Parameters (ParameterTuple input should be 'Parameter' collection), "
                    f"but got a {type(x).__name__}: {x!r}."
                )
            if id(x) in seen_ids:
                continue
            if x.name in names:
                raise ValueError(
                    f"For 'ParameterTuple', the 'iterable' should hold Parameters with unique names: the value {x} , "
                    f"its name '{x.name}' already exists. Please set a unique name for the parameter."
                )
            seen_ids.add(id(x))
            names.add(x.name)
        return tuple.__new__(cls, data)

    def clone(self, prefix: str, init="same") -> ParameterTuple:
        """Clone every parameter, naming each clone ``prefix + '.' + name``."""
        if not isinstance(prefix, str):
            raise TypeError(f"For 'ParameterTuple.clone', the 'prefix' should be a str, but got {type(prefix).__name__}.")
        if not _PREFIX_RE.match(prefix):
            raise ValueError(
                "For 'ParameterTuple.clone', the 'prefix' should match the pattern "
                f"^\\w+[0-9a-zA-Z_.]*$ (letters, digits, '_' and '.'), but got {prefix!r}."
            )
        clones = []
        for x in self:
            c = x.clone(init)
            c._name = f"{prefix}.{x.name}"
            clones.append(c)
        return ParameterTuple(clones)

    def __reduce__(self):
        return (ParameterTuple, (tuple(self),))


def _window_of_index(index: tuple, full_shape: tuple) -> tuple:
    """(offsets, sizes) of the block that a tuple of slices (a shard index) selects."""
    offsets, sizes = [], []
    for sl, n in zip(index, full_shape):
        start, stop, _ = sl.indices(n)
        offsets.append(start)
        sizes.append(stop - start)
    return tuple(offsets), tuple(sizes)
