"""save_checkpoint / load_checkpoint / load_param_into_net / merge_checkpoints and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sporax
from sporax import Parameter, Tensor, nn
from sporax.common.initializer import initializer
from sporax.train import _ckpt_format as ckf
from sporax.train import _ckpt_io as cio
from sporax.train import ckpt_cli
from sporax.train import serialization as ser
from sporax.train._safetensors_io import SafetensorsReader
from sporax.train.serialization import load_checkpoint, load_param_into_net, merge_checkpoints, save_checkpoint

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Sub(nn.Cell):
    def __init__(self, dtype=sporax.float32, shape=(3, 4)):
        super().__init__()
        self.weight = Parameter(Tensor(np.arange(np.prod(shape)).reshape(shape), dtype))
        self.bias = Parameter(Tensor(np.arange(shape[0]), dtype))


class Nested(nn.Cell):
    def __init__(self, dtype=sporax.float32, shape=(3, 4)):
        super().__init__()
        self.dense = Sub(dtype, shape)
        self.head = Sub(dtype, shape)


def zero(net: nn.Cell) -> nn.Cell:
    for p in net.get_parameters():
        p.set_data(Tensor(np.zeros(p.shape), p.dtype))
    return net


def values(net: nn.Cell) -> dict:
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def test_exported_from_sporax_and_train():
    from sporax import train

    assert train.save_checkpoint is save_checkpoint and train.load_param_into_net is load_param_into_net
    if hasattr(sporax, "save_checkpoint"):  # wired by the lead in sporax/__init__.py
        assert sporax.load_checkpoint is load_checkpoint


@pytest.mark.parametrize("ext", [".ckpt", ".safetensors"])
def test_roundtrip_cell(tmp_path, ext):
    net = Nested()
    path = str(tmp_path / ("net" + ext))
    save_checkpoint(net, path, append_dict={"epoch_num": 7, "lr": 0.5, "note": "hi"}, crc_check=True)
    loaded = load_checkpoint(path)
    assert isinstance(loaded["dense.weight"], Parameter) and loaded["dense.weight"].name == "dense.weight"
    assert loaded["note"] == "hi" and loaded["epoch_num"].dtype == sporax.int64
    other = zero(Nested())
    assert load_param_into_net(other, loaded) == ([], ["epoch_num", "lr", "note"])
    for name, v in values(net).items():
        np.testing.assert_array_equal(values(other)[name], v)


def test_mindspore_written_file_loads_into_net():
    net = zero(Nested())
    param_not_load, ckpt_not_load = load_param_into_net(net, load_checkpoint(os.path.join(FIXTURES, "ms_nested.ckpt")))
    assert param_not_load == [] and ckpt_not_load == ["epoch_num", "lr", "flag", "note"]
    np.testing.assert_array_equal(net.head.weight.asnumpy(), np.arange(12, dtype=np.float32).reshape(3, 4))


def test_list_and_dict_save_forms_and_choice_func(tmp_path):
    net = Nested()
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(net.trainable_params(), path, choice_func=lambda n: n.startswith("head"))
    assert list(load_checkpoint(path)) == ["head.weight", "head.bias"]
    save_checkpoint([{"name": "x", "data": Tensor(np.ones(3), sporax.float16)}], path)
    assert load_checkpoint(path)["x"].dtype == sporax.float16
    save_checkpoint(load_checkpoint(os.path.join(FIXTURES, "ms_nested.ckpt")), path)
    assert load_checkpoint(path)["note"] == "hello"


def test_extension_is_added_and_format_follows_name(tmp_path):
    save_checkpoint(Sub(), str(tmp_path / "model"))
    assert os.path.exists(tmp_path / "model.ckpt")
    save_checkpoint(Sub(), str(tmp_path / "model.safetensors"))
    with open(tmp_path / "model.safetensors", "rb") as f:
        assert f.read(9)[8:9] == b"{"
    with pytest.raises(ValueError, match="'format'"):
        save_checkpoint(Sub(), str(tmp_path / "m"), format="npz")


def test_load_filters(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Nested(), path)
    assert list(load_checkpoint(path, filter_prefix="dense")) == ["head.weight", "head.bias"]
    assert list(load_checkpoint(path, specify_prefix=["head.b"])) == ["head.bias"]
    assert list(load_checkpoint(path, choice_func=lambda n: n.endswith("bias"))) == ["dense.bias", "head.bias"]
    with pytest.raises(ValueError, match="nothing was loaded"):
        load_checkpoint(path, specify_prefix="nope")
    with pytest.raises(TypeError, match="filter_prefix"):
        load_checkpoint(path, filter_prefix=3)


# ----------------------------------------------------------------------------- strict_load, dtype, shape
def test_dtype_conversion_within_float_and_int_families(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Nested(), path)
    net = Nested(sporax.float16)
    assert load_param_into_net(net, load_checkpoint(path)) == ([], [])
    assert net.dense.weight.dtype == sporax.float16 and net.dense.weight.asnumpy()[2, 3] == 11
    with pytest.raises(RuntimeError, match=r"'dense.weight' has dtype Float16 .* Float32 .*strict_load"):
        load_param_into_net(Nested(sporax.float16), load_checkpoint(path), strict_load=True)
    with pytest.raises(RuntimeError, match=r"'dense.weight' has dtype Int32 in the 'net' but Float32"):
        load_param_into_net(Nested(sporax.int32), load_checkpoint(path))


def test_mismatch_loads_nothing(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Nested(), path)
    net = Nested(shape=(4, 3))
    net.dense.bias.set_data(Tensor(np.full(4, 9), sporax.float32))
    with pytest.raises(RuntimeError, match=r"'dense.weight' has shape \(4, 3\) in the 'net' but \(3, 4\)"):
        load_param_into_net(net, load_checkpoint(path))
    np.testing.assert_array_equal(net.dense.bias.asnumpy(), np.full(4, 9))  # nothing changed


def test_trailing_ones_are_squeezed():
    net = Sub(shape=(3, 4))
    pd = {"weight": Parameter(Tensor(np.ones((3, 4, 1, 1)), sporax.float32), name="weight")}
    assert load_param_into_net(net, pd) == (["bias"], [])
    assert net.weight.shape == (3, 4)


def test_prefix_fallback_and_strict(tmp_path):
    class Wrap(nn.Cell):
        def __init__(self):
            super().__init__()
            self.net = Nested()

    path = str(tmp_path / "w.ckpt")
    save_checkpoint(Wrap(), path)  # names 'net.dense.weight', ...
    pd = load_checkpoint(path)
    net = zero(Nested())
    assert load_param_into_net(net, pd) == ([], [])  # MindSpore still lists the keys; see the docstring
    assert net.head.weight.asnumpy()[2, 3] == 11
    missing, unused = load_param_into_net(zero(Nested()), pd, strict_load=True)
    assert missing == ["dense.weight", "dense.bias", "head.weight", "head.bias"] and len(unused) == 4


def test_load_checkpoint_with_net(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Nested(), path)
    net = zero(Nested())
    pd = load_checkpoint(path, net=net)
    assert set(pd) == {"dense.weight", "dense.bias", "head.weight", "head.bias"}
    assert net.dense.bias.asnumpy().tolist() == [0, 1, 2]


def test_load_param_into_net_argument_checks():
    with pytest.raises(TypeError, match="'net' should be a Cell"):
        load_param_into_net({}, {})
    with pytest.raises(TypeError, match="'parameter_dict' should be a dict"):
        load_param_into_net(Sub(), [])
    with pytest.raises(TypeError, match="should map str to Parameter"):
        load_param_into_net(Sub(), {"weight": 3})


# ----------------------------------------------------------------------------- damaged files
def test_corrupted_file_loads_nothing(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Nested(), path, crc_check=True)
    data = bytearray(open(path, "rb").read())
    data[-30] ^= 1
    open(path, "wb").write(bytes(data))
    net = zero(Nested())
    with pytest.raises(ValueError, match=r"a\.ckpt' failed its CRC32 check"):
        load_checkpoint(path, net=net, crc_check=True)
    assert not any(v.any() for v in values(net).values())
    open(path, "wb").write(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match=r"a\.ckpt"):
        load_checkpoint(path, net=net)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(str(tmp_path / "missing.ckpt"))
    assert not any(v.any() for v in values(net).values())


def test_atomic_save_survives_sigkill(tmp_path):
    """A saving process killed mid-write leaves the previous checkpoint intact, and its
    temporary file is neither named like a checkpoint nor loadable as one."""
    path = str(tmp_path / "model.ckpt")
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        import sporax
        from sporax import Tensor
        from sporax.train import _ckpt_format as ckf
        from sporax.train.serialization import save_checkpoint
        save_checkpoint([{{"name": "w", "data": Tensor(np.arange(10, dtype=np.float32))}}], {path!r})
        put = ckf.CkptWriter._put
        def slow_put(self, data):
            if len(data) > 1 << 20:  # the tensor's bytes: write half, then wait to be killed
                put(self, data[: len(data) // 2])
                print("halfway", flush=True)
                time.sleep(60)
            put(self, data)
        ckf.CkptWriter._put = slow_put
        big = Tensor(np.ones((1024, 1024, 4), np.float32))  # 16 MiB
        save_checkpoint([{{"name": "w", "data": big}}], {path!r})
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), REPO])))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "halfway"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    np.testing.assert_array_equal(load_checkpoint(path)["w"].asnumpy(), np.arange(10, dtype=np.float32))
    leftovers = [f for f in os.listdir(tmp_path) if f != "model.ckpt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.ckpt.") and leftovers[0].endswith(".tmp")
    assert [f for f in os.listdir(tmp_path) if f.endswith(".ckpt")] == ["model.ckpt"]
    with pytest.raises(ValueError):
        load_checkpoint(str(tmp_path / leftovers[0]))


def test_failed_save_keeps_old_file_and_cleans_up(tmp_path):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(Sub(), path)

    def boom(name):
        raise KeyError("choice failed")

    with pytest.raises(KeyError):
        save_checkpoint(Nested(), path, choice_func=boom)
    lazy = Parameter(initializer("normal", (4, 4), sporax.float32), name="w")
    lazy.init = _Exploding(lazy.init)
    with pytest.raises(RuntimeError, match="generator failed"):
        save_checkpoint([lazy], path)
    assert os.listdir(tmp_path) == ["a.ckpt"] and list(load_checkpoint(path)) == ["weight", "bias"]


class _Exploding:
    def __init__(self, init):
        self.init = init

    def window(self, *args):
        raise RuntimeError("generator failed")


# ----------------------------------------------------------------------------- lazy and async
def test_lazy_parameters_saved_in_bounded_windows(tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "LAZY_BLOCK_BYTES", 4096)
    w = Parameter(initializer("normal", (64, 32), sporax.float32), name="w")
    expected = w.init.window(w._seed, (64, 32), sporax.float32, (0, 0), (64, 32))
    calls = []
    real = w.init.window

    class Spy:
        def window(self, seed, full, dtype, offsets, sizes):
            calls.append(sizes)
            return real(seed, full, dtype, offsets, sizes)

    w.init = Spy()
    path = str(tmp_path / "lazy.ckpt")
    save_checkpoint([w], path)
    assert w.has_init  # saving does not materialize the parameter
    assert calls and all(int(np.prod(s)) * 4 <= 4096 for s in calls)
    np.testing.assert_array_equal(load_checkpoint(path)["w"].asnumpy(), expected)


def test_async_save(tmp_path):
    net = Nested()
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(net, path, async_save=True)
    net.dense.weight.set_data(Tensor(np.zeros((3, 4)), sporax.float32))  # after the snapshot
    ser._wait_async_save()
    assert not ser.async_ckpt_thread_status()
    assert load_checkpoint(path)["dense.weight"].asnumpy()[2, 3] == 11


def test_split_threshold_applies_to_saves(tmp_path, monkeypatch):
    monkeypatch.setattr(ckf, "SPLIT_BYTES", 1000)
    path = str(tmp_path / "a.ckpt")
    save_checkpoint([{"name": "big", "data": Tensor(np.arange(1000, dtype=np.float32))}], path)
    with ckf.CkptReader(path) as r:
        assert [n for _, n in r.records["big"].segments] == [1000, 1000, 1000, 1000]
    np.testing.assert_array_equal(load_checkpoint(path)["big"].asnumpy(), np.arange(1000, dtype=np.float32))


# ----------------------------------------------------------------------------- sharding
LAYOUT = ([2, 4], [1, -1], [16, 32])  # spec §3.3 A: dim 0 split in two along dev_mat axis 0


def sharded_net(rank: int):
    sporax.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, global_rank=rank)
    sporax.set_seed(7)
    net = nn.Cell()
    net.w = Parameter(initializer("normal", (32, 32), sporax.float32))
    net.b = Parameter(Tensor(np.arange(4), sporax.float32))
    net.parameter_layout_dict = {"w": LAYOUT}
    return net


def full_w() -> np.ndarray:
    sporax.reset_auto_parallel_context()
    sporax.set_seed(7)
    w = Parameter(initializer("normal", (32, 32), sporax.float32), name="w")
    return w.asnumpy()


@pytest.mark.parametrize("materialize", [False, True])
def test_rank_slices_then_merge(tmp_path, materialize):
    files = []
    for rank in (0, 5):  # slice 0 (rows 0-15) and slice 1 (rows 16-31)
        net = sharded_net(rank)
        if materialize:
            net.w.init_data(layout=LAYOUT, set_sliced=True)
        path = str(tmp_path / f"rank{rank}.ckpt")
        save_checkpoint(net, path, integrated_save=False)
        with ckf.CkptReader(path) as r:
            assert r.records["w"].shape == (16, 32)
            assert r.records["w"].layout["full_shape"] == [32, 32]
            assert r.records["w"].layout["offsets"] == [16 * (rank // 4), 0]
        files.append(path)
    out = str(tmp_path / "full.ckpt")
    merge_checkpoints(files, out)
    merged = load_checkpoint(out)
    np.testing.assert_array_equal(merged["w"].asnumpy(), full_w())
    np.testing.assert_array_equal(merged["b"].asnumpy(), np.arange(4))
    with pytest.raises(ValueError, match=r"cannot cover its full shape \(32, 32\)"):
        merge_checkpoints(files[:1], str(tmp_path / "part.ckpt"))


@pytest.mark.parametrize("ext", [".ckpt", ".safetensors"])
def test_sharded_load_reads_only_the_window(tmp_path, monkeypatch, ext):
    full = full_w()
    path = str(tmp_path / ("full" + ext))
    save_checkpoint(
        [{"name": "w", "data": Tensor(full)}, {"name": "b", "data": Tensor(np.ones(4), sporax.float32)}], path
    )
    net = sharded_net(5)
    read_names = []
    reader_cls = ckf.CkptReader if ext == ".ckpt" else SafetensorsReader
    real_read = reader_cls.read
    monkeypatch.setattr(reader_cls, "read", lambda self, name: read_names.append(name) or real_read(self, name))
    load_checkpoint(path, net=net)
    assert read_names == ["b"]  # w came through read_window
    assert net.w.shape == (16, 32) and net.w.sliced
    np.testing.assert_array_equal(net.w.asnumpy(), full[16:32])


def test_full_dict_into_sliced_parameter(tmp_path):
    full = full_w()
    net = sharded_net(1)
    net.w.init_data(layout=LAYOUT, set_sliced=True)
    pd = {"w": Parameter(Tensor(full), name="w")}
    assert load_param_into_net(net, pd) == (["b"], [])
    np.testing.assert_array_equal(net.w.asnumpy(), full[:16])


# ----------------------------------------------------------------------------- CLI
def test_cli_inspect_convert_merge(tmp_path, capsys):
    src = os.path.join(FIXTURES, "ms_nested.ckpt")
    assert ckpt_cli.main(["inspect", src]) == 0
    out = capsys.readouterr().out
    assert "dense.weight  (3, 4)  Float32" in out and "8 entries" in out
    st_path = str(tmp_path / "n.safetensors")
    assert ckpt_cli.main(["convert", src, st_path]) == 0
    back = str(tmp_path / "n.ckpt")
    assert ckpt_cli.main(["convert", st_path, back, "--crc"]) == 0
    a, b = load_checkpoint(src), load_checkpoint(back)
    assert set(a) == set(b) and b["note"] == "hello"
    np.testing.assert_array_equal(a["head.weight"].asnumpy(), b["head.weight"].asnumpy())
    assert ckpt_cli.main(["inspect", os.path.join(FIXTURES, "make_fixtures.py")]) == 2
    assert "error: Checkpoint file" in capsys.readouterr().err
    files = []
    for rank in (0, 4):
        net = sharded_net(rank)
        files.append(str(tmp_path / f"r{rank}.ckpt"))
        save_checkpoint(net, files[-1], integrated_save=False)
    capsys.readouterr()
    assert ckpt_cli.main(["inspect", files[1]]) == 0
    assert "full (32, 32) at (16, 0)" in capsys.readouterr().out
    assert ckpt_cli.main(["merge", "-o", str(tmp_path / "m.ckpt"), *files]) == 0


def test_python_dash_m_sporax_ckpt(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), REPO])))
    out = subprocess.run(
        [sys.executable, "-m", "sporax", "ckpt", "inspect", os.path.join(FIXTURES, "ms_split.ckpt")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "big    (10, 100)  Float32" in out and "CRC32 present and verified" in out


def test_full_parameters_with_layouts(tmp_path):
    """integrated_save=True writes the full tensor (a lazy one generated, never sliced);
    integrated_save=False cuts this rank's window out of a full or global-array parameter."""
    full = full_w()
    net = sharded_net(6)
    save_checkpoint(net, str(tmp_path / "int.ckpt"))
    assert net.w.has_init
    np.testing.assert_array_equal(load_checkpoint(str(tmp_path / "int.ckpt"))["w"].asnumpy(), full)
    net.w.set_data(Tensor(full))
    save_checkpoint(net, str(tmp_path / "r6.ckpt"), integrated_save=False)
    with ckf.CkptReader(str(tmp_path / "r6.ckpt")) as r:
        assert r.records["w"].layout["offsets"] == [16, 0]
        np.testing.assert_array_equal(r.read("w"), full[16:])
    net.w.to_global(LAYOUT)
    save_checkpoint(net, str(tmp_path / "g6.ckpt"), integrated_save=False)
    np.testing.assert_array_equal(load_checkpoint(str(tmp_path / "g6.ckpt"))["w"].asnumpy(), full[16:])


def test_optimizer_shard_slices_merge(tmp_path):
    """Spec §3.4 example D: with the optimizer shard, rank 5 keeps rows 20-23; all 8 ranks merge."""
    opt_layout = (*LAYOUT, 0, True, "opt_group")
    files = []
    for rank in range(8):
        net = sharded_net(rank)
        net.parameter_layout_dict = {"w": opt_layout}
        files.append(str(tmp_path / f"r{rank}.ckpt"))
        save_checkpoint(net, files[-1], integrated_save=False)
    with ckf.CkptReader(files[5]) as r:
        assert r.records["w"].shape == (4, 32) and r.records["w"].layout["offsets"] == [20, 0]
    merge_checkpoints(files, str(tmp_path / "full.ckpt"))
    np.testing.assert_array_equal(load_checkpoint(str(tmp_path / "full.ckpt"))["w"].asnumpy(), full_w())
    net = sharded_net(5)
    net.parameter_layout_dict = {"w": opt_layout}
    load_checkpoint(str(tmp_path / "full.ckpt"), net=net)
    np.testing.assert_array_equal(net.w.asnumpy(), full_w()[20:24])
