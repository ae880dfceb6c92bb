"""Execution, auto-parallel, parameter-server and federated contexts: one resettable record.

``set_context`` / ``set_auto_parallel_context`` / ``set_ps_context`` / ``set_fl_context`` all
write the fields of one module-level ``_state`` object; ``_reset()`` (used by tests) puts
every field back to its default.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from sporax.common._validation import check_bool, check_int, check_str_in, msg

__all__ = [
    "GRAPH_MODE",
    "PYNATIVE_MODE",
    "ParallelMode",
    "set_context",
    "get_context",
    "set_auto_parallel_context",
    "get_auto_parallel_context",
    "reset_auto_parallel_context",
    "set_ps_context",
    "get_ps_context",
    "reset_ps_context",
    "set_fl_context",
    "get_fl_context",
    "reset_fl_context",
]

GRAPH_MODE = 0
PYNATIVE_MODE = 1


class ParallelMode:
    """The five parallel modes (spec §7.1)."""

    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    HYBRID_PARALLEL = "hybrid_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    AUTO_PARALLEL = "auto_parallel"
    MODE_LIST = [STAND_ALONE, DATA_PARALLEL, HYBRID_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL]


@dataclasses.dataclass
class _Execution:
    mode: int = PYNATIVE_MODE
    device_target: str = "CPU"
    device_id: int = 0
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _AutoParallel:
    parallel_mode: str = ParallelMode.STAND_ALONE
    device_num: int = 1
    global_rank: int = 0
    gradients_mean: bool = False
    enable_parallel_optimizer: bool = False
    parameter_broadcast: bool = False
    full_batch: bool = False
    search_mode: str = "dynamic_programming"
    pipeline_stages: int = 1
    grad_accumulation_step: int = 1
    strategy_ckpt_load_file: str = ""
    strategy_ckpt_save_file: str = ""
    strategy_ckpt_only_trainable_params: bool = True  # strategy_ckpt_config["only_trainable_params"]
    comm_fusion: Any = None
    parallel_optimizer_config: Any = None
    dataset_strategy: Any = "data_parallel"
    enable_alltoall: bool = False
    auto_parallel_search_mode: str = "dynamic_programming"


@dataclasses.dataclass
class _PS:
    enable_ps: bool = False
    scheduler_manage_port: int = 11202
    enable_ssl: bool = False
    client_password: str = ""
    server_password: str = ""
    config_file_path: str = ""
    # sporax's parameter-server options (sporax.ps): snapshot every N server steps (0: never)
    # into snapshot_path, and the bound on waiting for a server before a RuntimeError.
    snapshot_steps: int = 0
    snapshot_path: str = ""
    server_timeout: float = 60.0


@dataclasses.dataclass
class _FL:
    """Federated-learning settings (``sporax.fl`` reads them; spec §7.4)."""

    enable_fl: bool = False
    server_address: str = "127.0.0.1:9092"
    num_rounds: int = 3
    min_fit_clients: int = 1
    min_available_clients: int = 1
    fraction_fit: float = 1.0
    fraction_evaluate: float = 0.0
    round_timeout: float | None = None
    strategy: str = "fedavg"
    proximal_mu: float = 0.0
    server_learning_rate: float = 0.1
    max_message_bytes: int | None = None
    checkpoint_dir: str | None = None
    keep_checkpoint_max: int = 5
    resume: bool = False
    sample_seed: int = 0
    # MindSpore-only settings, stored for scripts that set them and otherwise unused
    server_mode: str = "FEDERATED_LEARNING"
    ms_role: str = "MS_SERVER"
    fl_name: str = ""
    worker_num: int = 0
    server_num: int = 0
    scheduler_ip: str = ""
    scheduler_port: int = 0
    fl_server_port: int = 0
    client_epoch_num: int = 1
    client_batch_size: int = 32
    client_learning_rate: float = 0.01


@dataclasses.dataclass
class _State:
    execution: _Execution = dataclasses.field(default_factory=_Execution)
    auto_parallel: _AutoParallel = dataclasses.field(default_factory=_AutoParallel)
    ps: _PS = dataclasses.field(default_factory=_PS)
    fl: _FL = dataclasses.field(default_factory=_FL)


_state = _State()

_EXECUTION_KEYS_STORED = {
    "save_graphs", "save_graphs_path", "max_call_depth", "jit_config", "enable_graph_kernel",
    "graph_kernel_flags", "runtime_num_threads", "inter_op_parallel_num", "pynative_synchronize",
    "memory_optimize_level", "max_device_memory", "mempool_block_size", "deterministic",
    "enable_compile_cache", "compile_cache_path", "print_file_path", "env_config_path",
    "precompile_only", "reserve_class_name_in_scope", "check_bprop", "enable_reduce_precision",
    "auto_tune_mode", "variable_memory_max_size", "enable_dump", "save_dump_path", "ascend_config",
    "gpu_config", "jit_syntax_level", "debug_level", "op_timeout", "aoe_tune_mode", "aoe_config",
    "disable_format_transform", "enable_sparse", "grad_for_scalar", "enable_profiling",
}
_DEVICE_TARGETS = ("CPU", "GPU", "Ascend")


def _reset() -> None:
    """Restore every context field to its default (tests call this around each test)."""
    global _state
    _state = _State()


def set_context(**kwargs) -> None:
    """Set execution options: ``mode`` (GRAPH_MODE or PYNATIVE_MODE), ``device_target``, ..."""
    ex = _state.execution
    updates = {}
    for key, value in kwargs.items():
        if key == "mode":
            if type(value) is not int or value not in (GRAPH_MODE, PYNATIVE_MODE):
                raise ValueError(msg("set_context", "mode", "GRAPH_MODE (0) or PYNATIVE_MODE (1)", value))
            updates[key] = value
        elif key == "device_target":
            if not isinstance(value, str):
                raise TypeError(msg("set_context", "device_target", "a str", value))
            updates[key] = check_str_in(value, _DEVICE_TARGETS, "device_target", "set_context")
        elif key == "device_id":
            check_int(value, "device_id", "set_context")
            if not 0 <= value < 4096:
                raise ValueError(msg("set_context", "device_id", "an int in [0, 4095]", value))
            updates[key] = value
        elif key == "enable_compile_cache":
            updates.setdefault("extra", {})[key] = check_bool(value, key, "set_context")
        elif key == "compile_cache_path":
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(msg("set_context", key, "a str (a directory)", value))
            updates.setdefault("extra", {})[key] = os.fspath(value)
        elif key in _EXECUTION_KEYS_STORED:
            updates.setdefault("extra", {})[key] = value
        else:
            raise ValueError(f"For 'set_context', the keyword argument {key!r} is not recognized.")
    for key, value in updates.items():
        if key == "extra":
            ex.extra.update(value)
        else:
            setattr(ex, key, value)
    extra = updates.get("extra", {})
    if "enable_compile_cache" in extra or "compile_cache_path" in extra:
        # sporax keeps JAX's persistent compilation cache on by default (sporax/_jax_setup.py).
        from sporax import _jax_setup

        _jax_setup.configure_from_context(extra.get("enable_compile_cache"), extra.get("compile_cache_path"))


def get_context(attr_key: str):
    """Get one execution option by name."""
    ex = _state.execution
    if attr_key in ("mode", "device_target", "device_id"):
        return getattr(ex, attr_key)
    if attr_key in ("enable_compile_cache", "compile_cache_path"):  # what is in effect
        from sporax import _jax_setup

        where = _jax_setup.compile_cache_dir()
        return where is not None if attr_key == "enable_compile_cache" else (where or "")
    if attr_key in _EXECUTION_KEYS_STORED:
        return ex.extra.get(attr_key)
    raise ValueError(f"For 'get_context', the key {attr_key!r} is not recognized.")


_AUTO_PARALLEL_FIELDS = {f.name for f in dataclasses.fields(_AutoParallel)} - {"strategy_ckpt_only_trainable_params"}
_AUTO_PARALLEL_FIELDS.add("strategy_ckpt_config")  # a view of the three strategy-file fields
_STRATEGY_CKPT_KEYS = {"load_file": "strategy_ckpt_load_file", "save_file": "strategy_ckpt_save_file",
                       "only_trainable_params": "strategy_ckpt_only_trainable_params"}


def _check_strategy_ckpt_config(value) -> dict:
    """MindSpore's rules: a dict of ``load_file`` (str), ``save_file`` (str), ``only_trainable_params`` (bool)."""
    where = "set_auto_parallel_context"
    if not isinstance(value, dict):
        raise TypeError(msg(where, "strategy_ckpt_config", "a dict", value))
    unknown = [k for k in value if k not in _STRATEGY_CKPT_KEYS]
    if unknown:
        raise ValueError(
            f"For '{where}', the 'strategy_ckpt_config' keys should be in {sorted(_STRATEGY_CKPT_KEYS)}, "
            f"but got unknown keys {unknown}."
        )
    for key, expected in (("load_file", str), ("save_file", str), ("only_trainable_params", bool)):
        if key in value and not isinstance(value[key], expected):
            raise TypeError(msg(where, f"strategy_ckpt_config['{key}']", f"a {expected.__name__}", value[key]))
    return {_STRATEGY_CKPT_KEYS[k]: v for k, v in value.items()}


