"""Checkpoints: ``save_checkpoint``, ``load_checkpoint``, ``load_param_into_net``, ``merge_checkpoints``.

A parameter's name is its key. Two formats: MindSpore's ``.ckpt`` (``_ckpt_format``; files
interoperate with MindSpore in both directions) and safetensors (``_safetensors_io``; chosen by
``format="safetensors"`` or a ``.safetensors`` file name).

Guarantees:

* **Atomic.** A save writes a hidden temporary file in the target directory, fsyncs it,
  renames it over the target and fsyncs the directory; a crash leaves the old file intact.
* **Bounded memory.** Saving streams one parameter at a time; a lazy parameter is generated
  window by window from its initializer (``Initializer.window``) and stays lazy.
* **Validated.** Loading parses and checks the whole file (lengths, declared shape vs stored
  bytes, layouts, and the CRC with ``crc_check=True``) before anything reaches the network,
  raises ValueError naming the file and the problem for any damaged or hostile file (a
  MemoryError naming the file and the bytes, before allocating, for a well-formed tensor
  larger than the memory available), and never runs code from the file. ``load_param_into_net`` checks every match
  (shape, dtype) before it changes any parameter.
* **Sharding-aware.** A network's ``parameter_layout_dict`` (name -> MindSpore layout tuple
  ``(dev_mat, tensor_map, slice_shape, ...)``) makes ``integrated_save=False`` write this
  rank's slices with their layouts, ``merge_checkpoints`` rebuild full tensors, and
  ``load_checkpoint(file, net)`` read only this rank's window of a full tensor (memory-mapped).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator

import numpy as np

from sporax.common import dtype as mstype
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, _readonly
from sporax.train import _ckpt_format as ckf
from sporax.train._ckpt_io import (
    Item,
    atomic_write,
    merge_checkpoints,
    open_checkpoint,
    resolve_format,
    tensor_item,
    write_items,
)
from sporax.train._transform import (
    load_distributed_checkpoint,
    merge_sliced_parameter,
    rank_list_for_transform,
    transform_checkpoint_by_rank,
    transform_checkpoints,
)

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_param_into_net",
    "merge_checkpoints",
    "async_ckpt_thread_status",
    "open_checkpoint",
    "build_searched_strategy",
    "merge_sliced_parameter",
    "load_distributed_checkpoint",
    "transform_checkpoints",
    "transform_checkpoint_by_rank",
    "rank_list_for_transform",
]

_log = logging.getLogger(__name__)


def build_searched_strategy(strategy_filename) -> dict:
    """Read a strategy file (MindSpore's protobuf, or JSON for a ``.json`` name) written by a
    sharded run (``strategy_ckpt_config={"save_file": ...}``): ``{parameter name: layout}``, each
    with MindSpore's ``ParallelLayouts`` fields (``dev_matrix[0].dim``, ``tensor_map[0].dim``,
    ``field``, ``opt_weight_shard_step``, ``opt_weight_shard_size``) and ``tensor_shape`` (the full
    shape, known from JSON files). ValueError naming the file for a missing or malformed one."""
    from sporax.parallel._strategy import build_searched_strategy as build

    return build(strategy_filename)


# ----------------------------------------------------------------------------- save
def _net_layouts(net) -> dict:
    layouts = getattr(net, "parameter_layout_dict", None)
    return dict(layouts) if layouts else {}


def _layout_window(layout, full_shape: tuple, rank: int) -> tuple[tuple, tuple]:
    """``(offsets, sizes)`` of ``rank``'s part of a ``full_shape`` tensor under a MindSpore
    layout tuple (with the optimizer-shard split when ``layout[5]`` is truthy)."""
    from sporax.parallel import _strategy
    from sporax.parallel.layout import Layout

    full_shape = tuple(full_shape)
    Layout.from_mindspore(tuple(layout)).window(full_shape, rank)  # the slice shape must match
    # the one rank-window rule, shared with strategy files: slice, then the optimizer shard
    # (the named group's size when it exists, else the whole replica group)
    offsets, sizes = _strategy.param_window(_strategy.layouts_from_tuple(tuple(layout), full_shape), full_shape, rank)
    return tuple(int(o) for o in offsets), tuple(int(s) for s in sizes)


def _slice_record(layout, full_shape: tuple, offsets: tuple, rank: int) -> dict:
    return {
        "full_shape": list(full_shape),
        "offsets": list(offsets),
        "rank": rank,
        "dev_mat": list(layout[0]),
        "tensor_map": [t if isinstance(t, int) else list(t) for t in layout[1]],
    }


def _process_item(name: str, p: Parameter, rank: int) -> Item | None:
    """In a run of several processes, a parameter held as a ``jax.Array`` across them: this
    process's part (the box its devices hold), or None when it is not one box."""
    from sporax.train._ckpt_io import _is_sharded, process_window

    value = p._value
    if not _is_sharded(value) or value.is_fully_addressable:
        return None
    win = process_window(value)
    if win is None:
        raise ValueError(
            f"For 'save_checkpoint', the devices of rank {rank} hold parts of '{name}' that are not one "
            "rectangular window; save it with integrated_save=True."
        )
    return tensor_item(name, p, {"full_shape": list(p.shape), "offsets": list(win[0]), "rank": rank}, win)


