"""Issue 13: a bounded, seeded fuzz campaign over small .ckpt and .safetensors files.

Every mutated file either loads (values identical to the original's when the mutation did
not touch tensor bytes; identical to the reference ``safetensors`` package's for safetensors;
identical to the original with a verified CRC) or raises ValueError naming the file; nothing
else. The CLI's ``inspect`` gives exit 0 or one ``error:`` line with exit 2.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import struct

import numpy as np
import pytest
import safetensors.numpy as st_ref

from sporax.train import _ckpt_format as ckf
from sporax.train import _safetensors_io as stio
from sporax.train import ckpt_cli
from sporax.train.serialization import load_checkpoint

MUTATIONS_PER_FILE = 450  # x 6 originals = 2,700 mutated files (a few seconds on one core)


def _tensors() -> dict:
    return {
        "a.w": np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5,
        "a.b": np.array([1, -2, 3], np.int64),
        "epoch_num": np.array(7, np.int64),
        "flag": np.array([True, False]),
        "h": np.linspace(-1, 1, 6, dtype=np.float16).reshape(2, 3),
        "empty": np.zeros((0, 3), np.float32),
    }


def _layout() -> dict:
    return {"full_shape": [6, 4], "offsets": [3, 0], "rank": 1, "dev_mat": [2], "tensor_map": [0, -1]}


def _ckpt(crc: bool) -> bytes:
    buf = io.BytesIO()
    w = ckf.CkptWriter(buf, crc=crc)
    for name, value in _tensors().items():
        w.write_array(name, value, layout=_layout() if name == "a.w" else None)
    w.write_string("note", "héllo")
    w.finish()
    return buf.getvalue()


def _safetensors(crc: bool) -> bytes:
    buf = io.BytesIO()
    items = [(n, v.shape, ckf.mstype.from_numpy(v.dtype).name, v.nbytes, (lambda v=v: [v])) for n, v in _tensors().items()]
    stio.write_safetensors(buf, items, {"a.w": _layout()}, {"note": "héllo"}, crc)
    return buf.getvalue()


ORIGINALS = {
    "plain.ckpt": lambda: _ckpt(False),
    "crc.ckpt": lambda: _ckpt(True),
    "plain.safetensors": lambda: _safetensors(False),
    "crc.safetensors": lambda: _safetensors(True),
    "meta.safetensors": lambda: _safetensors(False),  # (header-focused mutations)
    "metacrc.ckpt": lambda: _ckpt(True),  # (varint-focused mutations)
}

_NUMBERS = ["-1", "0", "-0", "1", "3", "4.0", "1e400", "Infinity", "NaN", "18446744073709551616",
            "4611686018427387904", "9" * 5000, "2e1", "[]", "{}", '"3"', "null", "true"]


def _content_regions(data: bytes, ext: str) -> list[tuple[int, int]]:
    """Byte ranges of tensor (and string) contents in the original file."""
    if ext == "ckpt":
        return _ckpt_regions(data)
    (n,) = struct.unpack("<Q", data[:8])
    return [(8 + n, len(data))]


def _ckpt_regions(data: bytes) -> list[tuple[int, int]]:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".ckpt")
    try:
        os.write(fd, data)
        os.close(fd)
        with ckf.CkptReader(tmp) as r:
            return [(off, off + n) for rec in r.records.values() for off, n in rec.segments]
    finally:
        os.unlink(tmp)


def _mutate(rng: random.Random, data: bytes, kind: str, ext: str) -> tuple[bytes, int | None]:
    """A mutated copy and, for position-preserving mutations, the first byte changed."""
    b = bytearray(data)
    op = rng.choice(["flip", "set", "set", "truncate", "insert", "delete", "header", "header", "length"])
    if kind == "meta.safetensors":
        op = rng.choice(["header", "header", "header", "length", "flip"])
    if kind == "metacrc.ckpt":
        op = rng.choice(["varint", "varint", "flip", "truncate"])
    if op == "flip":
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), i
    if op == "set":
        i = rng.randrange(len(b))
        b[i] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x0A, 0x12, 0x1A, rng.randrange(256)])
        return bytes(b), i
    if op == "truncate":
        return bytes(b[: rng.randrange(len(b))]), None
    if op == "insert":
        i = rng.randrange(len(b) + 1)
        return bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 9))) + b[i:]), None
    if op == "delete":
        i = rng.randrange(len(b))
        return bytes(b[:i] + b[i + rng.randint(1, 9) :]), None
    if op == "varint" and ext == "ckpt":
        i = rng.randrange(len(b))
        return bytes(b[:i] + ckf._varint(rng.choice([0, 1, 127, 128, 2**31, 2**62, -1])) + b[i + 1 :]), None
    if ext == "safetensors":
        (n,) = struct.unpack("<Q", bytes(b[:8]))
        head, rest = bytes(b[8 : 8 + n]).decode(), bytes(b[8 + n :])
        if op == "length":
            n2 = max(0, n + rng.choice([-9, -8, -1, 1, 8, 2**20, 2**40]))
            return struct.pack("<Q", n2) + bytes(b[8:]), None
        tokens = list(re.finditer(r"-?\d+|\"[^\"]*\"", head))
        t = rng.choice(tokens)
        choice = rng.random()
        if choice < 0.6:
            new = rng.choice(_NUMBERS)
        elif choice < 0.8:
            new = rng.choice(['"F32"', '"I64"', '"BOOL"', '"__metadata__"', '"a.b"', '"\\ud800"', '"sporax.str/x"'])
        else:
            new = "[" * 3000 + t.group() + "]" * 3000
        head = head[: t.start()] + new + head[t.end() :]
        raw = head.encode("utf-8", "surrogatepass")
        return struct.pack("<Q", len(raw)) + raw + rest, None
    i = rng.randrange(len(b))
    b[i] = rng.randrange(256)
    return bytes(b), i


def _values(result: dict) -> dict:
    return {k: v if isinstance(v, str) else v.asnumpy() for k, v in result.items()}


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", sorted(ORIGINALS))
def test_fuzzed_checkpoints_load_identically_or_raise_value_error_naming_the_file(tmp_path, kind):
    ext = kind.rsplit(".", 1)[1]
    original = ORIGINALS[kind]()
    path = str(tmp_path / ("m." + ext))
    with open(path, "wb") as f:
        f.write(original)
    expected = _values(load_checkpoint(path, crc_check="crc" in kind))
    regions = _content_regions(original, ext)
    tensor_bytes = {v.tobytes() for v in expected.values() if not isinstance(v, str)}
    strings = {v for v in expected.values() if isinstance(v, str)}
    rng = random.Random(f"issue13-{kind}")
    failures: list[str] = []
    loaded = 0
    for trial in range(MUTATIONS_PER_FILE):
        data, pos = _mutate(rng, original, kind, ext)
        if data == original:
            continue
        with open(path, "wb") as f:
            f.write(data)
        touched_content = pos is None or any(lo <= pos < hi for lo, hi in regions)
        ref = None
        if ext == "safetensors":
            try:
                ref = st_ref.load(data)
            except Exception:  # noqa: BLE001 - the reference's error types vary
                ref = None
        for crc_check in (False, True) if "crc" in kind else (False,):
            try:
                got = _values(load_checkpoint(path, crc_check=crc_check))
            except ValueError as e:
                if path not in str(e):
                    failures.append(f"{trial} crc={crc_check}: ValueError without the file name: {e}")
                continue
            except Exception as e:  # noqa: BLE001 - exactly what the test forbids
                failures.append(f"{trial} crc={crc_check}: {type(e).__name__}: {e}"[:300])
                continue
            loaded += 1
            if crc_check:
                if sorted(got) != sorted(expected) or not all(_same(got[k], expected[k]) for k in expected):
                    failures.append(f"{trial}: loaded with a verified CRC but differs from the original")
            if ext == "safetensors":
                if ref is None:
                    failures.append(f"{trial} crc={crc_check}: loaded a file the reference package refuses")
                elif any(not _same(got[k], v) for k, v in ref.items()) or set(ref) - set(got):
                    failures.append(f"{trial} crc={crc_check}: values differ from the reference package's")
            elif not touched_content:
                for k, v in got.items():
                    if not (v in strings if isinstance(v, str) else v.tobytes() in tensor_bytes):
                        failures.append(f"{trial} crc={crc_check}: '{k}' loaded values that are not the original's")
        if trial % 3 == 0:  # the CLI too: exit 0, or one error line and exit 2
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = ckpt_cli.main(["inspect", path])
            lines = err.getvalue().splitlines()
            if not (status == 0 and not lines or status == 2 and len(lines) == 1 and lines[0].startswith("error: ")
                    and "unexpected" not in lines[0]):
                failures.append(f"{trial}: inspect gave {status}: {err.getvalue()[:300]}")
    assert failures == [], f"{len(failures)} failures, e.g.:\n" + "\n".join(failures[:15])
    assert loaded > 0  # some mutations (names, unused bytes, with crc_check=False) must still load
