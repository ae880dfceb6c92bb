"""List the public names of REAL MindSpore 2.10's main modules, for the API coverage table.

Run with a Python that has MindSpore (never needed by sporax or its tests)::

    /work/ms-ref/bin/python tools/ms_public_names.py

Writes ``tools/data/mindspore_public_names.json``: ``{"version": ..., "modules": {module:
{name: kind}}}``, where the public names of a module are its ``__all__`` (MindSpore defines it
for each of these modules), restricted to identifiers the module really has (MindSpore's
top-level ``__all__`` also holds the characters of its version string), and ``kind`` is
``class``, ``function``, ``module`` or ``constant``.
"""

import importlib
import inspect
import json
import os

import mindspore

MODULES = ["mindspore", "mindspore.nn", "mindspore.ops", "mindspore.ops.operations", "mindspore.train",
           "mindspore.amp", "mindspore.common.initializer", "mindspore.communication", "mindspore.dataset",
           "mindspore.experimental.optim"]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mindspore_public_names.json")


def kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def main() -> None:
    modules = {}
    for name in MODULES:
        mod = importlib.import_module(name)
        names = sorted({n for n in mod.__all__ if n.isidentifier() and not n.startswith("_") and hasattr(mod, n)})
        modules[name] = {n: kind(getattr(mod, n)) for n in names}
    with open(OUT, "w") as f:
        json.dump({"version": mindspore.__version__, "modules": modules}, f, indent=0, sort_keys=True)
        f.write("\n")
    print({k: len(v) for k, v in modules.items()})


if __name__ == "__main__":
    main()