def _sharded_item(name: str, p: Parameter, layout, rank: int) -> Item:
    """This rank's slice of ``p`` with its layout record. A sliced ``p`` holds exactly that
    slice; otherwise ``p`` has the full shape and only the window is taken (generated alone
    for a lazy ``p``). Across processes, a global array gives this process's part."""
    from sporax.parallel.layout import Layout

    if (item := _process_item(name, p, rank)) is not None:
        return item

    if p.sliced and p.init is None:
        full = tuple(Layout.from_mindspore(tuple(layout)).full_shape)
        offsets, sizes = _layout_window(layout, full, rank)
        if tuple(sizes) != tuple(p.shape):
            raise ValueError(
                f"For 'save_checkpoint', parameter '{name}' has shape {tuple(p.shape)}, but its layout "
                f"{tuple(layout)} gives rank {rank} a slice of shape {sizes}."
            )
        return tensor_item(name, p, _slice_record(layout, full, offsets, rank))
    full = tuple(p.shape)
    offsets, sizes = _layout_window(layout, full, rank)
    return tensor_item(name, p, _slice_record(layout, full, offsets, rank), (offsets, sizes))


def _named_values(save_obj, choice_func) -> Iterator[tuple[str, object]]:
    from sporax.nn.cell import Cell

    if isinstance(save_obj, Cell):
        pairs = ((p.name, p) for _, p in save_obj.parameters_and_names())
    elif isinstance(save_obj, dict):
        pairs = iter(save_obj.items())
    elif isinstance(save_obj, (list, tuple)):
        pairs = (_list_pair(x) for x in save_obj)
    else:
        raise TypeError(
            "For 'save_checkpoint', the 'save_obj' should be a Cell, a list of Parameters or of "
            f"{{'name': ..., 'data': ...}} dicts, or a dict, but got {type(save_obj).__name__}."
        )
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError(f"For 'save_checkpoint', every name should be a str, but got {name!r}.")
        if choice_func is None or choice_func(name):
            yield name, value


def _list_pair(x) -> tuple[str, object]:
    if isinstance(x, Parameter):
        return x.name, x
    if isinstance(x, dict) and "name" in x and "data" in x:
        if not isinstance(x["data"], Tensor):
            raise TypeError(
                f"For 'save_checkpoint', the 'data' of '{x['name']}' should be a Tensor or "
                f"Parameter, but got {type(x['data']).__name__}."
            )
        return x["name"], x["data"]
    raise TypeError(
        "For 'save_checkpoint', a list 'save_obj' should hold Parameters or "
        f"{{'name': ..., 'data': ...}} dicts, but got {x!r}."
    )


