"""Cell: keeps Parameters and sub-Cells as attributes and names parameters by their path.

A parameter's final name is its attribute path from the top-level cell (``dense.weight``):
attaching a child cell renames its parameters with the attribute as prefix, in
:meth:`Cell.update_parameters_name`, the one place names are derived (spec §6).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator

from sporax.common._binding import CellTable
from sporax.common._validation import check_bool, check_non_negative_int
from sporax.common.parameter import DEFAULT_NAME, Parameter, ParameterTuple
from sporax.common.tensor import Tensor

__all__ = ["Cell"]

_UPDATE_PREFIX_RE = re.compile(r"^\w*[0-9a-zA-Z_.\-]*$", re.ASCII)


class Cell:
    """The base of every network and layer: override ``construct``; call the cell to run it."""

    def __init__(self, auto_prefix: bool = True, flags: dict | None = None) -> None:
        d = self.__dict__
        d["_params"] = CellTable()
        d["_cells"] = CellTable()
        d["_id"] = 1
        d["exist_names"] = set()
        d["exist_objs"] = set()
        d["_auto_prefix"] = auto_prefix
        d["_param_prefix"] = ""
        d["training"] = False
        d["_flags"] = dict(flags or {})
        d["_jit_cache"] = {}
        d["parameter_layout_dict"] = {}  # name -> MindSpore layout tuple; drives sharded checkpoints
        d["_mixed_precision_type"] = None  # compute dtype set by to_float (sporax.nn._mixed_precision)

    # ------------------------------------------------------------------ attribute protocol
    def __getattr__(self, name: str):
        d = self.__dict__
        params = d.get("_params")
        if params is not None and name in params:
            return params[name]
        cells = d.get("_cells")
        if cells is not None and name in cells:
            return cells[name]
        raise AttributeError(f"The '{type(self).__name__}' object has no attribute '{name}'.")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_params")
        cells = d.get("_cells")
        if isinstance(value, Parameter):
            self._require_init(name)
            d.pop(name, None)
            self.insert_param_to_cell(name, value)
        elif isinstance(value, ParameterTuple):
            self._require_init(name)
            self._register_parameter_tuple(value)
            d[name] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Parameter) for v in value):
            self._require_init(name)
            self._check_parameter_sequence(value)
            d[name] = value
        elif isinstance(value, Cell):
            self._require_init(name)
            d.pop(name, None)
            if self._auto_prefix:
                value.update_parameters_name(name + ".")
            self.insert_child_to_cell(name, value)
        elif params is not None and name in params:
            if isinstance(value, Tensor):
                target = params[name]
                if target is None:
                    raise TypeError(f"For 'Cell', the parameter slot '{name}' is None; assign a Parameter to it.")
                target.set_data(value)
            elif value is None:
                params[name] = None
            else:
                raise TypeError(
                    f"For 'Cell', the attribute '{name}' is a Parameter; it can be set to a Tensor "
                    f"(routed to set_data), a Parameter or None, but got {type(value).__name__}."
                )
        elif cells is not None and name in cells:
            if value is not None:
                raise TypeError(
                    f"For 'Cell', the attribute '{name}' is a child Cell; it can be set to a Cell or None, "
                    f"but got {type(value).__name__}."
                )
            cells[name] = None
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if name in d.get("_params", ()):
            del d["_params"][name]
        elif name in d.get("_cells", ()):
            del d["_cells"][name]
        else:
            object.__delattr__(self, name)

    def _require_init(self, name: str) -> None:
        if "_params" not in self.__dict__:
            raise AttributeError(
                f"Can not assign '{name}' before Cell.__init__() is called: call super().__init__() first."
            )

    def _register_parameter_tuple(self, value: ParameterTuple) -> None:
        seen: set[int] = set()
        names: set[str] = set()
        distinct = []
        for item in value:
            if id(item) in seen:
                continue
            seen.add(id(item))
            if item.name == DEFAULT_NAME:
                item.name = f"Parameter${self._id}"
                self.__dict__["_id"] += 1
            if item.name in names:
                raise ValueError(f"The value {item} , its name '{item.name}' already exists.")
            names.add(item.name)
            distinct.append(item)
        for item in distinct:
            self.insert_param_to_cell(item.name, item, check_name_contain_dot=False)

    def _check_parameter_sequence(self, value) -> None:
        exist_names, exist_objs = self.exist_names, self.exist_objs
        for item in value:
            if id(item) in exist_objs:
                continue
            if item.name == DEFAULT_NAME:
                item.name = f"Parameter${self._id}"
                self.__dict__["_id"] += 1
            if item.name in exist_names:
                raise ValueError(
                    f"The value {value} , its name '{item.name}' already exists. Please set a unique name for the parameter."
                )
            exist_names.add(item.name)
            exist_objs.add(id(item))

    # ------------------------------------------------------------------ registration
    def insert_param_to_cell(self, param_name: str, param, check_name_contain_dot: bool = True) -> None:
        """Register ``param`` under ``param_name``; a default-named parameter takes that name."""
        if not param_name:
            raise KeyError(f"For 'insert_param_to_cell', the 'param_name' should not be empty, but got {param_name!r}.")
        if check_name_contain_dot and "." in param_name:
            raise KeyError(f"For 'insert_param_to_cell', the 'param_name' should not contain '.', but got {param_name!r}.")
        if "_params" not in self.__dict__:
            raise AttributeError("Can not insert a parameter before Cell.__init__() is called.")
        if hasattr(self, param_name) and param_name not in self._params:
            raise KeyError(f"For 'insert_param_to_cell', the attribute {param_name!r} already exists.")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"For 'insert_param_to_cell', the 'param' should be a Parameter or None, but got {type(param).__name__}."
            )
        if param is not None and param.name == DEFAULT_NAME:
            param.name = param_name
        self._params[param_name] = param

    def insert_child_to_cell(self, child_name: str, child_cell) -> None:
        """Register ``child_cell`` under ``child_name``."""
        if not isinstance(child_name, str):
            raise TypeError(f"For 'insert_child_to_cell', the 'child_name' should be a str, but got {child_name!r}.")
        if not child_name or "." in child_name:
            raise KeyError(f"For 'insert_child_to_cell', the 'child_name' should be non-empty without '.', got {child_name!r}.")
        if hasattr(self, child_name) and child_name not in self._cells:
            raise KeyError(f"For 'insert_child_to_cell', the attribute {child_name!r} already exists.")
        if child_cell is not None and not isinstance(child_cell, Cell):
            raise TypeError(
                f"For 'insert_child_to_cell', the 'child_cell' should be a Cell or None, but got {type(child_cell).__name__}."
            )
        self._cells[child_name] = child_cell

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        """Name every parameter ``prefix + path``: the single place parameter names are derived."""
        if not isinstance(prefix, str) or not _UPDATE_PREFIX_RE.match(prefix):
            raise ValueError(
                "For 'update_parameters_name', the 'prefix' should match ^\\w*[0-9a-zA-Z_.\\-]*$, "
                f"but got {prefix!r}."
            )
        self.__dict__["_param_prefix"] = prefix
        for path, p in self.parameters_and_names(expand=recurse):
            p.name = prefix + path
            if prefix:
                p.is_init = False

    # ------------------------------------------------------------------ iteration
    def cells_and_names(self, cells=None, name_prefix: str = "") -> Iterator[tuple[str, Cell]]:
        """``(path, cell)`` pairs in pre-order, each cell once; ``self`` first."""
        visited = set() if cells is None else cells
        if id(self) in visited:
            return
        visited.add(id(self))
        yield name_prefix, self
        for name, cell in self._cells.items():
            if cell is not None:
                yield from cell.cells_and_names(visited, f"{name_prefix}.{name}" if name_prefix else name)

    def parameters_and_names(self, name_prefix: str = "", expand: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(path, parameter)`` pairs: each cell's own parameters before its children's."""
        cells = self.cells_and_names(name_prefix=name_prefix) if expand else [(name_prefix, self)]
        seen: set[int] = set()
        for cell_path, cell in cells:
            for key, p in cell._params.items():
                if p is None:
                    continue
                if p.inited_param is not None:
                    p = p.inited_param
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{cell_path}.{key}" if cell_path else key), p

    def get_parameters(self, expand: bool = True) -> Iterator[Parameter]:
        for _, p in self.parameters_and_names(expand=expand):
            yield p

    def trainable_params(self, recurse: bool = True) -> list:
        return [p for p in self.get_parameters(expand=recurse) if p.requires_grad]

    def untrainable_params(self, recurse: bool = True) -> list:
        return [p for p in self.get_parameters(expand=recurse) if not p.requires_grad]

    def parameters_dict(self, recurse: bool = True) -> OrderedDict:
        return OrderedDict((p.name, p) for p in self.get_parameters(expand=recurse))

    def parameters_broadcast_dict(self, recurse: bool = True):
        d = OrderedDict((p.name, p) for p in self.get_parameters(expand=recurse) if not p.layerwise_parallel)
        return d or None

    def check_names(self) -> None:
        """ValueError if two parameters of this network share a name."""
        names: set[str] = set()
        for p in self.get_parameters():
            if p.name in names:
                raise ValueError(
                    f"The value {p} , its name '{p.name}' already exists. Please set a unique name for the parameter."
                )
            names.add(p.name)

    def name_cells(self) -> OrderedDict:
        """Direct children by attribute name."""
        return OrderedDict((k, c) for k, c in self._cells.items() if c is not None)

    def cells(self):
        return self.name_cells().values()

    def init_parameters_data(self, auto_parallel_mode: bool = False) -> dict:
        """Materialize every registered parameter; returns ``{old: new}`` (the same objects)."""
        replaced = {}
        for _, cell in self.cells_and_names():
            for p in cell._params.values():
                if p is not None and p not in replaced:
                    replaced[p] = p.init_data(None, set_sliced=p.sliced)
        return replaced

    # ------------------------------------------------------------------ flags over parameters
    def set_param_ps(self, recurse: bool = True, init_in_server: bool = False) -> None:
        for p in self.trainable_params(recurse):
            p.set_param_ps(init_in_server)

    def set_param_fl(self, push_to_server=False, pull_from_server=False, requires_aggr=True) -> None:
        for p in self.get_parameters():
            p.set_param_fl(push_to_server, pull_from_server, requires_aggr)

    def set_comm_fusion(self, fusion_type: int, recurse: bool = True) -> Cell:
        """Give every trainable parameter the communication fusion bucket ``fusion_type``."""
        check_non_negative_int(fusion_type, "fusion_type", "Cell.set_comm_fusion")
        for p in self.trainable_params(recurse):
            p.comm_fusion = fusion_type
        return self

    def recompute(self, **kwargs) -> Cell:
        """Set ``parallel_optimizer_comm_recompute`` on every trainable parameter."""
        if "parallel_optimizer_comm_recompute" in kwargs:
            flag = check_bool(kwargs["parallel_optimizer_comm_recompute"], "parallel_optimizer_comm_recompute", "Cell.recompute")
            for p in self.trainable_params():
                p.parallel_optimizer_comm_recompute = flag
        return self

    # ------------------------------------------------------------------ modes and flags
    def set_train(self, mode: bool = True) -> Cell:
        """Training mode for this cell and all its children (Dropout, BatchNorm read it)."""
        for _, cell in self.cells_and_names():
            cell.__dict__["training"] = bool(mode)
        return self

    def set_grad(self, requires_grad: bool = True) -> Cell:
        self.__dict__["requires_grad"] = requires_grad
        return self

    def add_flags(self, **flags) -> Cell:
        self._flags.update(flags)
        if "fp16" in flags or "fp32" in flags or "bf16" in flags:
            from sporax.nn import _mixed_precision

            _mixed_precision.apply_flags(self, flags)
        return self

    def to_float(self, dst_type) -> Cell:
        """Run this cell and all its children in ``dst_type`` (float16, bfloat16 or float32).

        Inputs and Parameters are cast on entry to each cell; the Parameters keep their own
        dtype (float32 master weights). See :mod:`sporax.nn._mixed_precision`.
        """
        from sporax.common import dtype as mstype

        if dst_type not in (mstype.float16, mstype.float32, mstype.bfloat16):
            raise ValueError(
                "For 'to_float', the argument 'dst_type' must be mstype.float32, mstype.float16 or "
                f"mstype.bfloat16, but got type: {type(dst_type)} and value: {dst_type}."
            )
        return self.add_flags_recursive(fp16=dst_type == mstype.float16, fp32=dst_type == mstype.float32,
                                        bf16=dst_type == mstype.bfloat16)

    def _mixed_precision_construct(self, *args, **kwargs):
        """``construct`` of a cell with a compute dtype: the class's construct around casts."""
        from sporax.nn import _mixed_precision

        return _mixed_precision.run_construct(self, args, kwargs)

    def add_flags_recursive(self, **flags) -> Cell:
        for _, cell in self.cells_and_names():
            cell.add_flags(**flags)
        return self

    def get_flags(self) -> dict:
        return self._flags

    @property
    def cls_name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ running
    def construct(self, *args, **kwargs):
        """The computation; subclasses define it (MindSpore 2.x: AttributeError when they do not)."""
        raise AttributeError(f"For '{type(self).__name__}', the method 'construct' is not defined.")

    def __call__(self, *args, **kwargs):
        """Run ``construct``; in GRAPH_MODE, outside any jit/grad trace, run it compiled.

        The compiled path (``sporax.common.api.run_cell``) caches one ``jax.jit`` entry per
        signature in ``self._jit_cache``; inside a trace the cell is part of the traced code.
        """
        call = self.__dict__["_jit_cache"].get("call")
        if call is None:  # first call: fetch the mode dispatcher once (no import on the hot path)
            from sporax.common.api import call_cell as call

            self.__dict__["_jit_cache"]["call"] = call
        return call(self, args, kwargs)

    def apply(self, fn) -> Cell:
        """Call ``fn(cell)`` on every child cell (recursively, children first) and then on this one."""
        for cell in self.name_cells().values():
            cell.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ printing
    def extend_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        """MindSpore 2.x's layout: ``Dense(input_channels=2, ...)``, children one per line."""
        extra = self.extend_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({k}): " + repr(c) for k, c in self.name_cells().items()]
        if not lines:
            return f"{self.cls_name}()"
        if len(lines) == 1 and not self.name_cells():
            return f"{self.cls_name}({lines[0]})"
        body = "\n".join("  " + line.replace("\n", "\n  ") for line in lines)
        return f"{self.cls_name}(\n{body}\n)"
