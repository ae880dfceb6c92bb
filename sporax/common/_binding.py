"""The one state-threading mechanism: bind Parameters to arrays, run, read back, restore.

JAX functions are pure and sporax Parameters are mutable. Every transformation (grad,
jit, parallel) joins them the same way: swap each Parameter's value for an array (a tracer
inside ``jax.jit``/``jax.grad``), run the user's code, read the values back (including any
``set_data``/``assign`` the code did), and restore the originals in ``finally``.

Frames. Each :func:`bind` pushes a frame of one of two kinds:

- ``"jit"``: the code is being *traced* for compilation. It runs once, so a write to a
  Parameter that the frame does not carry would happen once, at trace time, and be lost on
  every later call: :func:`check_write` (asked by ``Parameter._assign``) raises instead of
  going silently stale.
- ``"grad"``: the code runs once, now, under ``jax.vjp``. A write to a Parameter the frame
  does not carry is *adopted*: the frame records the Parameter, the write goes through, and
  the gradient operation returns the new value as an auxiliary output and stores it after
  the transformation (a BatchNorm's moving mean updated during the forward pass keeps
  working). :func:`adopted` lists them.

Besides Parameters, anything with the same value slot (``_value``, ``_shape``, ``_dtype`` and
a ``name``) can be bound: the random key state of :mod:`sporax.common._random_state` is
threaded this way.

State discovery. :func:`cell_parameters` lists the Parameters of a Cell (the state of a
compiled cell); :func:`discover` finds the Cells and Parameters a plain function reaches
through its arguments, closure and globals (the state of ``@jit`` functions).
"""

from __future__ import annotations

import contextlib
import operator
import types
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from functools import partial as functools_partial

import jax

__all__ = [
    "bind",
    "read_values",
    "check_write",
    "tracing",
    "active",
    "adopted",
    "materialize",
    "walk_cell",
    "walk_cell_cached",
    "cell_parameters",
    "attribute_fingerprint",
    "discover",
    "discover_with_cells",
    "prepare_constants",
    "bump_flags",
]

_KINDS = ("jit", "grad")


class _Frame:
    """One active binding: the ids it carries, its kind, and Parameters adopted by a grad frame."""

    __slots__ = ("ids", "kind", "adopted")

    def __init__(self, params: Sequence, kind: str) -> None:
        self.ids = set(map(id, params))
        self.kind = kind
        self.adopted: list = []  # (param, value, shape, dtype) saved before the first write


# Stack of active bindings, innermost last.
_frames: list[_Frame] = []


def tracing() -> bool:
    """True while any binding (jit or grad transformation) is active."""
    return bool(_frames)


def active() -> bool:
    """True while any binding is active (cells then run ``construct`` directly)."""
    return bool(_frames)


@contextlib.contextmanager
def bind(params: Sequence, arrays: Sequence, *, traced: bool = True, kind: str | None = None) -> Iterator[_Frame]:
    """Temporarily give each Parameter in ``params`` the matching value in ``arrays``.

    ``kind`` is ``"jit"`` (default; ``traced=False`` selects ``"grad"`` for backward
    compatibility) or ``"grad"``. Values written to the Parameters during the block can be
    collected with :func:`read_values` before the block exits; afterwards every Parameter
    (and every adopted one) holds its original value again, whatever happened inside.
    """
    if kind is None:
        kind = "jit" if traced else "grad"
    if kind not in _KINDS:
        raise ValueError(f"For 'bind', the 'kind' should be one of {list(_KINDS)}, but got {kind!r}.")
    if len(params) != len(arrays):
        raise ValueError(f"For 'bind', got {len(params)} parameters but {len(arrays)} arrays.")
    saved = [(p._value, p._shape, p._dtype) for p in params]
    frame = _Frame(params, kind)
    _frames.append(frame)
    try:
        for p, a in zip(params, arrays):
            p._value = a
            p._shape = tuple(a.shape)
        yield frame
    finally:
        _frames.pop()
        for p, (value, shape, dtype) in zip(params, saved):
            p._value, p._shape, p._dtype = value, shape, dtype
        for p, value, shape, dtype in reversed(frame.adopted):
            p._value, p._shape, p._dtype = value, shape, dtype


