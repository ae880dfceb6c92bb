"""Automatic mixed precision: ``auto_mixed_precision``, ``custom_mixed_precision``, ``build_train_network``.

Levels, as in MindSpore 2.10 (the per-cell casting itself is :meth:`Cell.to_float`, see
:mod:`sporax.nn._mixed_precision`; Parameters stay float32 master weights):

- ``"O0"``: unchanged.
- ``"O1"``: cells of the white list (``get_white_list()``: Dense, Conv, ...) compute in the low
  precision type with their outputs cast back to float32; so do the white-listed Primitives
  (MatMul, Conv2D, ReLU, ...) however the network's code calls them: cell attributes, inline
  instances, or functional ops built on them (``ops.relu``, ``ops.conv2d``); ``x @ w``,
  ``ops.matmul`` and other non-Primitive paths stay float32, as in MindSpore (one mechanism,
  :mod:`sporax.ops._amp_scope`).
- ``"O2"``: the whole network in the low precision type except the black list
  (``get_black_list()``: BatchNorm, LayerNorm), which computes in float32 with a low-precision
  output; the network's outputs are cast to float32.
- ``"O3"``: the whole network in the low precision type, outputs cast to float32.

``"auto"`` (MindSpore's per-operator casting lists) is not supported and raises ValueError.

``build_train_network(network, optimizer, loss_fn=None, level='O0', boost_level='O0', **kwargs)``
builds the train step as MindSpore does: O2 casts to float16 keeping BatchNorm in float32 and
uses a ``DynamicLossScaleManager()`` (a ``TrainOneStepWithLossScaleCell``); O3 casts everything
to float16 without loss scaling; ``cast_model_type``, ``keep_batchnorm_fp32`` and
``loss_scale_manager`` override the level's choice.
"""

from __future__ import annotations

import importlib

from sporax.common import dtype as mstype
from sporax.common._validation import msg
from sporax.nn import _mixed_precision
from sporax.nn.cell import Cell
from sporax.ops import _amp_scope
from sporax.train.loss_scale_manager import DynamicLossScaleManager, LossScaleManager

__all__ = ["auto_mixed_precision", "custom_mixed_precision", "build_train_network", "get_white_list",
           "get_black_list"]

_LEVELS = ("O0", "O1", "O2", "O3", "auto")

# MindSpore's lists, by name: the ones sporax has are used (more appear as sporax grows).
_WHITE_NAMES = (("nn", ("Conv1d", "Conv2d", "Conv3d", "Conv1dTranspose", "Conv2dTranspose", "Conv3dTranspose",
                        "Dense", "LSTMCell", "RNNCell", "GRUCell")),
                ("ops", ("Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "Conv2DBackpropInput", "MatMul",
                         "BatchMatMul", "PReLU", "ReLU", "Ger")))
