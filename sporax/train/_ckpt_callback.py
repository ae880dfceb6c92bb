"""``ModelCheckpoint`` and ``CheckpointConfig``: save the train network during ``Model.train``.

File names and rotation follow MindSpore 2.10 (checked against it, see
``tests/train/golden/make_ckpt_names.py``):

- a checkpoint is ``{prefix}-{epoch}_{step in epoch}.ckpt`` in ``directory`` (``.safetensors``
  with ``format="safetensors"``); a callable ``prefix`` names the file ``{prefix(cb_params)}.ckpt``;
- when files of the prefix already exist in the directory at construction, the prefix becomes
  ``{prefix}_{N}`` with N one more than the largest suffix present (``net_1-1_4.ckpt``);
- before each save, once ``keep_checkpoint_max`` files of the prefix exist, the oldest (by
  modification time) is removed; with ``keep_checkpoint_per_n_minutes`` instead, files
  written in the last N minutes are thinned to one;
- a save happens every ``save_checkpoint_steps`` steps (or every ``save_checkpoint_seconds``
  seconds when steps are 0), and once more at the end of training unless the last step was
  just saved.

The saving itself is :func:`sporax.train.serialization.save_checkpoint` (atomic, async
optional). MindSpore also writes ``{prefix}-graph.meta`` (its compiled graph) in GRAPH_MODE;
sporax has no such graph file and does not write one.
"""

from __future__ import annotations

import os
import stat
import time

from sporax.common._validation import msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.train.callback import Callback, RunContext

__all__ = ["CheckpointConfig", "ModelCheckpoint"]

_INFO_LIST = ("epoch_num", "step_num")
_FORMATS = ("ckpt", "safetensors")