def _plan(save_obj, integrated_save: bool, append_dict, choice_func) -> tuple[list[Item], dict[str, str]]:
    """Everything to write, as metadata plus deferred data: nothing is materialized here."""
    from sporax import communication

    layouts = _net_layouts(save_obj) if not isinstance(save_obj, (dict, list, tuple)) else {}
    rank = communication.get_rank() if layouts or not integrated_save else 0
    items: list[Item] = []
    strings: dict[str, str] = {}
    values = list(_named_values(save_obj, choice_func))
    for key, value in (append_dict or {}).items():
        if not isinstance(key, str) or isinstance(value, (list, tuple, dict)) or value is None:
            raise TypeError(
                "For 'save_checkpoint', 'append_dict' should map str to int, float, bool, str, "
                f"Parameter or Tensor, but got {key!r}: {value!r}."
            )
        values.append((key, value))
    for name, value in values:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"For 'save_checkpoint', the name {name!r} is not valid text (a lone surrogate); it cannot be stored."
            ) from None
        if isinstance(value, str):
            strings[name] = value
        elif isinstance(value, Parameter) and name in layouts and _holds_slice(value, integrated_save):
            if integrated_save:
                _log.warning(
                    "save_checkpoint: '%s' holds only rank %d's slice; it is saved with its layout "
                    "(merge_checkpoints builds the full tensor).",
                    name,
                    rank,
                )
            items.append(_sharded_item(name, value, layouts[name], rank))
        elif isinstance(value, Parameter) and not integrated_save and (win := _device_window(value, rank)) is not None:
            items.append(tensor_item(name, value, {"full_shape": list(value.shape), "offsets": list(win[0]),
                                                    "rank": rank}, win))
        elif isinstance(value, Tensor):
            items.append(tensor_item(name, value))
        elif isinstance(value, np.ndarray):
            items.append(tensor_item(name, Tensor._wrap(value)))  # no copy of the user's array
        elif isinstance(value, (bool, int, float, np.generic)):
            items.append(tensor_item(name, Tensor(value)))
        else:
            raise TypeError(
                f"For 'save_checkpoint', the value of '{name}' should be a Parameter, Tensor, "
                f"numpy array, number or str, but got {type(value).__name__}."
            )
    return items, strings


def _device_window(p: Parameter, rank: int) -> tuple | None:
    """``(offsets, sizes)`` of the device of ``rank`` in a parameter held as a ``jax.Array``
    split over one device per rank (the parallel optimizer's data-parallel shards: no layout
    entry), or None (not split, or not one device per rank: then the full tensor is saved)."""
    from sporax import communication
    from sporax.train._ckpt_io import _is_sharded, _shard_window

    value = p._value
    if _is_sharded(value) and not value.is_fully_addressable:
        item = _process_item(p.name, p, rank)
        return None if item is None else (tuple(item.layout["offsets"]), tuple(item.shape))
    if not _is_sharded(value) or len(value.sharding.device_set) != communication.get_group_size():
        return None
    devices = getattr(getattr(value.sharding, "mesh", None), "devices", None)
    if devices is None or not 0 <= rank < devices.size:
        return None
    device = devices.flat[rank]
    for shard in value.addressable_shards:
        if shard.device == device:
            win = _shard_window(shard, tuple(value.shape))
            return None if win[1] == tuple(value.shape) else win
    return None


def _holds_slice(p: Parameter, integrated_save: bool) -> bool:
    """Whether to save only this rank's slice of a parameter that has a layout: always when it
    holds just its slice; otherwise (lazy, or full such as a global array) unless
    ``integrated_save`` asks for the full tensor."""
    return (p.sliced and p.init is None) or not integrated_save


_async_lock = threading.Lock()
_async_state: dict = {"thread": None, "error": None}


def _wait_async_save() -> None:
    """Join a pending asynchronous save; re-raise its error here if it failed."""
    with _async_lock:
        thread, _async_state["thread"] = _async_state["thread"], None
    if thread is not None:
        thread.join()
    error, _async_state["error"] = _async_state["error"], None
    if error is not None:
        raise error


def async_ckpt_thread_status() -> bool:
    """True while an asynchronous ``save_checkpoint`` is still writing."""
    thread = _async_state["thread"]
    return thread is not None and thread.is_alive()