def _check_auto_parallel(key: str, value):
    where = "set_auto_parallel_context"
    if key == "parallel_mode":
        if not isinstance(value, str):
            raise ValueError(msg(where, key, f"one of {ParallelMode.MODE_LIST}", value))
        return check_str_in(value, ParallelMode.MODE_LIST, key, where)
    if key == "device_num":
        check_int(value, key, where)
        if value < 1:
            raise ValueError(msg(where, key, "an int >= 1", value))
        return value
    if key == "global_rank":
        check_int(value, key, where)
        if not 0 <= value <= 4095:
            raise ValueError(msg(where, key, "an int in [0, 4095]", value))
        return value
    if key in ("gradients_mean", "enable_parallel_optimizer", "parameter_broadcast", "full_batch", "enable_alltoall"):
        return check_bool(value, key, where)
    if key == "comm_fusion":
        from sporax.parallel.plan import check_fusion_config

        return check_fusion_config(value, where)
    if key == "parallel_optimizer_config":
        from sporax.parallel.plan import check_optimizer_config

        return check_optimizer_config(value, _state.auto_parallel.parallel_optimizer_config)
    if key == "strategy_ckpt_config":
        return _check_strategy_ckpt_config(value)
    if key in ("strategy_ckpt_load_file", "strategy_ckpt_save_file"):
        if not isinstance(value, str):
            raise TypeError(msg(where, key, "a str", value))
        return value
    if key == "dataset_strategy":  # MindSpore's checks and messages
        if isinstance(value, str):
            if value not in ("full_batch", "data_parallel"):
                raise ValueError("For 'set_auto_parallel_context', the argument 'dataset_strategy' must be "
                                 f"'full_batch' or 'data_parallel', but got the value : {value}.")
            return value
        if not isinstance(value, tuple):
            raise TypeError("For 'set_auto_parallel_context', the argument 'dataset_strategy' must be str or tuple "
                            f"type, but got the type : {type(value)}.")
        for ele in value:
            if not isinstance(ele, tuple):
                raise TypeError("For 'set_auto_parallel_context', the element of argument 'dataset_strategy' must be "
                                f"tuple, but got the type : {type(ele)} .")
            for dim in ele:
                if not isinstance(dim, int) or isinstance(dim, bool):
                    raise TypeError("For 'set_auto_parallel_context', the element of argument 'dataset_strategy' "
                                    f"must be int type, but got the type : {type(dim)} .")
        return value
    if key in ("pipeline_stages", "grad_accumulation_step"):
        check_int(value, key, where)
        if value < 1:
            raise ValueError(msg(where, key, "an int >= 1", value))
        return value
    return value


