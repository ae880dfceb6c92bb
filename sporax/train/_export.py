"""``export(net, *inputs, file_name, file_format)`` and ``load(file_name)``: save a network's computation.

sporax writes one format, ``file_format="STABLEHLO"`` (file suffix ``.stablehlo``): JAX's
serialized export (``jax.export``), i.e. the network's forward computation lowered to StableHLO
with its calling convention, plus the parameter values. It runs without the Python code of the
network: :func:`load` gives an :class:`~sporax.nn.ExportedGraph` that ``nn.GraphCell`` runs
(on CPU, or on the platforms named by ``platforms=(...)`` at export time). The file is a zip
archive of ``sporax_export.json`` (names, shapes, dtypes), ``program.bin``
(``jax.export.Exported.serialize``, with first-order gradients so a GraphCell can be trained) and
one raw little-endian array per parameter; loading executes no code from the file.

MindSpore's ``"MINDIR"``, ``"AIR"`` and ``"ONNX"`` are refused with a ValueError: MINDIR and AIR
are MindSpore's own graph IRs for its runtime and Ascend tooling, and ONNX would need an
ONNX converter for StableHLO, none of which sporax (pure Python on JAX) has.

The network is exported in inference mode (``set_train(False)`` during the export, restored
afterwards), as MindSpore does. Parameters the computation writes are outputs of the program
and written back by ``GraphCell``.
"""

from __future__ import annotations

import json
import os
import zipfile

import jax
import jax.export  # noqa: F401  (a submodule that `import jax` loads only on recent JAX)
import jax.numpy as jnp
import numpy as np

from sporax.common import _binding
from sporax.common._random_state import key_state
from sporax.common.tensor import Tensor
from sporax.nn.cell import Cell
from sporax.nn.graph_cell import ExportedGraph

__all__ = ["export", "load", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = ("STABLEHLO",)
_SUFFIX = ".stablehlo"
_VERSION = 1
_MAGIC = "sporax-export"
_UNSUPPORTED = {
    "MINDIR": "MINDIR is MindSpore's own graph IR, executed by MindSpore's runtime",
    "AIR": "AIR is the Ascend graph IR of MindSpore's Ascend toolchain",
    "ONNX": "ONNX export would need a StableHLO-to-ONNX converter",
}


def _format_error(file_format) -> ValueError:
    why = _UNSUPPORTED.get(file_format if isinstance(file_format, str) else "")
    reason = f" ({why}, which sporax, pure Python on JAX, does not have)" if why else ""
    return ValueError(
        f"For 'export', 'file_format' must be one of {list(SUPPORTED_FORMATS)}, but got {file_format!r}{reason}. "
        "'STABLEHLO' writes JAX's serialized export (StableHLO), loadable with sporax.load() and nn.GraphCell."
    )


def _input_array(x, i: int):
    if isinstance(x, Tensor):
        return x._jax()
    if isinstance(x, (np.ndarray, jax.Array)):
        return jnp.asarray(x)
    raise TypeError(f"For 'export', the inputs should be Tensors (or numpy arrays), but input {i} is "
                    f"{type(x).__name__}.")


def _to_arrays(out):
    if isinstance(out, Tensor):
        return out._jax()
    if isinstance(out, (tuple, list)):
        return type(out)(_to_arrays(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_arrays(v) for k, v in out.items()}
    if isinstance(out, (jax.Array, np.ndarray, jax.core.Tracer)):
        return out
    raise TypeError(f"For 'export', the network should return Tensors (or tuples/lists/dicts of them), but got "
                    f"{type(out).__name__}.")


def export(net, *inputs, file_name, file_format="STABLEHLO", **kwargs) -> None:
    """Export ``net``'s computation on inputs shaped like ``inputs`` to ``file_name`` (``.stablehlo`` added).

    ``kwargs``: ``platforms`` (a tuple such as ``("cpu", "cuda")``; default the current
    backend). MindSpore-only options (``enc_key``, ``dataset`` preprocessing, ``obf_config``) are
    refused with ValueError.
    """
    if not isinstance(net, Cell):
        raise TypeError(f"For 'export', the 'net' should be a Cell, but got {type(net).__name__}.")
    if file_format not in SUPPORTED_FORMATS:
        raise _format_error(file_format)
    if not isinstance(file_name, (str, os.PathLike)) or not os.fspath(file_name):
        raise TypeError(f"For 'export', the 'file_name' should be a non-empty str, but got {file_name!r}.")
    platforms = kwargs.pop("platforms", None)
    for key in kwargs:
        if kwargs[key] is not None:
            raise ValueError(f"For 'export', the option {key!r} is not supported by sporax.")
    if not inputs:
        raise ValueError("For 'export', give at least one input Tensor (its shape and dtype are exported).")
    arrays = [_input_array(x, i) for i, x in enumerate(inputs)]
    path = os.path.realpath(os.fspath(file_name))
    if not path.endswith(_SUFFIX):
        path += _SUFFIX

    params, _ = _binding.walk_cell(net)
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"For 'export', the parameter names of the network must be unique to be exported, but got "
                         f"{sorted(n for n in set(names) if names.count(n) > 1)} more than once.")
    values = _binding.materialize(params)
    key = key_state._jax()
    written: list = []

    def program(param_vals, *xs):
        state = [*params, key_state]
        with _binding.bind(state, [*param_vals, key], kind="jit"):
            out = net(*[Tensor._wrap(a) for a in xs])
            new = _binding.read_values(params)
        if not written:
            written.extend(i for i, (n, v) in enumerate(zip(new, param_vals)) if n is not v)
        return _to_arrays(out), [new[i].astype(param_vals[i].dtype) for i in written]

    was_training = [c.training for _, c in net.cells_and_names()]
    net.set_train(False)
    try:
        jax.eval_shape(program, values, *arrays)  # finds the written parameters
        specs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in values]
        in_specs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in arrays]
        exported = jax.export.export(jax.jit(program), platforms=platforms)(specs, *in_specs)
    finally:
        for (_, c), t in zip(net.cells_and_names(), was_training):
            c.__dict__["training"] = t
    blob = exported.serialize(vjp_order=1)
    meta = {
        "magic": _MAGIC, "version": _VERSION, "format": "STABLEHLO", "network": type(net).__name__,
        "params": [{"name": p.name, "dtype": str(np.dtype(v.dtype)),
                    "shape": list(v.shape), "requires_grad": bool(p.requires_grad)} for p, v in zip(params, values)],
        "inputs": [{"shape": list(a.shape), "dtype": str(np.dtype(a.dtype))} for a in arrays],
        "written": list(written),
        "platforms": list(exported.platforms),
    }
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            z.writestr("sporax_export.json", json.dumps(meta, indent=1))
            z.writestr("program.bin", bytes(blob))
            for i, v in enumerate(values):
                z.writestr(f"params/{i}.bin", np.ascontiguousarray(np.asarray(v)).astype(
                    np.asarray(v).dtype.newbyteorder("<")).tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _np_dtype(name: str, file_name: str):
    try:
        return np.dtype(_DTYPES.get(name, name))
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"For 'load', '{file_name}' names an unknown dtype {name!r}.") from None