def save_checkpoint(
    save_obj,
    ckpt_file_name,
    integrated_save=True,
    async_save=False,
    append_dict=None,
    enc_key=None,
    enc_mode="AES-GCM",
    choice_func=None,
    crc_check=False,
    format="ckpt",  # noqa: A002 (MindSpore's argument name)
    **kwargs,
) -> None:
    """Save a Cell's parameters (or a list of Parameters / ``{"name", "data"}`` dicts, or a
    ``{name: value}`` dict) to ``ckpt_file_name``, atomically.

    ``format`` is ``"ckpt"`` (MindSpore's format) or ``"safetensors"``; a ``.safetensors``
    file name picks safetensors too, and a missing extension is appended, as in MindSpore.
    ``append_dict`` adds ``{name: int | float | bool | str | Tensor}`` entries. ``crc_check``
    adds a CRC32 that ``load_checkpoint(..., crc_check=True)`` verifies. The values saved are
    a snapshot taken at the call, while no compiled step runs (another thread may be training
    the network). ``async_save`` (True, ``"thread"`` or ``"process"``) writes that snapshot in a
    background thread; its arrays are kept out of the donation registry, so GRAPH_MODE steps can
    go on meanwhile. With a Cell whose
    ``parameter_layout_dict`` names a sliced or lazy parameter and ``integrated_save=False``,
    only this rank's slice is written, with its layout. MindSpore-only options (``enc_mode``,
    ``**kwargs`` such as ``remove_redundancy``) are accepted and ignored; ``enc_key`` is refused.

    >>> save_checkpoint(net, "net.ckpt")                                  # doctest: +SKIP
    """
    if enc_key is not None:
        raise ValueError("For 'save_checkpoint', encrypted checkpoints ('enc_key') are not supported by sporax.")
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"For 'save_checkpoint', the 'ckpt_file_name' should be a str, but got {ckpt_file_name!r}.")
    if not isinstance(integrated_save, bool) or not isinstance(crc_check, bool):
        raise TypeError("For 'save_checkpoint', 'integrated_save' and 'crc_check' should be bool.")
    if async_save not in (False, True, "thread", "process"):
        raise ValueError(
            f"For 'save_checkpoint', the 'async_save' should be a bool, 'thread' or 'process', but got {async_save!r}."
        )
    if append_dict is not None and not isinstance(append_dict, dict):
        raise TypeError(f"For 'save_checkpoint', the 'append_dict' should be a dict, but got {append_dict!r}.")
    path = os.path.realpath(os.fspath(ckpt_file_name))
    fmt = resolve_format(path, format, "save_checkpoint")
    if os.path.isdir(path):
        raise IsADirectoryError(f"For 'save_checkpoint', '{path}' is a directory; give a file name.")
    if not path.endswith("." + fmt):
        path += "." + fmt
    from sporax.common.api import _exec_lock

    with _exec_lock:  # a consistent snapshot: no compiled step (of another thread) runs meanwhile
        items, strings = _plan(save_obj, integrated_save, append_dict, choice_func)
    _wait_async_save()

    def run() -> None:
        atomic_write(path, lambda f: write_items(f, fmt, items, strings, crc_check))

    if not async_save:
        run()
        return

    def background() -> None:
        try:
            run()
        except BaseException as e:  # surfaced by the next save or wait
            _async_state["error"] = e

    thread = threading.Thread(target=background, name="sporax-async-ckpt")
    with _async_lock:
        _async_state["thread"] = thread
    thread.start()


# ----------------------------------------------------------------------------- load
def _check_prefix(prefix, arg: str):
    if prefix is None:
        return None
    prefix = (prefix,) if isinstance(prefix, str) else prefix
    if not isinstance(prefix, (list, tuple)) or not prefix or not all(isinstance(p, str) for p in prefix):
        raise TypeError(
            f"For 'load_checkpoint', the '{arg}' should be a non-empty str or a non-empty list/tuple "
            f"of non-empty str, but got {prefix!r}."
        )
    if "" in prefix:  # MindSpore 2.10: ValueError, "can't include ''"
        raise ValueError(f"For 'load_checkpoint', the '{arg}' can't include '' (an empty prefix), but got {prefix!r}.")
    return tuple(prefix)


def _selected(name: str, specify, filt, choice_func) -> bool:
    if specify is not None or filt is not None:  # the deprecated prefixes override choice_func
        return (specify is None or name.startswith(specify)) and not (filt is not None and name.startswith(filt))
    if choice_func is None:
        return True
    try:
        return bool(choice_func(name))
    except Exception as exc:  # MindSpore 2.10 reports any failure of choice_func as ValueError
        raise ValueError(
            f"For 'load_checkpoint', 'choice_func' failed on the parameter name {name!r}: {exc!r}."
        ) from exc


def _wrap_param(array: np.ndarray, name: str, path: str) -> Parameter:
    try:
        return Parameter(Tensor._wrap(_readonly(array)), name=name)
    except ValueError as e:  # e.g. a name longer than Parameter allows
        raise ValueError(f"Checkpoint file '{path}': parameter {name[:80]!r}{'...' if len(name) > 80 else ''} cannot be loaded: {e}") from None