def _check_devices(mode: str, device_num: int) -> None:
    """In a data-parallel mode, ``device_num`` must fit the devices (checked once JAX may be asked)."""
    if mode not in (ParallelMode.DATA_PARALLEL, ParallelMode.HYBRID_PARALLEL) or device_num == 1:
        return
    from sporax.parallel import _runtime

    if _runtime.cluster_pending():  # asking JAX now would start it before init(): checked at the first step
        return
    import jax

    _runtime.check_device_num(device_num, jax.device_count(), jax.process_count())


def set_auto_parallel_context(**kwargs) -> None:
    """Set auto-parallel options (spec §7.1); all are validated before any is written."""
    for key in kwargs:
        if key not in _AUTO_PARALLEL_FIELDS:
            raise ValueError(f"For 'set_auto_parallel_context', the keyword argument {key!r} is not recognized.")
    checked = {key: _check_auto_parallel(key, value) for key, value in kwargs.items()}
    if "device_num" in checked or "parallel_mode" in checked:
        _check_devices(checked.get("parallel_mode", _state.auto_parallel.parallel_mode),
                       checked.get("device_num", _state.auto_parallel.device_num))
    if isinstance(checked.get("dataset_strategy"), str):  # MindSpore: the string form sets full_batch
        checked.setdefault("full_batch", checked["dataset_strategy"] == "full_batch")
    for key, value in checked.items():
        for field, v in (value.items() if key == "strategy_ckpt_config" else [(key, value)]):
            setattr(_state.auto_parallel, field, v)


