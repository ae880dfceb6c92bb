"""The .ckpt and safetensors codecs: files written by real MindSpore 2.10 (fixtures), byte-exact
re-encoding, splitting, CRC trailer, and rejection of malformed files before any allocation."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sporax.common import dtype as mstype
from sporax.train import _ckpt_format as ckf
from sporax.train import _safetensors_io as stio

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
DTYPES = [
    "Bool",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float16",
    "BFloat16",
    "Float32",
    "Float64",
]


def expected_array(name: str) -> np.ndarray:
    """Mirror of ``fixtures/make_fixtures.py``: the values MindSpore saved for dtype ``name``."""
    base = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    if name == "Bool":
        values = (base % 3 == 0).astype(np.float64)
    elif name.startswith("UInt"):
        bits = int(name[4:])
        values = base * 7 + (2.0**bits - 200 if bits <= 32 else 2.0**40)
    elif name.startswith("Int"):
        values = (base - 12) * (2.0 ** (int(name[3:]) - 6))
    else:
        values = (base - 12) * 0.25
    return values.astype(mstype.from_name(name).np_dtype)


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


def read_all(path: str) -> dict:
    with ckf.CkptReader(path) as r:
        return {name: r.read(name) for name in r.records}


def encode(entries, crc=False) -> bytes:
    buf = io.BytesIO()
    w = ckf.CkptWriter(buf, crc=crc)
    for name, value in entries:
        if isinstance(value, str):
            w.write_string(name, value)
        else:
            w.write_array(name, value)
    w.finish()
    return buf.getvalue()


def write(tmp_path, data: bytes, name="x.ckpt") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ----------------------------------------------------------------------------- MindSpore files
@pytest.mark.parametrize("fname", ["ms_all_dtypes.ckpt", "ms_all_dtypes_crc.ckpt"])
def test_mindspore_file_every_dtype(fname):
    with ckf.CkptReader(fixture(fname)) as r:
        assert r.has_crc == fname.endswith("crc.ckpt")
        for name in DTYPES:
            rec = r.records["p_" + name.lower()]
            assert rec.dtype_name == name and rec.shape == (2, 3, 4)
            got = r.read(rec.name)
            assert got.dtype == mstype.from_name(name).np_dtype
            np.testing.assert_array_equal(got, expected_array(name))
        assert r.read("scalar").shape == () and r.read("scalar") == np.float32(3.5)
        assert "empty" not in r.records  # MindSpore writes no entry for an empty tensor


def test_mindspore_bfloat16_is_ml_dtypes():
    with ckf.CkptReader(fixture("ms_all_dtypes.ckpt")) as r:
        assert r.read("p_bfloat16").dtype == ml_dtypes.bfloat16


def test_mindspore_append_dict_and_nested_names():
    got = read_all(fixture("ms_nested.ckpt"))
    assert list(got) == ["dense.weight", "dense.bias", "head.weight", "head.bias", "epoch_num", "lr", "flag", "note"]
    assert got["note"] == "hello"
    assert got["epoch_num"].dtype == np.int64 and got["epoch_num"] == 7
    assert got["flag"].dtype == np.bool_ and got["lr"] == np.float32(0.5)


@pytest.mark.parametrize("fname", ["ms_split.ckpt", "ms_split_rows.ckpt"])
def test_mindspore_split_entries_are_joined(fname):
    with ckf.CkptReader(fixture(fname)) as r:
        assert len(r.records["big"].segments) == 4
        np.testing.assert_array_equal(r.read("big"), np.arange(1000, dtype=np.float32).reshape(10, 100))
        np.testing.assert_array_equal(
            r.read_window("big", (3, 20), (4, 50)), np.arange(1000, dtype=np.float32).reshape(10, 100)[3:7, 20:70]
        )


@pytest.mark.parametrize(
    "fname,crc,split",
    [
        ("ms_all_dtypes.ckpt", False, None),
        ("ms_all_dtypes_crc.ckpt", True, None),
        ("ms_nested.ckpt", False, None),
        ("ms_split.ckpt", True, 1024),
    ],
)
def test_reencoding_is_byte_identical_to_mindspore(fname, crc, split, monkeypatch):
    if split:
        monkeypatch.setattr(ckf, "SPLIT_BYTES", split)
    got = encode(read_all(fixture(fname)).items(), crc=crc)
    with open(fixture(fname), "rb") as f:
        expected = f.read()
    if crc:  # sporax marks its CRC-protected files at the start (a field MindSpore skips)
        body = ckf.CRC_MARKER + expected[:-17]
        expected = body + b"crc_num" + zlib.crc32(body).to_bytes(10, "big")
    assert got == expected


def test_mindspore_safetensors_file():
    with stio.SafetensorsReader(fixture("ms_all_dtypes.safetensors")) as r:
        for name in DTYPES:
            if name != "BFloat16":  # MindSpore 2.10 cannot write BFloat16 safetensors here
                np.testing.assert_array_equal(r.read("p_" + name.lower()), expected_array(name))
        assert r.read("empty").shape == (0, 3)


# ----------------------------------------------------------------------------- round trips
@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from([*DTYPES, "Complex64", "Complex128"]),
    shape=st.lists(st.integers(0, 5), max_size=3).map(tuple),
    split=st.sampled_from([None, 1, 7, 64]),
    crc=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_roundtrip_any_dtype_shape_split(name, shape, split, crc, seed):
    dt = mstype.from_name(name).np_dtype
    raw = np.random.default_rng(seed).integers(0, 256, size=int(np.prod(shape)) * dt.itemsize, dtype=np.uint8)
    value = raw.view(dt).reshape(shape) if name != "Bool" else (raw % 2).astype(bool).reshape(shape)
    old = ckf.SPLIT_BYTES
    ckf.SPLIT_BYTES = split or old
    try:
        data = encode([("a.b", value), ("s", "strings too"), ("z", np.float32(1.5))], crc=crc)
    finally:
        ckf.SPLIT_BYTES = old
    with tempfile.TemporaryDirectory() as d:  # hypothesis re-runs the body: no tmp_path fixture
        path = os.path.join(d, "x.ckpt")
        with open(path, "wb") as f:
            f.write(data)
        with ckf.CkptReader(path) as r:
            got = r.read("a.b")
            assert got.dtype == dt and got.shape == shape
            assert got.tobytes() == np.ascontiguousarray(value).tobytes()
            assert r.read("s") == "strings too" and r.read("z") == np.float32(1.5)
            assert r.has_crc == crc
            expected_entries = max(1, -(-value.nbytes // max(dt.itemsize, (split or old) // dt.itemsize * dt.itemsize)))
            assert len(r.records["a.b"].segments) == expected_entries


def test_view_is_zero_copy(tmp_path):
    path = write(tmp_path, encode([("w", np.arange(12, dtype=np.float32).reshape(3, 4))]))
    with ckf.CkptReader(path) as r:
        v = r.view("w")
        assert not v.flags.owndata and not v.flags.writeable
        np.testing.assert_array_equal(v, np.arange(12, dtype=np.float32).reshape(3, 4))
        owned = r.read("w")
        assert owned.flags.owndata
        del v


def test_layout_field_is_kept(tmp_path):
    buf = io.BytesIO()
    w = ckf.CkptWriter(buf)
    w.write_array("w", np.ones((2, 3), np.float32), layout={"full_shape": [4, 3], "offsets": [2, 0]})
    w.finish()
    with ckf.CkptReader(write(tmp_path, buf.getvalue())) as r:
        assert r.records["w"].layout == {"full_shape": [4, 3], "offsets": [2, 0]}


def test_unknown_fields_are_skipped(tmp_path):
    body = encode([("w", np.arange(3, dtype=np.int32))])
    # an unknown varint field (7) and fixed32 field (8) at the top level, after the entry
    extra = bytes([7 << 3 | 0, 5, 8 << 3 | 5, 1, 2, 3, 4])
    with ckf.CkptReader(write(tmp_path, body + extra)) as r:
        np.testing.assert_array_equal(r.read("w"), [0, 1, 2])


def test_packed_dims_accepted(tmp_path):
    content = np.arange(6, dtype=np.int8).tobytes()
    tensor = b"\x0a\x02\x02\x03" + b"\x12\x04Int8" + b"\x1a\x06" + content  # dims packed as [2, 3]
    value = b"\x0a\x01w" + b"\x12" + bytes([len(tensor)]) + tensor
    with ckf.CkptReader(write(tmp_path, b"\x0a" + bytes([len(value)]) + value)) as r:
        assert r.read("w").shape == (2, 3)


def test_safetensors_roundtrip_against_package(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    arrays = {name: expected_array(name) for name in DTYPES}
    path = str(tmp_path / "a.safetensors")
    items = [(k, v.shape, k, v.nbytes, (lambda v=v: [v])) for k, v in arrays.items()]
    with open(path, "wb") as f:
        stio.write_safetensors(f, items, {}, {"note": "hi"}, crc=True)
    with safetensors.safe_open(path, "np") as f:  # the package reads what we write
        assert f.metadata()["sporax.str/note"] == "hi"
        for k in f.keys():
            if k != "BFloat16":  # the package's numpy mapping has no bfloat16
                np.testing.assert_array_equal(f.get_tensor(k), arrays[k])
    with stio.SafetensorsReader(path) as r:
        for k, v in arrays.items():
            assert r.read(k).dtype == v.dtype
            np.testing.assert_array_equal(r.read(k), v)
        assert r.strings == {"note": "hi"}
    pkg_path = str(tmp_path / "b.safetensors")  # and we read what the package writes
    save_file({k: v for k, v in arrays.items() if k != "BFloat16"}, pkg_path)
    with stio.SafetensorsReader(pkg_path) as r:
        np.testing.assert_array_equal(r.read_window("Int32", (1, 0, 1), (1, 3, 2)), arrays["Int32"][1:2, :, 1:3])


# ----------------------------------------------------------------------------- damaged files
def test_crc_mismatch_is_detected(tmp_path):
    data = bytearray(encode([("w", np.arange(100, dtype=np.float32))], crc=True))
    data[40] ^= 0xFF  # a content byte: the structure still parses, only the CRC can tell
    path = write(tmp_path, bytes(data))
    with pytest.raises(ValueError, match=r"x\.ckpt' failed its CRC32 check"):
        ckf.CkptReader(path)


@pytest.mark.parametrize("cut", [1, 5, 17, 60, 200])
def test_truncated_file_is_rejected(tmp_path, cut):
    data = encode([("w", np.arange(50, dtype=np.float32)), ("b", np.arange(3, dtype=np.int64))])
    path = write(tmp_path, data[:-cut])
    with pytest.raises(ValueError, match=r"x\.ckpt"):
        with ckf.CkptReader(path) as r:
            for name in r.records:
                r.read(name)


@pytest.mark.parametrize(
    "data,what",
    [
        (b"", "empty"),
        (b"hello world", "first byte"),
        (b"PK\x03\x04" + b"\0" * 30, "first byte"),
        (b"\x0a\xff\xff\xff\xff\x0f", "runs past"),
        (b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "varint"),
    ],
)
def test_not_a_checkpoint(tmp_path, data, what):
    with pytest.raises(ValueError, match=what):
        ckf.CkptReader(write(tmp_path, data))


def test_malicious_shape_rejected_before_allocation(tmp_path, monkeypatch):
    # declares 2**40 float64 elements (8 TiB) but stores 8 bytes
    tensor = b"".join(b"\x08" + ckf._varint(d) for d in (2**20, 2**20)) + b"\x12\x07Float64" + b"\x1a\x08" + b"\0" * 8
    value = b"\x0a\x01w\x12" + ckf._varint(len(tensor)) + tensor
    path = write(tmp_path, b"\x0a" + ckf._varint(len(value)) + value)
    monkeypatch.setattr(np, "empty", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(ValueError, match=r"'w' declares shape \(1048576, 1048576\)"):
        ckf.CkptReader(path)


def test_negative_dim_and_unknown_dtype_rejected(tmp_path):
    tensor = b"\x08" + ckf._varint(-1) + b"\x12\x07Float32\x1a\x04" + b"\0" * 4
    value = b"\x0a\x01w\x12" + ckf._varint(len(tensor)) + tensor
    with pytest.raises(ValueError, match="negative dimension"):
        ckf.CkptReader(write(tmp_path, b"\x0a" + ckf._varint(len(value)) + value))
    tensor = b"\x08\x01\x12\x06Qint99\x1a\x04" + b"\0" * 4
    value = b"\x0a\x01w\x12" + ckf._varint(len(tensor)) + tensor
    with pytest.raises(ValueError, match="unknown dtype name 'Qint99'"):
        ckf.CkptReader(write(tmp_path, b"\x0a" + ckf._varint(len(value)) + value, "y.ckpt"))


@pytest.mark.parametrize(
    "header",
    [
        b"{not json",
        b'{"w": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4]}}',
        b'{"w": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}',
        b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}}',
    ],
)
def test_bad_safetensors_rejected(tmp_path, header):
    path = write(tmp_path, struct.pack("<Q", len(header)) + header + b"\0" * 4, "x.safetensors")
    with pytest.raises(ValueError, match=r"x\.safetensors"):
        stio.SafetensorsReader(path)


def test_safetensors_huge_header_length_rejected(tmp_path):
    path = write(tmp_path, struct.pack("<Q", 2**60) + b"{}", "x.safetensors")
    with pytest.raises(ValueError, match="exceeds the file size"):
        stio.SafetensorsReader(path)