def load_checkpoint(
    ckpt_file_name,
    net=None,
    strict_load=False,
    filter_prefix=None,
    dec_key=None,
    dec_mode="AES-GCM",
    specify_prefix=None,
    choice_func=None,
    crc_check=False,
    remove_redundancy=False,
    format="ckpt",  # noqa: A002 (MindSpore's argument name)
) -> dict:
    """Read a checkpoint into ``{name: Parameter}`` (``str`` for saved strings) and, with
    ``net``, load it into the network (see ``load_param_into_net``).

    Tensor bytes go from the page cache straight into each parameter's own array. A
    parameter of ``net`` listed in its ``parameter_layout_dict`` gets only this rank's window
    of a full tensor, read through a memory map. ``crc_check=True`` verifies the file's CRC32
    and makes a file without one an error; with ``crc_check=False`` (MindSpore's default and
    meaning) the CRC is not computed, but a ``.ckpt`` that sporax wrote with a CRC and that lost
    its trailer (truncated at a record boundary) is refused in any case. Filtering (MindSpore's
    rules): ``specify_prefix`` / ``filter_prefix`` (deprecated, and overriding
    ``choice_func``), else ``choice_func(name) -> bool``. An empty result raises ValueError.
    """
    if dec_key is not None:
        raise ValueError("For 'load_checkpoint', encrypted checkpoints ('dec_key') are not supported by sporax.")
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"For 'load_checkpoint', the 'ckpt_file_name' should be a str, but got {ckpt_file_name!r}.")
    specify = _check_prefix(specify_prefix, "specify_prefix")
    filt = _check_prefix(filter_prefix, "filter_prefix")
    windows = _net_windows(net) if net is not None else {}
    result: dict = {}
    if not isinstance(crc_check, bool):
        raise TypeError(f"For 'load_checkpoint', the 'crc_check' should be a bool, but got {crc_check!r}.")
    with open_checkpoint(ckpt_file_name, format, verify_crc=crc_check, require_crc=crc_check) as reader:
        path = reader.path
        for name, rec in reader.records.items():
            if not _selected(name, specify, filt, choice_func):
                continue
            if rec.dtype_name == ckf.STR_TYPE:
                result[name] = reader.read(name)
            elif name in windows and rec.layout is None and (window := windows[name](rec.shape)) is not None:
                result[name] = _wrap_param(reader.read_window(name, *window), name, path)
            else:
                result[name] = _wrap_param(reader.read(name), name, path)
        for name, s in getattr(reader, "strings", {}).items():
            if _selected(name, specify, filt, choice_func):
                result[name] = s
    if not result:
        raise ValueError(
            f"For 'load_checkpoint', nothing was loaded from '{ckpt_file_name}': check 'choice_func', "
            "'filter_prefix' and 'specify_prefix'."
        )
    if net is not None:
        load_param_into_net(net, result, strict_load)
    return result


def _net_windows(net) -> dict[str, Callable]:
    """For each sharded parameter of ``net`` (listed in its ``parameter_layout_dict`` and sliced
    or lazy): a function from a stored tensor's shape to this rank's ``(offsets, sizes)`` in
    it, or None when the stored tensor already is the slice."""
    from sporax import communication

    layouts = _net_layouts(net)
    if not layouts:
        return {}
    rank = communication.get_rank()

    def window_of(p: Parameter, layout) -> Callable:
        def window(stored_shape: tuple):
            stored_shape = tuple(stored_shape)
            if p.init is None and stored_shape == tuple(p.shape):
                return None  # a slice already
            if p.init is not None and stored_shape != tuple(p.shape):
                return None  # a lazy parameter's shape is the full shape; this is not it
            return _layout_window(layout, stored_shape, rank)

        return window

    return {
        p.name: window_of(p, layouts[p.name])
        for _, p in net.parameters_and_names()
        if p.name in layouts and (p.sliced or p.init is not None)
    }


_FLOATS = set(mstype.float_type)
_INTS = set(mstype.int_type)


def _prepare(param: Parameter, new, strict_load: bool, window) -> tuple[np.ndarray | None, str | None]:
    """The array ``param`` will take from ``new``, or an error message; changes nothing.

    ``window`` (sharded parameters only) cuts this rank's part out of a full tensor; a lazy
    sharded parameter, whose shape is still the full shape, takes that slice."""
    value = new._materialized()
    target = tuple(param.shape)
    if window is not None:
        try:
            cut = window(tuple(value.shape))
        except ValueError as e:
            return None, f"'{param.name}' cannot be sliced from shape {tuple(value.shape)}: {e}"
        if cut is not None:
            value = np.asarray(value)[tuple(slice(o, o + s) for o, s in zip(*cut))]
        if param.init is not None:
            target = _layout_window_sizes(window, target)
    shape = tuple(value.shape)
    if shape != target:
        extra = shape[len(target) :]
        if shape[: len(target)] == target and extra and all(d == 1 for d in extra):
            value = value.reshape(target)  # MindSpore accepts (N, C, 1, 1) for (N, C)
        else:
            return None, f"'{param.name}' has shape {target} in the 'net' but {shape} in the 'parameter_dict'"
    if new.dtype != param.dtype:
        pair = {new.dtype, param.dtype}
        if strict_load or not (pair <= _FLOATS or pair <= _INTS):
            why = " (strict_load=True allows no conversion)" if strict_load else ""
            return (
                None,
                f"'{param.name}' has dtype {param.dtype} in the 'net' but {new.dtype} in the 'parameter_dict'{why}",
            )
        value = np.asarray(value).astype(param.dtype.np_dtype)
    return value, None


