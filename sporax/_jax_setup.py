"""Configure JAX once, before any sporax module touches it.

64-bit dtypes (Int64, Float64) are part of MindSpore's contract, so sporax enables
``jax_enable_x64``; sporax itself always picks dtypes explicitly, never by JAX defaults.

Persistent compilation cache. A script's first step is mostly XLA compilation (of the step,
and in PYNATIVE_MODE of each eager op); JAX can keep compiled executables on disk, so that the
next run of the same script loads them instead. sporax turns that cache on by default, in a
per-user directory, and caches every executable (JAX's own default skips those compiled in
under a second, which is nearly all of a small model's):

- directory: ``$SPORAX_COMPILE_CACHE`` if set, else ``$XDG_CACHE_HOME/sporax/jax``
  (``~/.cache/sporax/jax``); ``ms.set_context(compile_cache_path=DIR)`` changes it in-process;
- off: ``SPORAX_COMPILE_CACHE=off`` (or ``0``/``false``/``none``), or
  ``ms.set_context(enable_compile_cache=False)``;
- left alone when the user configured JAX's cache already (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)`` before importing sporax).

The cache is bounded (``SPORAX_COMPILE_CACHE_MAX_BYTES``, default 1 GiB; JAX evicts the least
recently used entries) when the ``filelock`` package is installed, which JAX's eviction needs. Entries are keyed by the program, the devices, the compiler options and
the jax/jaxlib versions, so a stale entry is never used.

This module also holds the few helpers that differ between the JAX versions sporax supports
(see ``pyproject.toml``: the oldest and the newest are both tested by ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import inspect
import os

import jax

jax.config.update("jax_enable_x64", True)

# ---------------------------------------------------------------------------------- compile cache
_OFF = ("off", "0", "false", "no", "none")
_DEFAULT_MAX_BYTES = 1 << 30
_user_configured = bool(jax.config.jax_compilation_cache_dir)  # the user's own choice wins
_active_dir: str | None = None


def default_cache_dir() -> str | None:
    """The directory sporax uses when nothing else is configured (None: the cache is off)."""
    env = os.environ.get("SPORAX_COMPILE_CACHE")
    if env is not None:
        return None if env.strip().lower() in _OFF or not env.strip() else os.path.expanduser(env)
    return _per_user_dir()


def set_compile_cache(path: str | None) -> None:
    """Use ``path`` for JAX's persistent compilation cache from now on (None turns it off).

    Called at import with :func:`default_cache_dir` and by ``set_context(enable_compile_cache=...,
    compile_cache_path=...)``. Executables compiled earlier in the process are not re-read.
    """
    global _active_dir
    if path == _active_dir:
        return
    from jax.experimental.compilation_cache import compilation_cache as cc

    if path is not None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:  # an unwritable home: run without the cache rather than fail
            path = None
    cc.reset_cache()  # forget an initialized cache so that the new directory takes effect
    jax.config.update("jax_compilation_cache_dir", path)
    _active_dir = path
    if path is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
        # JAX's eviction needs the ``filelock`` package (it raises at the first compile without it).
        if importlib.util.find_spec("filelock") is not None:
            max_bytes = int(os.environ.get("SPORAX_COMPILE_CACHE_MAX_BYTES", _DEFAULT_MAX_BYTES))
            jax.config.update("jax_compilation_cache_max_size", max_bytes)


def compile_cache_dir() -> str | None:
    """The directory of the persistent compilation cache in use (None: off)."""
    return jax.config.jax_compilation_cache_dir or None


def configure_from_context(enable: bool | None, path: str | None) -> None:
    """``set_context(enable_compile_cache=..., compile_cache_path=...)``: apply to the cache.

    ``enable=False`` turns it off, a ``path`` moves it there, ``enable=True`` alone turns it on
    in the default directory. A cache the user configured through JAX is left alone.
    """
    if _user_configured:
        return
    if enable is False:
        set_compile_cache(None)
    elif path:
        set_compile_cache(os.path.expanduser(str(path)))
    elif enable:
        set_compile_cache(_active_dir or default_cache_dir() or _per_user_dir())


def _per_user_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sporax", "jax")


if not _user_configured:
    set_compile_cache(default_cache_dir())

# ---------------------------------------------------------------------------------- version shims
try:  # JAX >= 0.4.36: evaluate now, while functions jitted inside still trace their own bodies
    from jax._src.core import eval_context as _eval_context
except ImportError:  # pragma: no cover - older JAX, where ensure_compile_time_eval does exactly that
    _eval_context = jax.ensure_compile_time_eval


def eager():
    """A context in which JAX operations run now, even inside a user's jit/grad trace.

    Unlike ``jax.ensure_compile_time_eval`` on recent JAX, a jitted function called inside it
    is traced and compiled as a whole (its body's ops are not evaluated one by one and baked in
    as constants).
    """
    return _eval_context()


def to_device(value):
    """A numpy array as a jax array, by a transfer (``jnp.asarray`` compiles a kernel per shape)."""
    with _eval_context():
        return jax.device_put(value)


_HAS_MAY_ALIAS = "may_alias" in inspect.signature(jax.device_put).parameters


def copy_array(array):
    """A fresh copy of a jax array (a buffer that may be donated), without compiling a kernel.

    A global array of a multi-process run (not fully addressable) cannot be transferred: it is
    copied by a compiled kernel, as is any array on a JAX without ``device_put(may_alias=)``.
    """
    if _HAS_MAY_ALIAS and getattr(array, "is_fully_addressable", False):
        return jax.device_put(array, may_alias=False)
    import jax.numpy as jnp

    return jnp.array(array, copy=True)