def get_auto_parallel_context(attr_key: str):
    """Get one auto-parallel option by name."""
    if attr_key not in _AUTO_PARALLEL_FIELDS:
        raise ValueError(f"For 'get_auto_parallel_context', the key {attr_key!r} is not recognized.")
    if attr_key == "strategy_ckpt_config":
        return {k: getattr(_state.auto_parallel, f) for k, f in _STRATEGY_CKPT_KEYS.items()}
    return getattr(_state.auto_parallel, attr_key)


def reset_auto_parallel_context() -> None:
    """Put every auto-parallel option back to its default."""
    _state.auto_parallel = _AutoParallel()


_PS_FIELDS = {f.name for f in dataclasses.fields(_PS)}
_PS_ROLES = ("MS_WORKER", "MS_PSERVER", "MS_SERVER", "MS_SCHED")


def _check_ps(key: str, value):
    where = "set_ps_context"
    if key in ("enable_ps", "enable_ssl"):
        return check_bool(value, key, where)
    if key in ("scheduler_manage_port", "snapshot_steps"):
        check_int(value, key, where)
        if value < 0:
            raise ValueError(msg(where, key, "an int >= 0", value))
        return value
    if key == "server_timeout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise (TypeError if not isinstance(value, (int, float)) or isinstance(value, bool) else ValueError)(
                msg(where, key, "a number of seconds > 0", value))
        return float(value)
    if not isinstance(value, str):
        raise TypeError(msg(where, key, "a str", value))
    return value


def set_ps_context(**kwargs) -> None:
    """Set parameter-server options (all validated before any is written).

    ``enable_ps=True`` turns the mode on. The role comes from ``MS_ROLE`` (``MS_WORKER``,
    ``MS_PSERVER``/``MS_SERVER``, ``MS_SCHED``); with no ``MS_ROLE`` this process is the
    worker of an embedded local Ray instance (see :mod:`sporax.ps`). sporax adds
    ``snapshot_steps`` / ``snapshot_path`` (server snapshots) and ``server_timeout``.
    """
    for key in kwargs:
        if key not in _PS_FIELDS:
            raise ValueError(
                f"For 'set_ps_context', the keyword argument {key!r} is not recognized; "
                f"the keys are {sorted(_PS_FIELDS)}."
            )
    checked = {key: _check_ps(key, value) for key, value in kwargs.items()}
    for key, value in checked.items():
        setattr(_state.ps, key, value)


def get_ps_context(attr_key: str):
    """Get one parameter-server option; ``'ms_role'`` gives the role, or 'MS_NOT_PS'."""
    if attr_key == "ms_role":
        return _ps_role() if _state.ps.enable_ps else "MS_NOT_PS"
    if attr_key not in _PS_FIELDS:
        raise ValueError(f"For 'get_ps_context', the key {attr_key!r} is not recognized.")
    return getattr(_state.ps, attr_key)


def reset_ps_context() -> None:
    """Put every parameter-server option back to its default."""
    _state.ps = _PS()


def _ps_role() -> str:
    """This process's role; with no ``MS_ROLE`` it is the worker of the embedded mode."""
    role = os.environ.get("MS_ROLE", "")
    if not role:
        return "MS_WORKER"
    return "MS_PSERVER" if role == "MS_SERVER" else role


def _ps_active() -> bool:
    """True when PS mode is enabled and this process has a PS role (spec §7.3; none = embedded worker)."""
    return _state.ps.enable_ps and os.environ.get("MS_ROLE", "") in _PS_ROLES + ("",)