def _layout_window_sizes(window: Callable, full_shape: tuple) -> tuple:
    cut = window(full_shape)
    return tuple(cut[1]) if cut is not None else full_shape


def load_param_into_net(net, parameter_dict, strict_load=False, remove_redundancy=False) -> tuple[list, list]:
    """Load ``parameter_dict`` into ``net`` by parameter name; return ``(param_not_load, ckpt_not_load)``:
    the names of ``net``'s parameters that got no value, and of the dict's entries that were not used.

    As in MindSpore 2.10: without ``strict_load`` a float (or int) value is cast to the
    parameter's float (int) dtype, and a parameter missing under its own name is looked up with
    a common prefix (``'net.' + name``); with ``strict_load`` neither happens. Any other dtype
    mismatch, or a shape mismatch (beyond trailing 1s), raises RuntimeError naming the
    parameters — checked for *all* parameters before *any* is changed (MindSpore stops half way).
    A sharded parameter (in ``net.parameter_layout_dict``) takes this rank's window of a full
    value. ``ckpt_not_load`` leaves out entries loaded through the prefix fallback (MindSpore
    keeps listing them). ``remove_redundancy`` is accepted for compatibility and ignored.
    """
    from sporax.nn.cell import Cell

    if not isinstance(net, Cell):
        raise TypeError(f"For 'load_param_into_net', the 'net' should be a Cell, but got {type(net).__name__}.")
    if not isinstance(parameter_dict, dict):
        raise TypeError(
            "For 'load_param_into_net', the 'parameter_dict' should be a dict, but got "
            f"{type(parameter_dict).__name__}."
        )
    for key, value in parameter_dict.items():
        if not isinstance(key, str) or not isinstance(value, (Parameter, str)):  # MindSpore 2.10: no plain Tensor
            raise TypeError(
                "For 'load_param_into_net', 'parameter_dict' should map str to Parameter (wrap a Tensor "
                f"value as Parameter(value, name=key)), but got {key!r}: {type(value).__name__}."
            )
    if not isinstance(strict_load, bool):
        raise TypeError(f"For 'load_param_into_net', the 'strict_load' should be a bool, but got {strict_load!r}.")
    params = [p for _, p in net.parameters_and_names()]
    windows = _net_windows(net)
    matches = {p.name: p.name for p in params if p.name in parameter_dict}
    missing = [p.name for p in params if p.name not in parameter_dict]
    while missing and not strict_load and (prefix := _common_prefix(missing, parameter_dict)) is not None:
        for name in list(missing):
            if prefix + name in parameter_dict:
                matches[name] = prefix + name
                missing.remove(name)
    plan, errors = [], []
    for p in params:
        key = matches.get(p.name)
        if key is None or isinstance(parameter_dict[key], str):
            continue
        value, error = _prepare(p, parameter_dict[key], strict_load, windows.get(p.name))
        if error:
            errors.append(error)
        else:
            plan.append((p, key, value))
    if errors:
        raise RuntimeError("For 'load_param_into_net', nothing was loaded because " + "; ".join(errors) + ".")
    for p, _, value in plan:
        arr = value if not isinstance(value, np.ndarray) else _readonly(value)
        sliced = p.sliced or tuple(arr.shape) != tuple(p.shape)
        p.set_data(Tensor._wrap(arr), slice_shape=sliced)
    used = {key for _, key, _ in plan}
    ckpt_not_load = [k for k in parameter_dict if k not in used]
    if missing:
        _log.warning("load_param_into_net: %d parameters of the net were not loaded: %s.", len(missing), missing)
    return missing, ckpt_not_load


def _common_prefix(missing: list[str], parameter_dict: dict) -> str | None:
    """The prefix that maps the first missing name with a suffix match onto the dict (MindSpore's
    fallback for a network wrapped or unwrapped between saving and loading)."""
    for name in missing:
        for key in parameter_dict:
            if key.endswith(name) and key != name:
                return key[: -len(name)]
    return None
