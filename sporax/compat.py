"""Make ``import mindspore`` (and every ``mindspore.x.y``) resolve to sporax, in this process only.

:func:`install` puts an import finder at the front of ``sys.meta_path``; it maps
``mindspore.X`` to ``sporax.X`` (with a few renames, e.g. ``mindspore.dtype``), returning
the very same module objects, so ``mindspore.Parameter is sporax.Parameter``. Nothing is
written to disk, and it wins over a real MindSpore installed beside it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["install", "uninstall", "ALIAS"]

ALIAS = "mindspore"

# mindspore module -> sporax module where the path differs from a plain prefix swap.
_RENAMES = {
    "mindspore.dtype": "sporax.common.dtype",
    "mindspore.common.api": "sporax.common.api",
    "mindspore.communication.management": "sporax.communication",
    "mindspore.ops.composite": "sporax.ops.composite",
    "mindspore.ops.operations": "sporax.ops.operations",
    "mindspore.ops.functional": "sporax.ops.functional",
    "mindspore.nn.optim": "sporax.nn.optim",
    "mindspore.nn.wrap": "sporax.nn",
    "mindspore.nn.loss": "sporax.nn.loss",
    "mindspore.nn.loss.loss": "sporax.nn.loss",
    "mindspore.nn.learning_rate_schedule": "sporax.nn.optim.learning_rate_schedule",
    "mindspore.nn.dynamic_lr": "sporax.nn.optim.dynamic_lr",
    "mindspore.nn.layer": "sporax.nn",
    "mindspore.train.callback": "sporax.train",
    "mindspore.train.model": "sporax.train",
    "mindspore.context": "sporax.context",
}


def _target(fullname: str) -> str:
    if fullname in _RENAMES:
        return _RENAMES[fullname]
    return "sporax" + fullname[len(ALIAS):]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass


def _not_provided(ms_name: str) -> ModuleNotFoundError:
    """The error for a MindSpore module sporax does not have, naming what the user imported.

    Its ``name`` is the MindSpore name, never the sporax one that Python's ``from package import
    x`` probes, so that probe does not swallow it into "cannot import name 'x' from 'sporax'
    (.../sporax/__init__.py)"; nothing is bound to ``sys.modules`` or to the parent package.
    """
    return ModuleNotFoundError(
        f"{ms_name} is not provided by sporax; sporax implements MindSpore's Parameter system and the "
        "APIs listed in its README (see the API coverage table there).",
        name=ms_name,
    )


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``mindspore`` and its submodules as the matching sporax modules.

    A MindSpore module sporax does not provide raises :func:`_not_provided`. So does a missing
    ``sporax.x`` looked up while the alias is installed: that is how ``from mindspore import x``
    reaches the import system when ``x`` is not an attribute of the package.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _searching:  # our own probe (see _find): let the other finders answer
            return None
        if fullname.startswith("sporax.") and not fullname.startswith(("sporax._", "sporax.compat")):
            if _find(fullname) is None and _find(fullname.rsplit(".", 1)[0]) is not None:
                raise _not_provided(ALIAS + fullname[len("sporax"):])
            return None
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        target_name = _target(fullname)
        if _find(target_name) is None:
            raise _not_provided(fullname)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name), is_package=True)


_searching: set = set()


def _find(name: str):
    """``importlib.util.find_spec(name)`` without this finder answering for it (None if missing)."""
    _searching.add(name)
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    finally:
        _searching.discard(name)


_finder = _AliasFinder()


def install() -> None:
    """Alias ``mindspore`` to sporax for this interpreter (idempotent)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if not getattr(sys.modules[name], "__name__", "").startswith("sporax"):
            del sys.modules[name]  # a real MindSpore imported earlier must not shadow the alias


def uninstall() -> None:
    """Remove the alias (used by tests)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