def _non_negative_int(value, arg: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(msg("CheckpointConfig", arg, "an int >= 0", value))
    return value


class CheckpointConfig:
    """When and how ``ModelCheckpoint`` saves (MindSpore's arguments and defaults).

    ``save_checkpoint_steps`` (1) wins over ``save_checkpoint_seconds`` (0);
    ``keep_checkpoint_max`` (5) wins over ``keep_checkpoint_per_n_minutes`` (0); when both
    keep arguments are 0, one file is kept. ``append_info`` is a list of ``"epoch_num"``,
    ``"step_num"`` and at most one ``{name: int | float | bool | str | Tensor}`` dict, written
    into every checkpoint. ``saved_network`` saves that Cell instead of the train network.
    ``integrated_save``, ``async_save``, ``crc_check``, ``format`` and ``remove_redundancy`` go
    to ``save_checkpoint``. ``exception_save`` (MindSpore's save on a training exception) and
    ``enc_key`` (encryption) are not supported by sporax and raise ValueError when set.
    """

    def __init__(
        self,
        save_checkpoint_steps: int = 1,
        save_checkpoint_seconds: int = 0,
        keep_checkpoint_max: int = 5,
        keep_checkpoint_per_n_minutes: int = 0,
        integrated_save: bool = True,
        async_save=False,
        saved_network=None,
        append_info=None,
        enc_key=None,
        enc_mode: str = "AES-GCM",
        exception_save: bool = False,
        crc_check: bool = False,
        remove_redundancy: bool = False,
        format: str = "ckpt",  # noqa: A002 (MindSpore's argument name)
        **kwargs,
    ) -> None:
        from sporax.nn.cell import Cell

        save_checkpoint_steps = _non_negative_int(save_checkpoint_steps, "save_checkpoint_steps")
        save_checkpoint_seconds = _non_negative_int(save_checkpoint_seconds, "save_checkpoint_seconds")
        keep_checkpoint_max = _non_negative_int(keep_checkpoint_max, "keep_checkpoint_max")
        keep_checkpoint_per_n_minutes = _non_negative_int(keep_checkpoint_per_n_minutes, "keep_checkpoint_per_n_minutes")
        if saved_network is not None and not isinstance(saved_network, Cell):
            raise TypeError(msg("CheckpointConfig", "saved_network", "None or a Cell", type(saved_network).__name__))
        if not (save_checkpoint_steps or save_checkpoint_seconds or keep_checkpoint_max or keep_checkpoint_per_n_minutes):
            raise ValueError(
                "For 'CheckpointConfig', the input arguments 'save_checkpoint_steps', 'save_checkpoint_seconds', "
                "'keep_checkpoint_max' and 'keep_checkpoint_per_n_minutes' can't be all None or 0."
            )
        for arg, value in (("integrated_save", integrated_save), ("exception_save", exception_save),
                           ("crc_check", crc_check), ("remove_redundancy", remove_redundancy)):
            if not isinstance(value, bool):
                raise TypeError(msg("CheckpointConfig", arg, "a bool", value))
        if async_save not in (False, True, "thread", "process"):
            raise ValueError(msg("CheckpointConfig", "async_save", "a bool, 'thread' or 'process'", async_save))
        if format not in _FORMATS:
            raise ValueError(msg("CheckpointConfig", "format", f"one of {list(_FORMATS)}", format))
        if not isinstance(enc_mode, str):
            raise TypeError(msg("CheckpointConfig", "enc_mode", "a str", enc_mode))
        if enc_key is not None:
            raise ValueError("For 'CheckpointConfig', encrypted checkpoints ('enc_key') are not supported by sporax.")
        if exception_save:
            raise ValueError(
                "For 'CheckpointConfig', 'exception_save=True' (MindSpore's checkpoint on a training exception) is "
                "not supported by sporax; save with a ModelCheckpoint step policy instead."
            )
        if format == "safetensors" and crc_check:
            raise ValueError("For 'save_checkpoint', when format is 'safetensors', other param must be default.")
        self._save_checkpoint_steps = save_checkpoint_steps
        self._save_checkpoint_seconds = None if save_checkpoint_steps else save_checkpoint_seconds
        self._keep_checkpoint_max = keep_checkpoint_max
        self._keep_checkpoint_per_n_minutes = keep_checkpoint_per_n_minutes
        if keep_checkpoint_max:
            self._keep_checkpoint_per_n_minutes = None
        elif not keep_checkpoint_per_n_minutes:
            self._keep_checkpoint_max = 1
        self._integrated_save = integrated_save
        self._async_save = async_save
        self._saved_network = saved_network
        self._append_dict = self._handle_append_info(append_info)
        self._enc_key = enc_key
        self._enc_mode = enc_mode
        self.exception_save = exception_save
        self._crc_check = crc_check
        self.remove_redundancy = remove_redundancy
        self._format = format
        self._kwargs = dict(kwargs)

    save_checkpoint_steps = property(lambda self: self._save_checkpoint_steps)
    save_checkpoint_seconds = property(lambda self: self._save_checkpoint_seconds)
    keep_checkpoint_max = property(lambda self: self._keep_checkpoint_max)
    keep_checkpoint_per_n_minutes = property(lambda self: self._keep_checkpoint_per_n_minutes)
    integrated_save = property(lambda self: self._integrated_save)
    async_save = property(lambda self: self._async_save)
    saved_network = property(lambda self: self._saved_network)
    append_dict = property(lambda self: self._append_dict)
    enc_key = property(lambda self: self._enc_key)
    enc_mode = property(lambda self: self._enc_mode)
    crc_check = property(lambda self: self._crc_check)
    format = property(lambda self: self._format)  # noqa: A003

    def get_checkpoint_policy(self) -> dict:
        """The save/keep policy as a dict (MindSpore's keys)."""
        return {
            "save_checkpoint_steps": self.save_checkpoint_steps,
            "save_checkpoint_seconds": self.save_checkpoint_seconds,
            "keep_checkpoint_max": self.keep_checkpoint_max,
            "keep_checkpoint_per_n_minutes": self.keep_checkpoint_per_n_minutes,
            "saved_network": self.saved_network,
        }

    @staticmethod
    def _handle_append_info(append_info):
        if append_info is None or append_info == []:
            return None
        if not isinstance(append_info, list):
            raise TypeError(msg("CheckpointConfig", "append_info", "a list", type(append_info).__name__))
        out: dict = {}
        for name in _INFO_LIST:
            if name in append_info:
                out[name] = 0
        dicts = 0
        for element in append_info:
            if isinstance(element, str):
                if element not in _INFO_LIST:
                    raise ValueError(msg("CheckpointConfig", "append_info", f"str elements in {list(_INFO_LIST)}",
                                         element))
            elif isinstance(element, dict):
                dicts += 1
                if dicts > 1:
                    raise TypeError("For 'CheckpointConfig', the element of 'append_info' must has only one dict.")
                for key, value in element.items():
                    if not isinstance(key, str) or not isinstance(value, (int, float, bool, str, Parameter, Tensor)):
                        raise TypeError(
                            "For 'CheckpointConfig', the key type of the dict 'append_info' must be string, the value "
                            "type must be int, float, bool, str or Tensor, but got key type "
                            f"{type(key).__name__}, value type {type(value).__name__}."
                        )
                    out[key] = value
            else:
                raise TypeError(msg("CheckpointConfig", "append_info", "a list of str or dict elements",
                                    f"an element of type {type(element).__name__}"))
        return out


def _suffixed_prefix(directory: str, prefix: str) -> str:
    """``prefix`` or ``prefix_N`` so that new files do not mix with existing ones (MindSpore's rule)."""
    suffix = 0
    n = len(prefix)
    for filename in os.listdir(directory):
        ext = os.path.splitext(filename)[1]
        if ext not in (".ckpt", ".safetensors") or filename.endswith("_breakpoint.ckpt"):
            continue
        if not filename.startswith(prefix) or len(filename) <= n or filename[n].isalpha():
            continue
        index = filename[n:].find("-")
        if index == 0:
            suffix = max(suffix, 1)
        elif index != -1:
            num = filename[n + 1:n + index]
            if num.isdigit():
                suffix = max(suffix, int(num) + 1)
    return f"{prefix}_{suffix}" if suffix else prefix


class _CheckpointFiles:
    """The files of one prefix in a directory, oldest first (MindSpore's CheckpointManager)."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self.files: list[str] = []
        self._order: dict[str, int] = {}  # our own save order breaks modification-time ties

    def note_saved(self, path: str) -> None:
        self._order[path] = len(self._order)

    def update(self, directory: str, prefix: str) -> None:
        ext = "." + self._fmt
        files = []
        for filename in os.listdir(directory):
            if filename.endswith(ext) and filename.startswith(prefix + "-"):
                mid = filename[len(prefix):-len(ext)]
                if not any(c.isalpha() for c in mid):
                    files.append(os.path.join(directory, filename))
        self.files = sorted(files, key=self._age)

    def _age(self, path: str):
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = 0
        return mtime, self._order.get(path, -1)

    def remove(self, path: str) -> None:
        try:
            os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
            os.remove(path)
        except OSError:
            pass
        if path in self.files:
            self.files.remove(path)

    def remove_oldest(self) -> None:
        if self.files:
            self.remove(self.files[0])

    def keep_one_per_minutes(self, minutes: int, now: float) -> None:
        recent = [f for f in self.files if now - os.path.getmtime(f) < 60 * minutes]
        if not recent:
            return
        oldest = min(recent, key=self._age)
        for f in recent:
            if f != oldest:
                self.remove(f)


def _wait_for_async_save() -> None:
    from sporax.train import serialization

    wait = getattr(serialization, "_wait_async_save", None)
    if wait is not None:
        wait()
        return
    while serialization.async_ckpt_thread_status():  # pragma: no cover - fallback if the helper moves
        time.sleep(0.005)


class ModelCheckpoint(Callback):
    """Save checkpoints during training: ``ModelCheckpoint(prefix='CKP', directory=None, config=None)``.

    ``prefix`` is a str without ``/`` or a callable ``cb_params -> str``; ``directory`` (created
    if missing; default: the current directory) a path or a callable ``cb_params -> path``.
    See the module docstring for names and rotation. ``latest_ckpt_file_name`` is the last
    file written.
    """

    def __init__(self, prefix="CKP", directory=None, config: CheckpointConfig | None = None) -> None:
        super().__init__()
        if not callable(prefix) and (not isinstance(prefix, str) or "/" in prefix):
            raise ValueError(
                "For 'ModelCheckpoint', the argument 'prefix' for checkpoint file name is invalid, it must be callable "
                f"or string that does not contain '/', but got {prefix!r}."
            )
        if config is None:
            config = CheckpointConfig()
        elif not isinstance(config, CheckpointConfig):
            raise TypeError(msg("ModelCheckpoint", "config", "a CheckpointConfig", type(config).__name__))
        self._config = config
        self._prefix_func = prefix if callable(prefix) else None
        self._directory_func = directory if callable(directory) else None
        self._prefix = prefix
        if self._directory_func is None:
            self._directory = self._make_directory(os.getcwd() if directory is None else directory)
        if self._prefix_func is None and self._directory_func is None:
            self._prefix = _suffixed_prefix(self._directory, prefix)
        self._files = _CheckpointFiles(config.format)
        self._append_dict = dict(config.append_dict or {})
        self._append_epoch_num = self._append_dict.get("epoch_num", 0)
        self._append_step_num = self._append_dict.get("step_num", 0)
        self._latest_ckpt_file_name = ""
        self._last_triggered_step = 0
        self._last_time = time.time()
        self._last_time_for_keep = time.time()

    @staticmethod
    def _make_directory(path) -> str:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise TypeError(msg("ModelCheckpoint", "directory", "a non-empty path or a callable", path))
        path = os.path.realpath(os.fspath(path))
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def latest_ckpt_file_name(self) -> str:
        """The path of the last checkpoint written ('' before the first)."""
        return self._latest_ckpt_file_name

    def step_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        if self._prefix_func is not None:
            self._prefix = self._prefix_func(cb_params)
            if not isinstance(self._prefix, str) or "/" in self._prefix:
                raise ValueError(
                    "For 'ModelCheckpoint', the argument 'prefix' for checkpoint file name is callable, it must return "
                    f"a string that does not contain '/', but got {self._prefix!r}."
                )
        if self._directory_func is not None:
            self._directory = self._make_directory(self._directory_func(cb_params))
        self._save_ckpt(cb_params)

    def end(self, run_context: RunContext) -> None:
        self._save_ckpt(run_context.original_args(), force=True)
        if self._config.async_save:
            _wait_for_async_save()

    def _should_save(self, cb_params, force: bool) -> bool:
        cfg = self._config
        if cfg.save_checkpoint_steps:
            return force or cb_params.cur_step_num >= self._last_triggered_step + cfg.save_checkpoint_steps
        if cfg.save_checkpoint_seconds:
            now = time.time()
            if force or now - self._last_time > cfg.save_checkpoint_seconds:
                self._last_time = now
                return True
        return False

    def _save_ckpt(self, cb_params, force: bool = False) -> None:
        from sporax.train.serialization import save_checkpoint

        if cb_params.cur_step_num == self._last_triggered_step or not hasattr(self, "_directory"):
            return
        if not self._should_save(cb_params, force):
            return
        cfg = self._config
        if cfg.async_save:
            _wait_for_async_save()
        batch_num = cb_params.get("batch_num") or cb_params.cur_step_num
        step_in_epoch = int((cb_params.cur_step_num - 1) % batch_num + 1)
        if self._prefix_func is not None:
            name = f"{self._prefix}.{cfg.format}"
        else:
            name = f"{self._prefix}-{cb_params.cur_epoch_num}_{step_in_epoch}.{cfg.format}"
        self._files.update(self._directory, self._prefix)
        if cfg.keep_checkpoint_max and 0 < cfg.keep_checkpoint_max <= len(self._files.files):
            self._files.remove_oldest()
        elif cfg.keep_checkpoint_per_n_minutes:
            now = time.time()
            if now - self._last_time_for_keep < cfg.keep_checkpoint_per_n_minutes * 60:
                self._files.keep_one_per_minutes(cfg.keep_checkpoint_per_n_minutes, now)
        path = os.path.join(self._directory, name)
        self._last_time_for_keep = time.time()
        self._last_triggered_step = cb_params.cur_step_num
        if "epoch_num" in self._append_dict:
            self._append_dict["epoch_num"] = self._append_epoch_num + cb_params.cur_epoch_num
        if "step_num" in self._append_dict:
            self._append_dict["step_num"] = self._append_step_num + cb_params.cur_step_num
        network = cfg.saved_network if cfg.saved_network is not None else cb_params.train_network
        kwargs = {}
        if cfg.remove_redundancy:
            from sporax import communication

            if communication.get_group_size() == 1:
                raise TypeError("The deduplication feature for saving checkpoint can only be used in parallel "
                                "scenarios, but got 'stand_alone'.")
            kwargs["remove_redundancy"] = True
        save_checkpoint(network, path, cfg.integrated_save, cfg.async_save, self._append_dict or None,
                        crc_check=cfg.crc_check, format=cfg.format, **kwargs)
        self._files.note_saved(path)
        self._latest_ckpt_file_name = path
