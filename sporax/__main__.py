"""``python -m sporax run SCRIPT [ARGS]`` runs a MindSpore script on sporax;
``python -m sporax ckpt ...`` inspects, converts and merges checkpoints;
``python -m sporax fl server|client ...`` runs federated learning on Flower (SuperLink, SuperNodes);
``python -m sporax msrun ...`` starts data-parallel workers as MindSpore's msrun does."""

from __future__ import annotations

import argparse
import os
import runpy
import sys

USAGE = """usage: python -m sporax run SCRIPT [ARGS...]
       python -m sporax ckpt {inspect,convert,merge} ...
       python -m sporax fl {server,client} ...
       python -m sporax msrun --worker_num=N --local_worker_num=N --master_port=P [--log_dir=D] [--join=True] SCRIPT [ARGS...]"""


def run_script(script: str, args: list[str]) -> None:
    """Run ``script`` as ``__main__`` with ``import mindspore`` resolving to sporax."""
    from sporax import compat

    if not os.path.isfile(script):
        raise SystemExit(f"sporax run: no such script: {script}")
    compat.install()
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        parser = argparse.ArgumentParser(prog="python -m sporax run")
        parser.add_argument("script")
        parser.add_argument("args", nargs=argparse.REMAINDER)
        ns = parser.parse_args(rest)
        run_script(ns.script, ns.args)
        return 0
    if command == "fl":
        from sporax.fl.cli import main as fl_main

        return fl_main(rest)
    if command == "ckpt":
        from sporax.train.ckpt_cli import main as ckpt_main

        return ckpt_main(rest)
    if command == "msrun":
        from sporax.parallel.msrun import main as msrun_main

        return msrun_main(rest)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