def read_values(params: Sequence) -> list:
    """The current (possibly traced) value of each bound Parameter."""
    return [p._value for p in params]


def adopted(frame: _Frame) -> list:
    """The Parameters a grad frame adopted (written without being bound), in write order."""
    return [entry[0] for entry in frame.adopted]


def check_write(param, new_value) -> None:
    """Raise if writing ``new_value`` into ``param`` now would be lost or leak a tracer.

    Inside a grad frame an unbound Parameter is adopted instead (see the module docstring).
    """
    if not _frames:
        if isinstance(new_value, jax.core.Tracer):
            raise RuntimeError(
                f"Cannot store a traced value into {_describe(param)} outside the jit/grad "
                "call that produced it: the value would leak out of the transformation. "
                "Return it from the function instead."
            )
        return
    frame = _frames[-1]
    if id(param) in frame.ids:
        return
    if frame.kind == "grad":
        frame.adopted.append((param, param._value, param._shape, param._dtype))
        frame.ids.add(id(param))
        return
    raise RuntimeError(
        f"{_describe(param)} was written inside a jit-compiled function (GRAPH_MODE or @jit) that "
        "does not carry it as state, so the write would happen once at trace time and be lost "
        "on every later call. Make it an attribute of the Cell being compiled (or reachable from "
        "the @jit function's arguments, closure or globals), or write it outside the compiled call."
    )


def _describe(param) -> str:
    return f"Parameter '{param.name}'"


# ---------------------------------------------------------------------------------- state lists
def materialize(params: Sequence) -> list:
    """Concrete jax arrays for ``params``: lazy ones are initialized, host data moved once."""
    return [p._jax() for p in params]


def walk_cell(cell) -> tuple[list, tuple]:
    """(every Parameter reachable from ``cell``, each once; the ``training`` flag of every cell).

    The same order as ``cell.parameters_and_names()`` (pre-order over cells, each cell's own
    parameters first), written as a tight loop because a compiled cell calls it on
    every step: the tree may have changed since the last one.
    """
    out: list = []
    flags: list = []
    seen: set = set()
    stack = [cell]
    cells_seen = {id(cell)}
    pop = stack.pop
    while stack:
        d = pop().__dict__
        flags.append(d["training"])
        for p in d["_params"].values():
            if p is not None:
                if p._inited_param is not None:
                    p = p._inited_param
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        children = d["_cells"]
        if children:
            for c in reversed(children.values()):
                if c is not None and id(c) not in cells_seen:
                    cells_seen.add(id(c))
                    stack.append(c)
    return out, tuple(flags)


_SCALARS = (bool, int, float, str, type(None))


def attribute_fingerprint(cell) -> tuple:
    """What the Python attributes of ``cell``'s tree look like now, for cache keys.

    Scalars (and tuples of scalars) by value; plain Tensors by the identity of their value
    array (values are never mutated in place, so a changed value is a new array); other
    objects by identity. A compiled function keyed on this is re-traced when user code
    changes an attribute that construct reads (``net.scale = 0.5``, ``t.assign_value(...)``).
    """
    from sporax.common.parameter import Parameter
    from sporax.common.tensor import Tensor

    out = []
    stack = [cell]
    seen = {id(cell)}
    while stack:
        c = stack.pop()
        for k, v in c.__dict__.items():
            if k in _CELL_INTERNALS:
                continue
            if isinstance(v, _SCALARS):
                out.append((k, v))
            elif isinstance(v, Tensor):
                if not isinstance(v, Parameter):
                    out.append((k, id(v._value)))
            elif isinstance(v, tuple) and all(isinstance(x, _SCALARS) for x in v):
                out.append((k, v))
            elif not _is_cell(v):
                out.append((k, id(v)))
        for ch in reversed(c.__dict__["_cells"].values()):
            if ch is not None and id(ch) not in seen:
                seen.add(id(ch))
                stack.append(ch)
    return tuple(out)


