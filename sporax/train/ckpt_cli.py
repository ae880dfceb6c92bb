"""``python -m sporax ckpt {inspect,convert,merge}``: look into, convert and merge checkpoints.

* ``inspect FILE`` prints one row per entry: name, shape, dtype, size, and the slice layout
  when the entry is one rank's slice; then totals. Only headers are read.
* ``convert IN OUT [--crc]`` rewrites a ``.ckpt`` as ``.safetensors`` or back (format from
  each file's extension), one tensor in memory at a time; layouts and strings are kept.
* ``merge -o OUT FILE...`` rebuilds full tensors from per-rank slice files
  (``serialization.merge_checkpoints``); the slices' layouts are validated first.
* ``temps CKPT [--remove]`` lists the temporary files that saves to ``CKPT`` left beside it
  (a save killed mid-write leaves one), each marked ``stale`` (its writer is gone) or ``in use``
  (a save is writing it now); ``--remove`` deletes the stale ones. (Every save removes the
  stale ones of its own target first.)

Any bad input (a damaged, truncated or hostile file, a missing or unwritable path, slices that
do not fit together) gives one ``error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from sporax.train import _ckpt_format as ckf
from sporax.train import _ckpt_io as cio

__all__ = ["main", "inspect_checkpoint", "convert_checkpoint", "temp_files_text"]


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _layout_text(layout: dict | None) -> str:
    if not layout:
        return ""
    text = f"full {tuple(layout.get('full_shape', ()))} at {tuple(layout.get('offsets', ()))}"
    if "dev_mat" in layout:
        text += f" dev_mat {layout['dev_mat']} tensor_map {layout.get('tensor_map')} rank {layout.get('rank')}"
    return text


def inspect_checkpoint(path: str) -> str:
    """The ``inspect`` table for ``path`` as text (ValueError for a malformed file)."""
    with cio.open_checkpoint(path) as reader:
        rows = [("name", "shape", "dtype", "size", "layout")]
        total = 0
        for name, rec in reader.records.items():
            shape = "" if rec.dtype_name == ckf.STR_TYPE else str(rec.shape)
            rows.append((name, shape, rec.dtype_name, _human(rec.nbytes), _layout_text(rec.layout)))
            total += rec.nbytes
        for name, value in getattr(reader, "strings", {}).items():
            rows.append((name, "", "str", _human(len(value.encode())), ""))
        for name in reader.skipped:
            rows.append((name, "", "(map tensor, skipped)", "", ""))
        has_layout = any(r[4] for r in rows[1:])
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3].rjust(widths[3])]
            if has_layout:
                cells.append(r[4])
            lines.append("  ".join(cells).rstrip())
        crc = getattr(reader, "has_crc", None)
        lines.append(
            f"{len(rows) - 1} entries, {_human(total)} of tensor data"
            + ("" if crc is None else f", CRC32 {'present and verified' if crc else 'absent'}")
        )
    return "\n".join(lines)


def convert_checkpoint(src: str, dst: str, crc_check: bool = False) -> None:
    """Rewrite ``src`` in the format of ``dst``'s extension (.ckpt or .safetensors), atomically."""
    with cio.open_checkpoint(src) as reader:
        items, strings = [], dict(getattr(reader, "strings", {}))
        for name, rec in reader.records.items():
            if rec.dtype_name == ckf.STR_TYPE:
                strings[name] = reader.read(name)
            else:
                items.append(cio.Item(name, rec.shape, rec.dtype_name, lambda n=name: [reader.read(n)], rec.layout))
        fmt = cio.resolve_format(dst, "ckpt", "convert")
        cio.atomic_write(dst, lambda f: cio.write_items(f, fmt, items, strings, crc_check))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sporax ckpt``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sporax ckpt", description="Inspect, convert and merge checkpoints."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print names, shapes, dtypes, sizes (and layouts) of a checkpoint")
    p.add_argument("file")
    p = sub.add_parser("convert", help="convert between .ckpt and .safetensors (by extension)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--crc", action="store_true", help="write a CRC32 into the output")
    p = sub.add_parser("merge", help="merge per-rank slice checkpoints into one full checkpoint")
    p.add_argument("-o", "--output", required=True, help="the merged checkpoint to write")
    p.add_argument("files", nargs="+", help="the per-rank checkpoints")
    p.add_argument("--crc", action="store_true", help="write a CRC32 into the output")
    p = sub.add_parser("temps", help="list (and remove) temporary files that killed saves left beside a checkpoint")
    p.add_argument("file", help="the checkpoint whose saves' temporary files to list")
    p.add_argument("--remove", action="store_true", help="delete the stale ones (never one a live save holds)")
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if ns.command == "inspect":
            print(inspect_checkpoint(ns.file))
        elif ns.command == "convert":
            convert_checkpoint(ns.src, ns.dst, ns.crc)
            print(f"wrote {ns.dst}")
        elif ns.command == "temps":
            print(temp_files_text(ns.file, ns.remove))
        else:
            cio.merge_checkpoints(ns.files, ns.output, crc_check=ns.crc)
            print(f"wrote {ns.output} from {len(ns.files)} files")
    except (ValueError, OSError, MemoryError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug, but still one line rather than a traceback
        print(f"error: unexpected {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2
    return 0


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:2000]


def temp_files_text(path: str, remove: bool = False) -> str:
    """The ``temps`` listing for checkpoint ``path`` (deleting the stale files when ``remove``)."""
    found = cio.temp_files(path)
    lines = []
    for tmp, size, stale in found:
        state = "stale" if stale else "in use"
        if remove and stale:
            try:
                os.unlink(tmp)
                state = "stale, removed"
            except OSError as e:
                state = f"stale, not removed ({e.strerror})"
        lines.append(f"{tmp}  {_human(size)}  {state}")
    n_stale = sum(stale for _, _, stale in found)
    lines.append(f"{len(found)} temporary files, {n_stale} stale, {_human(sum(s for _, s, st in found if st))} stale")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