_FL_FIELDS = {f.name for f in dataclasses.fields(_FL)}
_FL_ALIASES = {"fl_iteration_num": "num_rounds", "start_fl_job_threshold": "min_fit_clients"}  # MindSpore 1.x names
FL_STRATEGIES = ("fedavg", "fedprox", "fedadam")


def _check_fl(key: str, value):
    where = "set_fl_context"
    if key in ("enable_fl", "resume"):
        return check_bool(value, key, where)
    if key in ("num_rounds", "min_fit_clients", "min_available_clients", "keep_checkpoint_max"):
        check_int(value, key, where)
        if value < 1:
            raise ValueError(msg(where, key, "an int >= 1", value))
        return value
    if key in ("fraction_fit", "fraction_evaluate"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(msg(where, key, "a float in [0, 1]", value))
        return float(value)
    if key == "round_timeout":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(msg(where, key, "None or a number of seconds > 0", value))
        return float(value)
    if key in ("proximal_mu", "server_learning_rate", "client_learning_rate"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(msg(where, key, "a float >= 0", value))
        return float(value)
    if key == "strategy":
        if not isinstance(value, str):
            raise TypeError(msg(where, key, f"one of {list(FL_STRATEGIES)}", value))
        return check_str_in(value.lower(), FL_STRATEGIES, key, where)
    if key == "max_message_bytes":
        if value is None:
            return None
        check_int(value, key, where)
        if value < 1:
            raise ValueError(msg(where, key, "None or an int >= 1", value))
        return value
    if key == "server_address":
        host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
        if not host or not port.isdigit():
            raise ValueError(msg(where, key, "a 'host:port' str", value))
        return value
    if key == "checkpoint_dir":
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(msg(where, key, "None or a directory path", value))
        return None if value is None else os.fspath(value)
    if key in ("sample_seed", "worker_num", "server_num", "scheduler_port", "fl_server_port", "client_epoch_num",
               "client_batch_size"):
        return check_int(value, key, where)
    if not isinstance(value, str):
        raise TypeError(msg(where, key, "a str", value))
    return value


def set_fl_context(**kwargs) -> None:
    """Set federated-learning options, read by ``sporax.fl`` (all checked before any is written).

    Keys: ``server_address`` ('host:port' of the SuperLink Fleet API), ``num_rounds``,
    ``min_fit_clients`` (clients per round at least), ``min_available_clients``,
    ``fraction_fit`` / ``fraction_evaluate``, ``round_timeout`` (seconds or None),
    ``strategy`` ('fedavg', 'fedprox', 'fedadam'), ``proximal_mu`` (FedProx),
    ``server_learning_rate`` (FedAdam's eta), ``max_message_bytes`` (a client reply larger
    than this is rejected; None: the size of the pushed parameters plus headers),
    ``checkpoint_dir``, ``keep_checkpoint_max``, ``resume``, ``sample_seed``; MindSpore's
    ``enable_fl``, ``server_mode``, ``ms_role``, ... are stored. ``fl_iteration_num`` and
    ``start_fl_job_threshold`` (MindSpore 1.x) mean ``num_rounds`` and ``min_fit_clients``.
    """
    checked = {}
    for key, value in kwargs.items():
        field = _FL_ALIASES.get(key, key)
        if field not in _FL_FIELDS:
            raise ValueError(
                f"For 'set_fl_context', the keyword argument {key!r} is not recognized; "
                f"valid keys are {sorted(_FL_FIELDS | set(_FL_ALIASES))}."
            )
        checked[field] = _check_fl(field, value)
    for key, value in checked.items():
        setattr(_state.fl, key, value)


def get_fl_context(attr_key: str):
    """Get one federated-learning option by name."""
    field = _FL_ALIASES.get(attr_key, attr_key)
    if field not in _FL_FIELDS:
        raise ValueError(f"For 'get_fl_context', the key {attr_key!r} is not recognized.")
    return getattr(_state.fl, field)


def reset_fl_context() -> None:
    """Put every federated-learning option back to its default."""
    _state.fl = _FL()


def _parallel_mode() -> str:
    return _state.auto_parallel.parallel_mode