# Cell bookkeeping that is not user state (the parameter/child tables are walked separately).
_CELL_INTERNALS = frozenset({"_params", "_cells", "_id", "exist_names", "exist_objs", "_auto_prefix",
                             "_param_prefix", "training", "_flags", "_jit_cache", "requires_grad"})


# ---------------------------------------------------------------------------------- walk cache
# A compiled cell needs its parameter list on every call, and a walk of the cell tree is the
# largest Python cost of a small compiled step. The tree only changes through the cells'
# ``_params`` and ``_cells`` tables, which are ``CellTable``s that bump one structure
# version on every mutation; a cached walk stays valid while that version is unchanged.
# Training flags and ``_inited_param`` are read live on each call.


class CellTable(OrderedDict):
    """A Cell's parameter or child table; every mutation bumps ``CellTable.version``."""

    __slots__ = ()
    version = 0

    def _bump(self) -> None:
        CellTable.version += 1

    def __setitem__(self, key, value) -> None:
        self._bump()
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        self._bump()
        super().__delitem__(key)

    def clear(self) -> None:
        self._bump()
        super().clear()

    def pop(self, *args):
        self._bump()
        return super().pop(*args)

    def popitem(self, last: bool = True):
        self._bump()
        return super().popitem(last)

    def setdefault(self, key, default=None):
        self._bump()
        return super().setdefault(key, default)

    def update(self, *args, **kwargs) -> None:
        self._bump()
        super().update(*args, **kwargs)

    def move_to_end(self, key, last: bool = True) -> None:
        self._bump()
        super().move_to_end(key, last)

    def __ior__(self, other):
        self._bump()
        return super().__ior__(other)


_GET_TRAINING = operator.itemgetter("training")
_GET_PARAMS = operator.itemgetter("_params")
_GET_CELLS = operator.itemgetter("_cells")
_GET_INITED = operator.attrgetter("_inited_param")


def walk_cell_cached(cell) -> tuple[list, tuple]:
    """:func:`walk_cell`, cached on ``cell`` while no cell table of its tree has changed.

    Returns the same list object as long as the cache holds (callers may compare by identity).
    """
    store = cell.__dict__["_jit_cache"]
    rec = store.get(_WALK_KEY)
    if rec is not None:
        version, cells, dicts, pdicts, cdicts, raw, params = rec
        # dicts[0] is the top cell's own __dict__ unless this record was copied with the cell
        # (copy.deepcopy), whose copied record then describes the original's tables.
        if (version == CellTable.version and dicts[0] is cell.__dict__
                and all(map(operator.is_, map(_GET_PARAMS, dicts), pdicts))
                and all(map(operator.is_, map(_GET_CELLS, dicts), cdicts)) and not any(map(_GET_INITED, raw))):
            return params, tuple(map(_GET_TRAINING, dicts))
    params, flags = walk_cell(cell)
    cells = []
    dicts = []
    stack = [cell]
    seen = {id(cell)}
    while stack:  # the same cells, in the same order, as walk_cell
        c = stack.pop()
        cells.append(c)
        d = c.__dict__
        dicts.append(d)
        for ch in reversed(d["_cells"].values()):
            if ch is not None and id(ch) not in seen:
                seen.add(id(ch))
                stack.append(ch)
    pdicts = [d["_params"] for d in dicts]
    raw = [p for pd in pdicts for p in pd.values() if p is not None]
    store[_WALK_KEY] = (CellTable.version, cells, dicts, pdicts, [d["_cells"] for d in dicts], raw, params)
    return params, flags


_WALK_KEY = "walk"

# Bumped whenever a Parameter flag that changes what traced code computes (``requires_grad``:
# zero gradients for frozen weights) changes; every compiled call keys its cache on it, so a
# layer frozen or unfrozen between training phases is re-traced, never served stale.
flags_version = 0


def bump_flags() -> None:
    """Invalidate compiled calls that read Parameter flags at trace time (see ``flags_version``)."""
    global flags_version
    flags_version += 1


def cell_parameters(cell) -> list:
    """Every Parameter reachable from ``cell``, each once, in ``parameters_and_names`` order."""
    return walk_cell(cell)[0]