def _dtypes() -> dict:
    import ml_dtypes

    return {"bfloat16": ml_dtypes.bfloat16}


_DTYPES = _dtypes()


def load(file_name, **kwargs) -> ExportedGraph:
    """Load a graph written by :func:`export`; run it with ``nn.GraphCell(graph)`` (or call it).

    A damaged or foreign file raises ValueError naming the file; no code from the file is run
    (the program is StableHLO, deserialized by ``jax.export``). ``dec_key`` (decryption) is refused.
    """
    if kwargs.get("dec_key") is not None:
        raise ValueError("For 'load', encrypted graphs ('dec_key') are not supported by sporax.")
    if not isinstance(file_name, (str, os.PathLike)):
        raise TypeError(f"For 'load', the 'file_name' should be a str, but got {file_name!r}.")
    path = os.fspath(file_name)
    if not os.path.isfile(path):
        raise ValueError(f"For 'load', the file '{path}' does not exist.")
    if path.endswith(".mindir"):
        raise ValueError(f"For 'load', '{path}' is a MindIR file; sporax loads only graphs it exported in the "
                         f"'STABLEHLO' format ({_SUFFIX}).")
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("sporax_export.json"))
            if meta.get("magic") != _MAGIC or meta.get("version") != _VERSION:
                raise ValueError("not a sporax export of a known version")
            program = jax.export.deserialize(bytearray(z.read("program.bin")))
            parameters, requires_grad = {}, {}
            for i, spec in enumerate(meta["params"]):
                dtype = np.dtype(_np_dtype(spec["dtype"], path))
                raw = z.read(f"params/{i}.bin")
                shape = tuple(int(d) for d in spec["shape"])
                if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                    raise ValueError(f"parameter {spec['name']!r} holds {len(raw)} bytes, not {shape} of {dtype}")
                parameters[spec["name"]] = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
                requires_grad[spec["name"]] = bool(spec.get("requires_grad", True))
            inputs = [(tuple(s["shape"]), str(np.dtype(_np_dtype(s["dtype"], path)))) for s in meta["inputs"]]
            written = tuple(int(i) for i in meta["written"])
    except ValueError as e:
        if str(e).startswith("For 'load'"):
            raise
        raise ValueError(f"For 'load', '{path}' is not a valid sporax STABLEHLO export: {e}.") from None
    except (zipfile.BadZipFile, KeyError, TypeError, json.JSONDecodeError, RuntimeError, OSError) as e:
        raise ValueError(f"For 'load', '{path}' is not a valid sporax STABLEHLO export: {e}.") from None
    return ExportedGraph(program, parameters, requires_grad, written, inputs, path)