_BLACK_NAMES = (("nn", ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm")),)


def _resolve(names) -> list:
    out = []
    for module, members in names:
        mod = importlib.import_module(f"sporax.{module}")
        if module == "ops":
            mod = importlib.import_module("sporax.ops.operations")
        for n in members:
            cls = getattr(mod, n, None)
            if isinstance(cls, type) and cls not in out:  # aliases (BatchMatMul = MatMul) once
                out.append(cls)
    return out


def get_white_list() -> list:
    """A copy of the classes ``amp_level="O1"`` casts (those of MindSpore's list that sporax has)."""
    return _resolve(_WHITE_NAMES)


def get_black_list() -> list:
    """A copy of the cell classes ``amp_level="O2"`` keeps in float32."""
    return _resolve(_BLACK_NAMES)


class _AmpWrapper(Cell):
    """A cell around a backbone; attribute reads fall through to the backbone (MindSpore copies them)."""

    def __init__(self, backbone: Cell) -> None:
        super().__init__(auto_prefix=False)
        self._backbone = backbone

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            backbone = self.__dict__.get("_cells", {}).get("_backbone")
            if backbone is None:
                raise
            return getattr(backbone, name)


class _OutputTo32(_AmpWrapper):
    """Cast the network's floating outputs to float32."""

    def construct(self, *args, **kwargs):
        return _mixed_precision.cast_floating(self._backbone(*args, **kwargs), mstype.float32)


class _OutputTo16(_AmpWrapper):
    """Cast a (float32) cell's floating outputs to the network's low precision type."""

    def __init__(self, backbone: Cell, dtype=mstype.float16) -> None:
        super().__init__(backbone)
        self.dtype = dtype

    def construct(self, *args, **kwargs):
        return _mixed_precision.cast_floating(self._backbone(*args, **kwargs), self.dtype)


class _ScopedConstruct:
    """An O1 network's ``construct``: the original one inside the white-list operator scope."""

    def __init__(self, cell: Cell, inner, white: tuple, dtype) -> None:
        self.cell, self.inner, self.white, self.dtype = cell, inner, white, dtype

    def __call__(self, *args, **kwargs):
        inner = self.inner if self.inner is not None else type(self.cell).construct.__get__(self.cell)
        with _amp_scope.scope(self.white, self.dtype):
            return inner(*args, **kwargs)


def _install_op_scope(network: Cell, white_prims: tuple, dtype) -> None:
    """White-listed Primitives cast wherever ``network``'s construct calls them (see ``sporax.ops._amp_scope``)."""
    d = network.__dict__
    inner = d.get("construct")
    if isinstance(inner, _ScopedConstruct):
        inner = inner.inner
    d["construct"] = _ScopedConstruct(network, inner, white_prims, dtype)


def _check_dtype(dtype) -> None:
    if dtype not in (mstype.float16, mstype.bfloat16):
        raise ValueError(f"The dtype should be one of (mstype.float16, mstype.bfloat16), but got {dtype}.")


def _set_child(parent: Cell, name: str, child: Cell) -> None:
    parent.__dict__["_cells"][name] = child  # no renaming: the wrappers add no prefix


def _white_list_pass(cell: Cell, white: tuple, dtype) -> None:
    white_cells = tuple(c for c in white if issubclass(c, Cell))
    for name, sub in list(cell.name_cells().items()):
        if isinstance(sub, white_cells) and not _precision_set_by_user(sub):
            _set_child(cell, name, _OutputTo32(sub.to_float(dtype)))
        elif not _precision_set_by_user(sub):
            _white_list_pass(sub, white, dtype)


def _precision_set_by_user(cell: Cell) -> bool:
    return cell.__dict__.get("_mixed_precision_type") is not None


def _black_list_pass(network: Cell, black: tuple, dtype) -> Cell:
    network.to_float(dtype)
    for name, sub in list(network.name_cells().items()):
        if sub is network:
            continue
        if isinstance(sub, black):
            _set_child(network, name, _OutputTo16(sub.to_float(mstype.float32), dtype))
        else:
            _black_list_pass(sub, black, dtype)
    return network


def _o1(network: Cell, white: tuple, dtype) -> Cell:
    """O1 with ``white`` (Cell and Primitive classes): white cells cast at their boundary, white
    Primitives at every call inside the network."""
    if isinstance(network, tuple(c for c in white if issubclass(c, Cell))):
        return _OutputTo32(network.to_float(dtype))
    _white_list_pass(network, white, dtype)
    white_prims = tuple(c for c in white if not issubclass(c, Cell))
    if white_prims:
        _install_op_scope(network, white_prims, dtype)
    return network


def auto_mixed_precision(network, amp_level: str = "O0", dtype=mstype.float16):
    """``network`` prepared for mixed precision at ``amp_level`` (see the module docstring).

    ``dtype`` is the low precision type: ``mstype.float16`` (default) or ``mstype.bfloat16``.
    The cells are changed in place; O1/O2/O3 return a wrapper casting the outputs to float32.
    """
    if not isinstance(network, Cell):
        raise TypeError(f"For amp_level '{amp_level}', the network type should be Cell.")
    _check_dtype(dtype)
    if amp_level == "O0":
        return network
    if amp_level == "O1":
        network = _o1(network, tuple(get_white_list()), dtype)
    elif amp_level == "O2":
        network = _OutputTo32(_black_list_pass(network, tuple(get_black_list()), dtype))
    elif amp_level == "O3":
        network = _OutputTo32(network.to_float(dtype))
    elif amp_level == "auto":
        raise ValueError("amp_level 'auto' (MindSpore's per-operator casting lists) is not supported by sporax; "
                         "use 'O1', 'O2' or 'O3'.")
    else:
        raise ValueError(f"The amp level {amp_level} is not supported")
    network.__dict__["_amp_level"] = amp_level
    return network


def custom_mixed_precision(network, *, white_list=None, black_list=None, dtype=mstype.float16):
    """Mixed precision from your own list: a ``white_list`` of Cell/operator classes to cast (as O1),
    or a ``black_list`` of Cell classes to keep in float32 (as O2). Exactly one must be given."""
    from sporax.ops.primitive import Primitive

    if not isinstance(network, Cell):
        raise TypeError("The network type should be Cell.")
    if white_list is None and black_list is None:
        raise ValueError("For custom_mixed_precision, one of white_list and black_list must be provided.")
    if white_list is not None and black_list is not None:
        raise ValueError("For custom_mixed_precision, the white_list or black_list cannot be provided at the same "
                         "time, please provide one or the other.")
    _check_dtype(dtype)
    name, lst = ("white_list", white_list) if white_list is not None else ("black_list", black_list)
    if not isinstance(lst, list):
        raise TypeError(f"The type of {name} should be list, but got {type(lst)}")
    for elem in lst:
        if not isinstance(elem, type):
            raise TypeError(f"The element in {name} should be a class, but got {elem}")
        ok = issubclass(elem, Cell) or (name == "white_list" and issubclass(elem, Primitive))
        if not ok:
            allowed = "one of 'Cell' and 'Primitive'" if name == "white_list" else "one of 'Cell'"
            raise TypeError(f"The subclass of element in {name} should be {allowed}, but got {elem}")
    if white_list is not None:
        return _o1(network, tuple(white_list), dtype)
    return _OutputTo32(_black_list_pass(network, tuple(black_list), dtype))


# ---------------------------------------------------------------------------------- build_train_network
_CONFIG = {
    "O0": {"keep_batchnorm_fp32": False, "cast_model_type": mstype.float32, "loss_scale_manager": None},
    "O1": {"keep_batchnorm_fp32": False, "cast_model_type": mstype.float32, "loss_scale_manager": None},
    "O2": {"keep_batchnorm_fp32": True, "cast_model_type": mstype.float16, "loss_scale_manager": "dynamic"},
    "O3": {"keep_batchnorm_fp32": False, "cast_model_type": mstype.float16, "loss_scale_manager": None},
    "auto": {"keep_batchnorm_fp32": False, "cast_model_type": mstype.float32, "loss_scale_manager": None},
}


def _check_kwargs(kwargs: dict) -> None:
    for arg in kwargs:
        if arg not in ("cast_model_type", "keep_batchnorm_fp32", "loss_scale_manager"):
            raise ValueError(f"Unsupported arg '{arg}'")
    if "cast_model_type" in kwargs and kwargs["cast_model_type"] not in (mstype.float16, mstype.float32):
        raise TypeError(msg("build_train_network", "cast_model_type", "mstype.float16 or mstype.float32",
                            kwargs["cast_model_type"]))
    if "keep_batchnorm_fp32" in kwargs and not isinstance(kwargs["keep_batchnorm_fp32"], bool):
        raise TypeError(msg("build_train_network", "keep_batchnorm_fp32", "a bool", kwargs["keep_batchnorm_fp32"]))
    lsm = kwargs.get("loss_scale_manager")
    if lsm is not None and not isinstance(lsm, LossScaleManager):
        raise TypeError(msg("build_train_network", "loss_scale_manager", "a LossScaleManager or None",
                            type(lsm).__name__))


def check_level(level, boost_level) -> str:
    """Validate ``level``/``boost_level`` as MindSpore does (boost is accepted, not applied)."""
    if not isinstance(level, str):
        raise TypeError(f"The argument `level` must be a string in ['O0', 'O1', 'O2', 'O3', 'auto'],but got type "
                        f"{type(level)}.")
    if level not in _LEVELS:
        raise ValueError(msg("build_train_network", "level", f"one of {list(_LEVELS)}", level))
    if boost_level not in ("O0", "O1", "O2"):
        raise ValueError(msg("build_train_network", "boost_level", "one of ['O0', 'O1', 'O2']", boost_level))
    if level == "auto":
        raise ValueError("amp_level 'auto' (MindSpore's per-operator casting lists) is not supported by sporax; "
                         "use 'O1', 'O2' or 'O3'.")
    return level


def _keep_batchnorm_fp32(network: Cell) -> None:
    black = tuple(get_black_list())
    for name, sub in list(network.name_cells().items()):
        if sub is network:
            continue
        if isinstance(sub, black):
            _set_child(network, name, _OutputTo16(sub.to_float(mstype.float32)))
        else:
            _keep_batchnorm_fp32(sub)


def _process(network: Cell, config: dict, level: str) -> Cell:
    if config["cast_model_type"] == mstype.float16:
        network.to_float(mstype.float16)
        if config["keep_batchnorm_fp32"]:
            _keep_batchnorm_fp32(network)
    elif not config["keep_batchnorm_fp32"] and level == "O2":
        network.to_float(mstype.float16)
    elif config["cast_model_type"] == mstype.float32 and level in ("O2", "O3"):
        pass
    else:
        network = auto_mixed_precision(network, level)
    return network


class _WithLossCellFp32(Cell):
    """``loss_fn(float32(backbone(data)), float32(label))``: the loss of a low-precision network."""

    def __init__(self, backbone: Cell, loss_fn) -> None:
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data, label):
        out = _mixed_precision.cast_floating(self._backbone(data), mstype.float32)
        return self._loss_fn(out, _mixed_precision.cast_floating(label, mstype.float32))

    @property
    def backbone_network(self) -> Cell:
        return self._backbone


def _add_loss_network(network: Cell, loss_fn, cast_model_type) -> Cell:
    from sporax.nn.wrap import WithLossCell

    if not isinstance(loss_fn, Cell):
        raise TypeError(msg("build_train_network", "loss_fn", "a Cell", type(loss_fn).__name__))
    if cast_model_type in (mstype.float16, mstype.bfloat16) or network.__dict__.get("_amp_level") in ("O2", "O3"):
        return _WithLossCellFp32(network, loss_fn)
    return WithLossCell(network, loss_fn)


def build_train_network(network, optimizer, loss_fn=None, level: str = "O0", boost_level: str = "O0", **kwargs):
    """The mixed-precision train step for ``network`` (see the module docstring); in train mode."""
    from sporax.nn.loss_scale import TrainOneStepWithLossScaleCell
    from sporax.nn.optim.optimizer import Optimizer
    from sporax.nn.wrap import TrainOneStepCell

    if not isinstance(optimizer, Optimizer):
        raise TypeError(msg("build_train_network", "optimizer", "an nn.Optimizer", type(optimizer).__name__))
    if not isinstance(network, Cell):
        raise TypeError(msg("build_train_network", "network", "a Cell", type(network).__name__))
    level = check_level(level, boost_level)
    _check_kwargs(kwargs)
    config = dict(_CONFIG[level], **kwargs)
    if config["loss_scale_manager"] == "dynamic":
        config["loss_scale_manager"] = DynamicLossScaleManager()
    network = _process(network, config, level)
    if loss_fn:
        network = _add_loss_network(network, loss_fn, config["cast_model_type"])
    loss_scale = None
    manager = config["loss_scale_manager"]
    if manager is not None:
        loss_scale = manager.get_loss_scale()
        update_cell = manager.get_update_cell()
        if update_cell is not None:
            return TrainOneStepWithLossScaleCell(network, optimizer, scale_sense=update_cell).set_train()
    return TrainOneStepCell(network, optimizer, loss_scale).set_train()