def _is_cell(obj) -> bool:
    cls = _CELL_CLASS[0]
    if cls is None:  # sporax.nn imports this module: resolve the class on first use
        from sporax.nn.cell import Cell

        cls = _CELL_CLASS[0] = Cell
    return isinstance(obj, cls)


_CELL_CLASS: list = [None]

_SKIP_TYPES = (types.ModuleType, type, str, bytes, int, float, complex, bool, type(None))


def discover(*roots) -> list:
    """Parameters reachable from ``roots``; see :func:`discover_with_cells`."""
    return discover_with_cells(*roots)[0]


def discover_with_cells(*roots, tensors: list | None = None) -> tuple[list, list]:
    """(Parameters, Cells) reachable from ``roots`` (arguments, functions, containers), each once.

    A Cell contributes all its parameters; a Parameter itself; a function the objects its code
    names in its globals (nested functions and lambdas included), its closure and defaults; a
    bound method its ``self``; an object with ``_sporax_state_roots()`` (gradient functions,
    ``@jit`` wrappers) what that returns; tuples, lists and dicts their items. Plain Tensors
    met on the way are appended to ``tensors`` when it is given.
    """
    from sporax.common.parameter import Parameter
    from sporax.common.tensor import Tensor

    out: list = []
    cells: list = []
    seen_params: set[int] = set()
    visited: set[int] = set()

    def add(p) -> None:
        if id(p) not in seen_params:
            seen_params.add(id(p))
            out.append(p)

    def visit(obj, depth: int) -> None:
        if depth > 12 or isinstance(obj, _SKIP_TYPES) or id(obj) in visited:
            return
        visited.add(id(obj))
        if isinstance(obj, Parameter):
            add(obj)
        elif isinstance(obj, Tensor):
            if tensors is not None:
                tensors.append(obj)
        elif _is_cell(obj):
            cells.append(obj)
            for p in walk_cell_cached(obj)[0]:
                add(p)
        elif hasattr(type(obj), "_sporax_state_roots"):
            for r in obj._sporax_state_roots():
                visit(r, depth + 1)
        elif isinstance(obj, types.MethodType):
            visit(obj.__self__, depth + 1)
            visit(obj.__func__, depth + 1)
        elif isinstance(obj, types.FunctionType):
            g = obj.__globals__
            for name in _code_names(obj.__code__):
                if name in g:
                    visit(g[name], depth + 1)
            for c in obj.__closure__ or ():
                try:
                    visit(c.cell_contents, depth + 1)
                except ValueError:  # an empty closure cell
                    pass
            for d in obj.__defaults__ or ():
                visit(d, depth + 1)
        elif isinstance(obj, (tuple, list)) and len(obj) <= 4096:
            for x in obj:
                visit(x, depth + 1)
        elif isinstance(obj, dict) and len(obj) <= 4096:
            for x in obj.values():
                visit(x, depth + 1)
        elif isinstance(obj, functools_partial):
            visit(obj.func, depth + 1)
            visit(obj.args, depth + 1)
            visit(obj.keywords, depth + 1)

    for r in roots:
        visit(r, 0)
    return out, cells


def prepare_constants(*roots) -> None:
    """Move the host data of plain Tensors reachable from ``roots`` (Cell attributes, globals) to the device.

    Called before a function is traced: a Tensor constant holding numpy data caches its
    device copy on first use, and that first use must not happen inside a trace (the cached
    value would be a tracer, leaking out of the trace).
    """
    from sporax.common.parameter import Parameter
    from sporax.common.tensor import Tensor

    def convert(v) -> None:
        if isinstance(v, Tensor) and not isinstance(v, Parameter):
            if v.init is None and not isinstance(v._value, jax.Array):
                v._jax()
        elif isinstance(v, (tuple, list)) and len(v) <= 4096:
            for x in v:
                convert(x)

    loose: list = []
    _, cells = discover_with_cells(*roots, tensors=loose)
    convert(loose)
    seen: set[int] = set()
    for root in cells:
        for _, c in root.cells_and_names():
            if id(c) in seen:
                continue
            seen.add(id(c))
            for v in c.__dict__.values():
                convert(v)


def _code_names(code: types.CodeType) -> list:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_code_names(const))
    return names

