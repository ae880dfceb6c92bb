"""Issue 13: strict safetensors parsing (as the reference ``safetensors`` package), one error
type (ValueError naming the file) for every damaged or hostile file, CRC truncation, CRC
interop with MindSpore, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import safetensors.numpy as st_ref

from sporax import Tensor
from sporax.train import _ckpt_format as ckf
from sporax.train import _safetensors_io as stio
from sporax.train import ckpt_cli
from sporax.train.serialization import load_checkpoint, save_checkpoint

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "train", "fixtures")
F16 = np.arange(4, dtype=np.float32).tobytes()


def st_file(tmp_path, header, data: bytes = b"", name: str = "x.safetensors") -> str:
    head = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    path = tmp_path / name
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)
    return str(path)


def ckpt_entry(name: bytes, dims, dtype: bytes, content: bytes, layout: bytes | None = None) -> bytes:
    tensor = b"".join(b"\x08" + ckf._varint(d) for d in dims)
    tensor += ckf._len_field(2, len(dtype)) + dtype + ckf._len_field(3, len(content)) + content
    value = ckf._len_field(1, len(name)) + name + ckf._len_field(2, len(tensor)) + tensor
    if layout is not None:
        value += ckf._len_field(15, len(layout)) + layout
    return ckf._len_field(1, len(value)) + value


def ckpt_file(tmp_path, data: bytes, name: str = "x.ckpt") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def assert_bad(path: str, exc=ValueError, **kwargs) -> None:
    with pytest.raises(exc) as info:
        load_checkpoint(path, **kwargs)
    assert type(info.value) is exc and path in str(info.value), repr(info.value)


# ----------------------------------------------------------------------------- 3: strict safetensors
def test_decremented_header_length_is_refused(tmp_path):
    """The issue's minimal case: it loaded shifted values [4.48e-44, -0, ...] before."""
    path = str(tmp_path / "a.safetensors")
    save_checkpoint({"w": Tensor(np.arange(4, dtype=np.float32))}, path)
    data = bytearray(open(path, "rb").read())
    data[0] -= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - the reference refuses it too
        st_ref.load(bytes(data))
    assert_bad(path)


W = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
CASES = {
    "ok": ({"w": W}, F16),
    "lead_ws": (" " + json.dumps({"w": W}), F16),
    "trail_nul": (json.dumps({"w": W}) + "\0", F16),
    "dup_tensor": ('{"w":' + json.dumps(W) + ',"w":' + json.dumps(W) + "}", F16),
    "dup_field": ('{"w":{"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]}}', F16),
    "extra_field": ({"w": {**W, "x": 1}}, F16),
    "meta_null": ({"__metadata__": None, "w": W}, F16),
    "meta_int": ({"__metadata__": {"a": 1}, "w": W}, F16),
    "meta_not_obj": ({"__metadata__": "x", "w": W}, F16),
    "shape_float": ({"w": {**W, "shape": [4.0]}}, F16),
    "shape_exp": ('{"w":{"dtype":"F32","shape":[4e0],"data_offsets":[0,16]}}', F16),
    "shape_neg_zero": ('{"w":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}', b""),
    "shape_nan": ('{"w":{"dtype":"F32","shape":[NaN],"data_offsets":[0,16]}}', F16),
    "shape_inf": ('{"w":{"dtype":"F32","shape":[Infinity],"data_offsets":[0,16]}}', F16),
    "shape_1e400": ('{"w":{"dtype":"F32","shape":[1e400],"data_offsets":[0,16]}}', F16),
    "offsets_float": ({"w": {**W, "data_offsets": [0, 16.0]}}, F16),
    "offsets_three": ({"w": {**W, "data_offsets": [0, 16, 16]}}, F16),
    "offsets_neg": ({"w": {**W, "data_offsets": [-4, 12]}}, F16),
    "gap": ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]}}, F16),
    "overlap": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]}}, F16),
    "out_of_order_ok": ({"b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                         "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, F16),
    "extra_data": ({"w": W}, F16 + b"xx"),
    "short_data": ({"w": W}, F16[:12]),
    "size_mismatch": ({"w": {**W, "shape": [5]}}, F16),
    "empty": ({}, b""),
    "empty_extra": ({}, b"abc"),
    "surrogate_name": ('{"\\ud800":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', F16),
    "top_array": ("[1]", b""),
    "zero_size_first": ({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "w": W}, F16),
    "huge_zero_dims": ({"a": {"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}, "w": W}, F16),
    "dims65": ({"w": {**W, "shape": [1] * 64 + [4]}}, F16),
    "unknown_dtype": ({"w": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}}, F16),
    "deep": ('{"x":' * 3000 + "1" + "}" * 3000, b""),
    "deep_meta": ('{"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"z":'
                  + "[" * 3000 + "]" * 3000 + "}}", F16),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_safetensors_strict_as_the_reference(tmp_path, case):
    header, data = CASES[case]
    path = st_file(tmp_path, header, data)
    raw = open(path, "rb").read()
    try:
        expected = st_ref.load(raw)
    except Exception:  # noqa: BLE001 - the reference's own error types vary
        expected = None
    try:
        got = {k: v.asnumpy() for k, v in load_checkpoint(path).items()}
    except ValueError as e:
        assert path in str(e)
        return
    assert expected is not None, f"sporax loaded a file the reference refuses: {case}"
    assert sorted(got) == sorted(expected)
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and got[k].tobytes() == v.tobytes()


def test_reference_accepted_files_load_identically(tmp_path):
    assert {k: v.tolist() for k, v in load_checkpoint(st_file(tmp_path, *CASES["out_of_order_ok"])).items()} == {
        "a": [0.0, 1.0], "b": [2.0, 3.0]}
    assert load_checkpoint(st_file(tmp_path, *CASES["zero_size_first"]))["a"].shape == (0,)


def _metadata_edit(path: str, edit) -> None:
    """Rewrite the header with ``edit(header)`` applied, keeping its length (space padding)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    head = json.dumps(header, separators=(",", ":")).encode()
    assert len(head) <= n
    open(path, "wb").write(raw[:8] + head + b" " * (n - len(head)) + raw[8 + n :])


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["w"].__setitem__("shape", [4, 3]),  # same bytes, other shape
        lambda h: h["w"].__setitem__("dtype", "I32"),  # same bytes, other dtype
        lambda h: h["__metadata__"].__setitem__("sporax.str/note", "hx"),
        lambda h: h["__metadata__"].__setitem__("format", "mx"),
    ],
)
def test_safetensors_metadata_is_under_the_crc(tmp_path, edit):
    path = str(tmp_path / "a.safetensors")
    save_checkpoint({"w": Tensor(np.arange(12, dtype=np.float32).reshape(3, 4)), "note": "hi"}, path, crc_check=True)
    assert sorted(load_checkpoint(path, crc_check=True)) == ["note", "w"]
    _metadata_edit(path, edit)
    with pytest.raises(ValueError, match="failed its CRC32 check") as info:
        load_checkpoint(path, crc_check=True)
    assert path in str(info.value)


# ----------------------------------------------------------------------------- 4: one error type
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_ckpt_hostile_records_raise_value_error_naming_the_file(tmp_path):
    f32 = np.arange(4, dtype=np.float32).tobytes()
    cases = {
        "deep_layout": ckpt_entry(b"w", [4], b"Float32", f32, b'{"full_shape":' + _nested(2000) + b"}"),
        "inf_layout": ckpt_entry(b"w", [4], b"Float32", f32, b'{"full_shape":[Infinity],"offsets":[0]}'),
        "big_layout": ckpt_entry(b"w", [4], b"Float32", f32, b'{"full_shape":[1e400],"offsets":[0]}'),
        "bad_layout": ckpt_entry(b"w", [4], b"Float32", f32, b'{"full_shape":[2],"offsets":[0]}'),
        "code_point": ckpt_entry(b"s", [0], b"str", struct.pack("<I", 0x110000)),
        "dims65": ckpt_entry(b"w", [1] * 64 + [4], b"Float32", f32),
        "huge_dims": ckpt_entry(b"w", [0, 2**62], b"Float32", b""),
        "long_name": ckpt_entry(b"n" * 1025, [4], b"Float32", f32),
        "surrogate_name": ckpt_entry("\ud800".encode("utf-8", "surrogatepass"), [4], b"Float32", f32),
    }
    for case, data in cases.items():
        path = ckpt_file(tmp_path, data, case + ".ckpt")
        assert_bad(path)
        crc_path = ckpt_file(tmp_path, data + b"crc_num" + zlib.crc32(data).to_bytes(10, "big"), case + "_crc.ckpt")
        assert_bad(crc_path, crc_check=True)


def test_safetensors_hostile_headers_raise_value_error_naming_the_file(tmp_path):
    w = dict(W)
    cases = {
        "deep_layout_meta": ({"__metadata__": {"sporax.layout/w": "[" * 2000 + "]" * 2000}, "w": w}, F16),
        "bad_layout_meta": ({"__metadata__": {"sporax.layout/w": '{"full_shape":[2],"offsets":[0]}'}, "w": w}, F16),
        "long_name": ({"n" * 1025: w}, F16),
    }
    for case, (header, data) in cases.items():
        assert_bad(st_file(tmp_path, header, data, case + ".safetensors"))
    for case in ("deep", "shape_inf", "shape_1e400", "dims65", "huge_zero_dims", "surrogate_name"):
        assert_bad(st_file(tmp_path, *CASES[case], name=case + ".safetensors"))
    # a lone-surrogate name under a CRC: refused as a file, not as a UnicodeEncodeError
    head = '{"__metadata__":{"crc_num":"1"},"\\udc80":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    assert_bad(st_file(tmp_path, head, F16, "surrogate_crc.safetensors"), crc_check=True)


def _total_memory() -> int:
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    return info["MemTotal"] + info.get("SwapTotal", 0)


@pytest.mark.parametrize("ext", [".ckpt", ".safetensors"])
def test_huge_sparse_file_gives_memory_error_before_allocating(tmp_path, ext):
    n = (2 * _total_memory()) // 4 // 4096 * 4096  # float32 elements: twice the machine's memory
    path = str(tmp_path / ("huge" + ext))
    if ext == ".ckpt":
        tensor = b"\x08" + ckf._varint(n) + ckf._len_field(2, 7) + b"Float32" + ckf._len_field(3, 4 * n)
        value_head = ckf._len_field(1, 1) + b"w" + ckf._len_field(2, len(tensor) + 4 * n)
        head = ckf._len_field(1, len(value_head) + len(tensor) + 4 * n) + value_head + tensor
    else:
        h = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
        head = struct.pack("<Q", len(h)) + h
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + 4 * n)  # sparse: no disk used
    with pytest.raises(MemoryError) as info:
        load_checkpoint(path)
    assert path in str(info.value) and str(4 * n) in str(info.value)


# ----------------------------------------------------------------------------- 5: CRC truncation
def _cut_at_last_record(path: str) -> bytes:
    data = open(path, "rb").read()[:-17]
    with ckf.CkptReader(path) as r:
        last = max(off for rec in r.records.values() for off, _ in rec.segments)
    # back up to the start of the top-level message holding the last record
    pos = 0
    starts = []
    while pos < len(data):
        starts.append(pos)
        _, p = ckf._read_varint(data, pos, len(data))
        n, p = ckf._read_varint(data, p, len(data))
        pos = p + n
    return data[: max(s for s in starts if s < last)]


def test_crc_file_cut_at_a_record_boundary(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint({"a": Tensor(np.ones(3, np.float32)), "b": Tensor(np.zeros(5, np.float32))}, path, crc_check=True)
    cut = _cut_at_last_record(path)
    open(path, "wb").write(cut)
    for crc_check in (False, True):  # marked by sporax: never loads without its trailer
        with pytest.raises(ValueError, match="no CRC32 trailer, but it was written with one") as info:
            load_checkpoint(path, crc_check=crc_check)
        assert path in str(info.value)
    # MindSpore's (unmarked) CRC file cut the same way: loads as MindSpore does, unless crc_check=True
    ms_cut = str(tmp_path / "ms.ckpt")
    open(ms_cut, "wb").write(_cut_at_last_record(os.path.join(FIXTURES, "ms_all_dtypes_crc.ckpt")))
    assert "p_bool" in load_checkpoint(ms_cut)
    with pytest.raises(ValueError, match="no CRC32 trailer to check") as info:
        load_checkpoint(ms_cut, crc_check=True)
    assert ms_cut in str(info.value)


def test_crc_check_true_requires_a_crc(tmp_path):
    for ext in (".ckpt", ".safetensors"):
        path = str(tmp_path / ("plain" + ext))
        save_checkpoint({"a": Tensor(np.ones(3, np.float32))}, path)
        assert_bad(path, crc_check=True)
        assert list(load_checkpoint(path)) == ["a"]


# ----------------------------------------------------------------------------- 8: CRC interop
def _ms_crc(arrays: dict) -> int:
    """MindSpore's safetensors rule, exactly as its save_checkpoint computes it."""
    crc = 0
    for name in sorted(arrays):
        crc = zlib.crc32(bytes(name, encoding="utf-8"), crc)
        crc = zlib.crc32(bytes(arrays[name]), crc)
    return crc


def test_mindspore_safetensors_with_epoch_and_step_under_crc():
    got = load_checkpoint(os.path.join(FIXTURES, "ms_epoch_crc.safetensors"), crc_check=True)
    assert int(got["epoch_num"].asnumpy()) == 3 and int(got["step_num"].asnumpy()) == 10
    np.testing.assert_array_equal(got["dense.weight"].asnumpy(), np.arange(12, dtype=np.float32).reshape(3, 4))


def test_sporax_safetensors_crc_follows_mindspores_rule(tmp_path):
    path = str(tmp_path / "a.safetensors")
    arrays = {"w": np.arange(6, dtype=np.float32), "epoch_num": np.array(3), "step_num": np.array(10),
              "lr": np.array(0.5, np.float32), "neg": np.array(-2)}
    save_checkpoint({k: Tensor(v) for k, v in arrays.items()}, path, crc_check=True)
    raw = open(path, "rb").read()
    meta = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert sorted(stio.SafetensorsReader(path).records) == sorted(arrays)
    stored = int(meta["__metadata__"]["crc_num"])
    rule = {k: v for k, v in arrays.items() if k != "neg"}
    crc = 0
    for name in sorted(arrays):  # negative 0-d ints: MindSpore's bytes() fails; sporax hashes the raw bytes
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(arrays[name].tobytes() if name == "neg" else bytes(arrays[name]), crc)
    assert stored == crc and _ms_crc(rule) != 0


def test_crc_check_false_skips_the_crc(tmp_path):
    src = open(os.path.join(FIXTURES, "ms_epoch_crc.safetensors"), "rb").read()
    path = str(tmp_path / "wrong.safetensors")
    open(path, "wb").write(src.replace(b'"crc_num":"2079765951"', b'"crc_num":"2079765952"'))
    assert int(load_checkpoint(path)["epoch_num"].asnumpy()) == 3  # as MindSpore: not checked
    with pytest.raises(ValueError, match="failed its CRC32 check"):
        load_checkpoint(path, crc_check=True)


# ----------------------------------------------------------------------------- 9: the CLI
def _bad_merge_inputs(tmp_path) -> list[list[str]]:
    f32 = np.arange(4, dtype=np.float32).tobytes()

    def slice_file(name, layout, shape=(4,)):
        return ckpt_file(tmp_path, ckpt_entry(b"w", list(shape), b"Float32", f32, json.dumps(layout).encode()), name)

    a = slice_file("a.ckpt", {"full_shape": [8], "offsets": [0]})
    other_full = slice_file("b.ckpt", {"full_shape": [12], "offsets": [4]})
    b_str = ckpt_file(tmp_path, ckpt_entry(b"w", [4], b"Float32", f32), "full.ckpt")
    out = str(tmp_path / "out.ckpt")
    return [
        ["merge", "-o", out, a],  # does not cover
        ["merge", "-o", out, a, other_full],  # disagreeing full shapes
        ["merge", "-o", out, a, b_str],  # slice and full tensor
        ["merge", "-o", out, slice_file("c.ckpt", {"full_shape": [8], "offsets": [6]})],  # outside
        ["merge", "-o", out, slice_file("d.ckpt", {"full_shape": [8], "offsets": ["0"]})],
        ["merge", "-o", out, slice_file("e.ckpt", {"offsets": [0]})],
        ["merge", "-o", out, slice_file("f.ckpt", [1, 2])],
        ["merge", "-o", out, slice_file("g.ckpt", {"full_shape": [2**62, 2**62], "offsets": [0, 0]}, (4, 1))],
        ["merge", "-o", str(tmp_path), a, slice_file("h.ckpt", {"full_shape": [8], "offsets": [4]})],  # dir
    ]


def test_cli_bad_inputs_give_one_error_line_and_exit_2(tmp_path, capsys):
    f32 = np.arange(4, dtype=np.float32).tobytes()
    bad_files = [
        ckpt_file(tmp_path, ckpt_entry(b"w", [4], b"Float32", f32, b'{"full_shape":' + _nested(3000) + b"}"), "r.ckpt"),
        st_file(tmp_path, *CASES["shape_1e400"], name="o.safetensors"),
        ckpt_file(tmp_path, ckpt_entry(b"s", [0], b"str", struct.pack("<I", 0x110000)), "s.ckpt"),
        st_file(tmp_path, *CASES["deep"], name="d.safetensors"),
        ckpt_file(tmp_path, b"\x0a\x05abc", "t.ckpt"),
        str(tmp_path / "missing.ckpt"),
        ckpt_file(tmp_path, b"", "empty.ckpt"),
    ]
    runs = [["inspect", f] for f in bad_files] + [["convert", f, str(tmp_path / "o.safetensors")] for f in bad_files]
    runs += _bad_merge_inputs(tmp_path)
    good = str(tmp_path / "good.ckpt")
    save_checkpoint({"w": Tensor(np.ones(3, np.float32))}, good)
    runs += [["convert", good, str(tmp_path / "no_such_dir" / "x.ckpt")], ["merge", "-o", str(tmp_path / "m.ckpt"),
                                                                             good, bad_files[0]]]
    capsys.readouterr()
    for argv in runs:
        assert ckpt_cli.main(argv) == 2, argv
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "unexpected" not in lines[0], (argv, err)
    assert not os.path.exists(tmp_path / "out.ckpt")


def test_cli_lists_and_removes_stale_temp_files(tmp_path, capsys):
    path = str(tmp_path / "m.ckpt")
    save_checkpoint({"w": Tensor(np.ones(3, np.float32))}, path)
    stale = tmp_path / ".m.ckpt.999999999.deadbeef.tmp"  # a writer pid that cannot exist
    stale.write_bytes(b"x" * 100)
    assert ckpt_cli.main(["temps", path]) == 0
    out = capsys.readouterr().out
    assert str(stale) in out and "stale" in out and "1 temporary files, 1 stale" in out
    assert ckpt_cli.main(["temps", path, "--remove"]) == 0
    assert "removed" in capsys.readouterr().out and not stale.exists()
