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


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``mindspore`` and its submodules as the matching sporax modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        target_name = _target(fullname)
        try:
            found = importlib.util.find_spec(target_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name), is_package=True)


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
