"""Checkpoints of sharded training that reshard (issue 9 part 4): strategy files, merging,
transforming N-rank checkpoints to M ranks, and loading them into a differently sharded net,
optimizer state included, each rank reading only its own windows.

Two kinds of sharded runs: real semi-auto parallel training (``shard`` strategies on the
layers' primitives; ``test_semi_*``), and, for layouts semi-auto parallel does not produce (the
optimizer shard of semi-auto runs), ``place`` below: every parameter becomes a ``jax.Array``
sharded by its layout (exact windows of its initializer), layouts go to
``parameter_layout_dict``, and the optimizer's moments are additionally split along dimension
0 over their replicas, in a plain GRAPH_MODE step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import sporax as sp
from sporax import Parameter, Tensor, nn
from sporax.common.initializer import initializer
from sporax.parallel import _strategy as st
from sporax.parallel.layout import Layout
from sporax.train import _ckpt_format as ckf
from sporax.train import _transform as tr

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

L8 = {"fc1.weight": [0, -1], "fc1.bias": [0], "fc2.weight": [-1, 0], "fc2.bias": [-1]}  # dev_mat [2, 4]
L2 = {"fc1.weight": [-1, -1], "fc1.bias": [-1], "fc2.weight": [0, -1], "fc2.bias": [0]}  # dev_mat [2]
L4 = {"fc1.weight": [0, 1], "fc1.bias": [0], "fc2.weight": [-1, 0], "fc2.bias": [-1]}  # dev_mat [2, 2]


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(16, 32)
        self.fc2 = nn.Dense(32, 8)

    def construct(self, x):
        return self.fc2(self.fc1(x))


def megatron(dp: int, mp: int):
    """Column-parallel fc1 and row-parallel fc2 over a "model" axis of ``mp`` devices."""
    def shard(net):
        net.fc1.matmul.shard(((dp, 1), (mp, 1)))
        net.fc1.bias_add.shard(((dp, mp), (mp,)))
        net.fc2.matmul.shard(((dp, mp), (1, mp)))
    return shard


def build(opt="adam", shard=None):
    sp.set_seed(3)
    net = Net()
    if shard is not None:
        shard(net)
    optimizer = nn.Adam(net.trainable_params(), 1e-2) if opt == "adam" else nn.Momentum(
        net.trainable_params(), 0.1, 0.9)
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)


def _split(dev_mat, tmap, shape) -> list:
    return [n // s for n, s in zip(shape, Layout(dev_mat, tmap, [1] * len(tmap)).strategy)]


def _opt_layout(rec: Layout) -> Layout:
    """The optimizer shard as a layout: dim 0 split by its own axes, then by the replica axes."""
    d = len(rec.dev_mat)
    used = {k for e in rec.tensor_map for k in ((e,) if isinstance(e, int) else e) if k != -1}
    rep = tuple(k for k in range(d - 1, -1, -1) if k not in used and rec.dev_mat[d - 1 - k] > 1)
    first = rec.tensor_map[0]
    first = () if first == -1 else (first,) if isinstance(first, int) else tuple(first)
    tm = [first + rep, *rec.tensor_map[1:]]
    tm = [(e[0] if len(e) == 1 else -1 if not e else e) if isinstance(e, tuple) else e for e in tm]
    return Layout(rec.dev_mat, tm, _split(rec.dev_mat, tm, rec.full_shape))


def place(train, dev_mat, layouts, opt_shard=True):
    """Shard ``train``'s parameters as semi-auto parallel and the parallel optimizer would."""
    n = int(np.prod(dev_mat))
    pld = {}
    for _, p in train.parameters_and_names():
        base = p.name.split(".", 1)[1] if p.name.startswith(("moment1.", "moment2.", "moments.")) else p.name
        if base not in layouts:
            continue
        rec = Layout(dev_mat, layouts[base], _split(dev_mat, layouts[base], p.shape))
        group = len(rec.replica_group(0))
        if opt_shard and base != p.name and group > 1 and p.shape[0] % (group * rec.strategy[0]) == 0:
            pld[p.name] = (*rec.to_mindspore()[:5], "opt")
            p.to_global(_opt_layout(rec), devices=jax.devices()[:n])
        else:
            pld[p.name] = rec.to_mindspore()
            p.to_global(rec, devices=jax.devices()[:n])
    train.parameter_layout_dict = pld
    return train


def data():
    rng = np.random.default_rng(0)
    return [(Tensor(rng.standard_normal((4, 16)).astype(np.float32)),
             Tensor(rng.standard_normal((4, 8)).astype(np.float32))) for _ in range(4)]


def steps(train, batches) -> list[float]:
    return [float(train(x, y).asnumpy()) for x, y in batches]


def params(train) -> dict:
    return {p.name: np.asarray(p.asnumpy()) for _, p in train.parameters_and_names()}


def save_ranks(train, directory, n: int, name="net.ckpt") -> list[str]:
    """Each of the ``n`` ranks saves its own slices (rank emulated through global_rank)."""
    files = []
    for r in range(n):
        sp.set_auto_parallel_context(global_rank=r)
        os.makedirs(os.path.join(directory, f"rank_{r}"), exist_ok=True)
        files.append(os.path.join(directory, f"rank_{r}", name))
        sp.save_checkpoint(train, files[-1], integrated_save=False)
    sp.set_auto_parallel_context(global_rank=0)
    return files


def semi(n: int, **kw):
    """A context for ``place``d runs over ``n`` devices (ranks emulated through global_rank)."""
    sp.reset_auto_parallel_context()
    if n > 1:
        sp.set_auto_parallel_context(device_num=n, **kw)


def semi_auto(n: int, **kw):
    """Real semi-auto parallel over ``n`` devices, the whole batch on every device."""
    sp.reset_auto_parallel_context()
    if n > 1:
        sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=n, full_batch=True, **kw)


def _shards(train, name: str) -> set:
    p = next(q for _, q in train.parameters_and_names() if q.name == name)
    return {s.data.shape for s in p._value.addressable_shards}


@pytest.fixture
def reference():
    """Four uninterrupted unsharded steps: losses and final parameters."""
    sp.set_context(mode=sp.GRAPH_MODE)
    batches = data()
    ref = build()
    return batches, steps(ref, batches), params(ref)


def _check_same(train, losses, reference):
    _, ref_losses, ref_params = reference
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    got = params(train)
    assert set(got) == set(ref_params)
    for name, value in ref_params.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------- semi-auto parallel
def test_semi_auto_train_8_save_load_into_2_and_1_continue(tmp_path, reference):
    """Real semi-auto training on 8 devices (Megatron MLP, dp 2 x mp 4), each rank saving its
    slices; loaded into a 2-device semi-auto net (mp 2) and a 1-device net, optimizer state
    included; 2 more steps equal 4 uninterrupted steps."""
    batches = reference[0]
    s8 = str(tmp_path / "s8.ckpt")
    semi_auto(8, strategy_ckpt_config={"save_file": s8, "only_trainable_params": False})
    t8 = build(shard=megatron(2, 4))
    first = steps(t8, batches[:2])
    assert t8.parameter_layout_dict["fc1.weight"][:3] == ([2, 4], [0, -1], [8, 16])
    assert _shards(t8, "moment1.fc1.weight") == {(8, 16)}
    strategy, ops = st.read_strategy_file(s8, "test")  # written when the semi-auto step compiled
    assert strategy["moment2.fc2.weight"].tmap == (-1, 0) and ops["network._backbone.fc1.matmul"] == [(2, 1), (4, 1)]
    files = save_ranks(t8, str(tmp_path / "c8"), 8)
    with ckf.CkptReader(files[6]) as r:  # rank 6: mp index 2
        assert r.records["moment1.fc1.weight"].shape == (8, 16)
        assert r.records["moment1.fc1.weight"].layout["offsets"] == [16, 0]
    semi_auto(2)
    t2 = build(shard=megatron(1, 2))
    t2(*batches[0])  # compiled and placed (this step's values are then overwritten)
    sp.load_distributed_checkpoint(t2, files, train_strategy_filename=s8)
    assert _shards(t2, "fc1.weight") == {(16, 16)} and _shards(t2, "moment2.fc2.weight") == {(8, 16)}
    _check_same(t2, first + steps(t2, batches[2:]), reference)
    semi_auto(1)
    t1 = build()
    sp.load_distributed_checkpoint(t1, files)
    _check_same(t1, first + steps(t1, batches[2:]), reference)


def test_semi_auto_train_1_load_into_4_with_predict_layout(tmp_path, reference, monkeypatch):
    """1 -> 4: a 4-device semi-auto net loads a 1-device checkpoint before its first step,
    given its layouts (``predict_strategy``); every device reads only its own window."""
    batches = reference[0]
    t1 = build()
    first = steps(t1, batches[:2])
    path = str(tmp_path / "one.ckpt")
    sp.save_checkpoint(t1, path)
    semi_auto(4)
    probe = build(shard=megatron(1, 4))
    probe(*batches[0])
    layouts = dict(probe.parameter_layout_dict)
    t4 = build(shard=megatron(1, 4))
    windows = []
    real = tr.Sources.read_window
    monkeypatch.setattr(tr.Sources, "read_window", lambda self, name, o, z: windows.append((name, tuple(z))) or
                        real(self, name, o, z))
    sp.load_distributed_checkpoint(t4, [path], predict_strategy=layouts)
    assert sorted(z for n, z in windows if n == "moment1.fc1.weight") == [(8, 16)] * 4  # 4 devices, 4 windows
    before = next(p for _, p in t4.parameters_and_names() if p.name == "fc1.weight")._value
    assert {s.data.shape for s in before.addressable_shards} == {(8, 16)}
    _check_same(t4, first + steps(t4, batches[2:]), reference)


# ----------------------------------------------------------------------------- placed layouts
@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_train_8_save_load_into_2_and_1_continue(tmp_path, reference, fmt):
    batches = reference[0]
    semi(8)
    t8 = place(build(), [2, 4], L8)
    first = steps(t8, batches[:2])
    moment = t8.parameter_layout_dict["moment1.fc1.weight"]
    assert moment[5] == "opt"
    files = save_ranks(t8, str(tmp_path / "c8"), 8, f"net.{fmt}")
    with sp.train._ckpt_io.open_checkpoint(files[5], fmt) as r:  # rank 5: slice 1 of 4, optimizer half 1
        assert r.records["fc1.weight"].shape == (8, 16) and r.records["fc1.weight"].layout["offsets"] == [8, 0]
        assert r.records["moment1.fc1.weight"].shape == (4, 16)
        assert r.records["moment1.fc1.weight"].layout["offsets"] == [12, 0]
    for n, layouts in [(2, L2), (1, None)]:
        semi(n)
        t = build()
        if layouts:
            place(t, [n], layouts)
        assert sp.load_distributed_checkpoint(t, files) is True
        if layouts:
            w = t.fc2.weight if hasattr(t, "fc2") else t.network._backbone.fc2.weight
            assert len(w._value.addressable_shards) == 2 and w._value.addressable_shards[0].data.shape == (4, 32)
        _check_same(t, first + steps(t, batches[2:]), reference)


def test_train_1_save_load_into_4_continue(tmp_path, reference):
    batches = reference[0]
    t1 = build()
    first = steps(t1, batches[:2])
    path = str(tmp_path / "one.ckpt")
    sp.save_checkpoint(t1, path)
    semi(4)
    t4 = place(build(), [2, 2], L4)
    sp.load_distributed_checkpoint(t4, [path])
    m = next(p for _, p in t4.parameters_and_names() if p.name == "moment2.fc1.weight")
    assert {s.data.shape for s in m._value.addressable_shards} == {(16, 8)}  # split 2 x 2, no replicas
    _check_same(t4, first + steps(t4, batches[2:]), reference)


def test_transform_checkpoints_with_strategy_files(tmp_path, reference):
    """8 ranks -> 2 ranks through strategy files written at compile time; each of the 2 ranks
    then loads only its own converted file; continuing equals uninterrupted training."""
    batches = reference[0]
    s8, s2 = str(tmp_path / "s8.ckpt"), str(tmp_path / "s2.json")
    semi(8, strategy_ckpt_config={"save_file": s8, "only_trainable_params": False})
    t8 = place(build(), [2, 4], L8)
    first = steps(t8, batches[:2])
    assert os.path.isfile(s8)  # written when the sharded step compiled
    src = sp.build_searched_strategy(s8)
    assert set(src) == set(t8.parameter_layout_dict)
    assert src["moment1.fc1.weight"].opt_weight_shard_size == 2 and src["moment1.fc1.weight"].opt_weight_shard_step == 4
    save_ranks(t8, str(tmp_path / "c8"), 8)
    semi(2, strategy_ckpt_config={"save_file": s2, "only_trainable_params": False})
    probe = place(build(), [2], L2)
    probe(*batches[0])  # compiling the destination writes its strategy file
    assert sp.build_searched_strategy(s2)["fc2.weight"].tensor_shape == (8, 32)
    assert sp.rank_list_for_transform(1, s8, s2) == list(range(7, -1, -1))  # optimizer shards: all 8 distinct
    sp.transform_checkpoints(str(tmp_path / "c8"), str(tmp_path / "c2"), "net", s8, s2)
    out = [str(tmp_path / "c2" / f"rank_{r}" / f"net{r}.ckpt") for r in range(2)]
    with ckf.CkptReader(out[1]) as r:
        assert r.records["fc2.weight"].shape == (4, 32) and r.records["fc2.weight"].layout["offsets"] == [4, 0]
        assert r.records["fc1.weight"].shape == (32, 16)
    semi(2)
    t2 = place(build(), [2], L2)
    sp.load_distributed_checkpoint(t2, out, train_strategy_filename=s2)
    _check_same(t2, first + steps(t2, batches[2:]), reference)


def test_mindspore_style_rank_files_need_the_strategy(tmp_path):
    """Rank files without sporax's layout records (as MindSpore writes them) are placed by the
    source strategy file; the transform to one rank rebuilds the full tensors."""
    sp.set_seed(5)
    full = {"w": np.arange(32 * 8, dtype=np.float32).reshape(32, 8), "b": np.arange(8, dtype=np.float32)}
    strategy = {"w": st.make_layouts([2, 4], [1, -1], None, 0, 1, -1), "b": st.make_layouts([2, 4], [-1])}
    s = str(tmp_path / "src.ckpt")
    st.save_strategy_file(s, strategy)
    for r in range(8):
        offsets, sizes = st.param_window(strategy["w"], (32, 8), r)
        os.makedirs(tmp_path / "src" / f"rank_{r}")
        w = full["w"][offsets[0]:offsets[0] + sizes[0]]
        sp.save_checkpoint({"w": Tensor(w), "b": Tensor(full["b"])}, str(tmp_path / "src" / f"rank_{r}" / "a.ckpt"))
    assert st.param_window(strategy["w"], (32, 8), 5) == ((20, 0), (4, 8))  # slice 1, optimizer quarter 1
    sp.transform_checkpoints(str(tmp_path / "src"), str(tmp_path / "dst"), "m", s, None)
    merged = sp.load_checkpoint(str(tmp_path / "dst" / "rank_0" / "m0.ckpt"))
    np.testing.assert_array_equal(merged["w"].asnumpy(), full["w"])
    dst = _written(tmp_path, {"w": st.make_layouts([2], [0, -1], [32, 8])}, ".json")
    assert sp.rank_list_for_transform(1, s, dst) == [7, 6, 5, 4, 0]  # rows 16-31: the 4 optimizer quarters; b
    with pytest.raises(ValueError, match=r"has shape \(4, 8\), but the source strategy gives rank 0 a slice"):
        sp.transform_checkpoints(str(tmp_path / "src"), str(tmp_path / "bad"), "m",
                                 _written(tmp_path, {"w": st.make_layouts([8], [-1, -1], [32, 8])}, ".json"), None)
    assert not os.path.exists(tmp_path / "bad" / "rank_0" / "m0.ckpt")


def _written(tmp_path, layouts, ext=".ckpt") -> str:
    path = str(tmp_path / ("other" + ext))
    st.save_strategy_file(path, layouts)
    return path


# ----------------------------------------------------------------------------- window reads
def test_each_rank_reads_only_its_windows(tmp_path, monkeypatch):
    semi(8)
    t8 = place(build(), [2, 4], L8)
    files = save_ranks(t8, str(tmp_path / "c8"), 8)
    total = sum(os.path.getsize(f) for f in files)
    read_bytes, full_reads = [], []
    real_window, real_read = ckf.CkptReader.read_window, ckf.CkptReader.read
    monkeypatch.setattr(ckf.CkptReader, "read_window", lambda self, name, o, s: read_bytes.append(
        int(np.prod(s)) * self.np_dtype(self.records[name]).itemsize) or real_window(self, name, o, s))
    monkeypatch.setattr(ckf.CkptReader, "read", lambda self, name: full_reads.append(name) or real_read(self, name))
    semi(2)
    sp.set_auto_parallel_context(global_rank=1)
    t = build()  # rank 1 of 2 holds only its slices (lazy parameters, layouts listed)
    t.parameter_layout_dict = {p.name: Layout([2], L2[p.name], _split([2], L2[p.name], p.shape)).to_mindspore()
                               for _, p in t.parameters_and_names() if p.name in L2}
    sp.load_distributed_checkpoint(t, files)
    assert full_reads == []
    w = t.network._backbone.fc2.weight
    assert w.shape == (4, 32) and w.sliced
    # rank 1 reads fc2.weight rows 4-7 only (plus the replicated tensors, and the small scalars)
    assert sum(read_bytes) < total
    read_bytes.clear()
    t.parameter_layout_dict = {}
    sp.load_distributed_checkpoint(build(), files)  # unsharded: reads every distinct slice once
    assert sum(read_bytes) == sum(p.size * p.dtype.itemsize for _, p in build().parameters_and_names())


def test_window_load_peak_memory_is_the_window(tmp_path):
    """A subprocess loads 1/8 of a 256 MiB parameter from 8 rank files: its peak RSS grows by
    about the window, not the tensor (the mmap reader touches only the window's pages)."""
    script = textwrap.dedent(f"""
        import os, resource, sys
        sys.path.insert(0, {REPO!r})
        import numpy as np
        import sporax as sp
        from sporax import Parameter, Tensor, nn
        from sporax.common.initializer import initializer
        rows = 8192
        d = {str(tmp_path)!r}
        files = []
        for r in range(8):
            os.makedirs(f"{{d}}/rank_{{r}}", exist_ok=True)
            files.append(f"{{d}}/rank_{{r}}/a.ckpt")
            sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, global_rank=r)
            net = nn.Cell()
            net.w = Parameter(initializer("ones", (rows, 8192), sp.float32), name="w")
            net.parameter_layout_dict = {{"w": ([8], [0, -1], [rows // 8, 8192])}}
            sp.save_checkpoint(net, files[-1], integrated_save=False)
        sp.set_auto_parallel_context(device_num=2, global_rank=1)
        net = nn.Cell()
        net.w = Parameter(initializer("zeros", (rows, 8192), sp.float32), name="w")
        net.parameter_layout_dict = {{"w": ([2, 4], [-1, 0], [rows, 2048])}}  # a column block
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sp.load_distributed_checkpoint(net, files)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert net.w.shape == (rows, 2048) and float(net.w.asnumpy().sum()) == rows * 2048
        print((after - before) * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr[-2000:]
    grown = int(out.stdout.split()[-1])
    window = 8192 * 2048 * 4  # 64 MiB of a 256 MiB tensor
    assert grown < 2.5 * window, grown  # the window, its coverage mask and page-cache slack; not 256 MiB


# ----------------------------------------------------------------------------- integrated save
def test_integrated_save_of_a_sharded_run_streams_row_bands(tmp_path, reference, monkeypatch):
    batches = reference[0]
    semi(8)
    t8 = place(build(), [2, 4], L8)
    steps(t8, batches[:2])
    expected = params(t8)
    bands = []
    real = sp.train._ckpt_io.sharded_chunks

    def spy(value):
        for band in real(value):
            bands.append(band.shape)
            yield band

    monkeypatch.setattr(sp.train._ckpt_io, "sharded_chunks", spy)
    path = str(tmp_path / "full.ckpt")
    sp.save_checkpoint(t8, path)
    rows = [shape[0] for shape in bands if shape[1:] == (16,)]  # fc1.weight and its moments
    assert len(rows) >= 3 * 2 and max(rows) < 32  # each streamed in several row bands, never whole
    loaded = sp.load_checkpoint(path)
    for name, value in expected.items():
        np.testing.assert_array_equal(loaded[name].asnumpy(), value, err_msg=name)
        assert loaded[name].shape == value.shape


# ----------------------------------------------------------------------------- strategy files
def test_strategy_file_formats_round_trip_and_match_mindspore_bytes(tmp_path):
    golden = os.path.join(FIXTURES, "ms_strategy.ckpt")
    layouts, ops = st.read_strategy_file(golden, "test")
    assert layouts["fc.weight"].dev_mat == (2, 4) and layouts["fc.weight"].tmap == (0, -1)
    assert layouts["emb.table"].tmap == ((2, 1), -1)
    assert (layouts["fc.bias"].opt_weight_shard_step, layouts["fc.bias"].opt_weight_shard_size) == (4, 2)
    assert ops == {"Default/network-WithLossCell/_backbone-Net/MatMul-op0": [(2, 1), (1, 4)]}
    mine = {"fc.weight": st.make_layouts([2, 4], [0, -1]), "fc.bias": st.make_layouts([2, 4], [-1], None, 0, 4, 2),
            "emb.table": st.make_layouts([2, 2, 2], [(2, 1), -1])}
    st.save_strategy_file(str(tmp_path / "s.ckpt"), mine, ops)
    with open(golden, "rb") as f, open(tmp_path / "s.ckpt", "rb") as g:
        assert f.read() == g.read()  # byte for byte what MindSpore's protobuf classes write
    js = str(tmp_path / "s.json")
    st.save_strategy_file(js, {"fc.weight": st.make_layouts([2, 4], [0, -1], [32, 16])}, ops)
    back = sp.build_searched_strategy(js)
    assert back["fc.weight"].tensor_shape == (32, 16) and back["fc.weight"].dev_matrix[0].dim == [2, 4]
    assert st.full_shape_of(layouts["fc.bias"], (4,)) == (8,)


def test_strategy_written_at_compile_with_only_trainable_params(tmp_path, reference):
    batches = reference[0]
    path = str(tmp_path / "strategy.json")
    semi(8, strategy_ckpt_config={"save_file": path})
    assert sp.get_auto_parallel_context("strategy_ckpt_config") == {"load_file": "", "save_file": path,
                                                                    "only_trainable_params": True}
    t8 = place(build(), [2, 4], L8)
    t8.network._backbone.fc2.bias.requires_grad = False
    steps(t8, batches[:1])
    got = sp.build_searched_strategy(path)
    assert "fc2.bias" not in got and "moment1.fc2.bias" in got  # requires_grad decides (moments are clones)
    assert got["fc1.weight"].tensor_map[0].dim == [0, -1] and got["fc1.weight"].tensor_shape == (32, 16)
    sp.set_auto_parallel_context(strategy_ckpt_save_file=str(tmp_path / "old.ckpt"))
    assert sp.get_auto_parallel_context("strategy_ckpt_config")["save_file"] == str(tmp_path / "old.ckpt")
    sp.set_auto_parallel_context(strategy_ckpt_config={"load_file": path})
    assert st.loaded_strategy()[0]["fc2.weight"].tmap == (-1, 0)


def test_strategy_ckpt_config_validation():
    with pytest.raises(TypeError, match="strategy_ckpt_config"):
        sp.set_auto_parallel_context(strategy_ckpt_config="x.json")
    with pytest.raises(ValueError, match=r"unknown keys \['save'\]"):
        sp.set_auto_parallel_context(strategy_ckpt_config={"save": "x"})
    with pytest.raises(TypeError, match="only_trainable_params"):
        sp.set_auto_parallel_context(strategy_ckpt_config={"save_file": "x", "only_trainable_params": 1})
    assert sp.get_auto_parallel_context("strategy_ckpt_save_file") == ""  # nothing was written


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"\x1a\x05\x0a\x01w", "has no name or no value|runs past"),
    (b"\x1a\x09\x0a\x01w\x12\x04\x28\x00\x30\x00", "no dev_matrix or tensor_map"),
    (b"\xff\xff", "truncated|unsupported wire"),
])
def test_damaged_strategy_files(tmp_path, content, match):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.ckpt.*({match})|({match})"):
        sp.build_searched_strategy(str(path))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"parallel_layout_item": {"w": {"dev_matrix": [2], "tensor_map": [3]}}}')
    with pytest.raises(ValueError, match=r"bad.json.*'w'.*tensor_map"):
        sp.build_searched_strategy(str(bad_json))
    with pytest.raises(TypeError, match="strategy file name should be a str"):
        sp.build_searched_strategy(3)
    with pytest.raises(ValueError, match="no such strategy file"):
        sp.build_searched_strategy(str(tmp_path / "none.ckpt"))


# ----------------------------------------------------------------------------- merge_sliced_parameter
def test_merge_sliced_parameter():
    full = np.arange(32 * 8, dtype=np.float32).reshape(32, 8)
    parts = [Parameter(Tensor(full[i * 8:(i + 1) * 8]), name="w") for i in range(4)]
    merged = sp.merge_sliced_parameter(parts)
    np.testing.assert_array_equal(merged.asnumpy(), full)
    assert merged.name == "w"
    strategy = {"w": st.make_layouts([2, 4], [-1, 0])}  # columns split 4 ways, 2 replicas
    cols = [Parameter(Tensor(full[:, (r % 4) * 2:(r % 4) * 2 + 2]), name="w") for r in range(8)]
    np.testing.assert_array_equal(sp.merge_sliced_parameter(cols, strategy).asnumpy(), full)
    np.testing.assert_array_equal(sp.merge_sliced_parameter(cols, {"w": ([2, 4], [-1, 0], [32, 2])}).asnumpy(), full)
    with pytest.raises(ValueError, match="one slice per device of the layout \\(8\\), but got 4"):
        sp.merge_sliced_parameter(cols[:4], strategy)
    with pytest.raises(KeyError, match="'w' should be a key"):
        sp.merge_sliced_parameter(cols, {"v": strategy["w"]})
    with pytest.raises(TypeError, match="should be a list"):
        sp.merge_sliced_parameter(tuple(parts))
    with pytest.raises(TypeError, match="index 1 of 'sliced_parameters' should be a Parameter"):
        sp.merge_sliced_parameter([parts[0], full])
    with pytest.raises(ValueError, match="same name"):
        sp.merge_sliced_parameter([parts[0], Parameter(Tensor(full[:8]), name="v")])


def test_uneven_split_and_opt_shard_windows():
    pl = st.make_layouts([2], [0, -1])
    pl.param_split_shape, pl.indices_offset = [st.Dims([3, 5])], [st.Dims([0, 3])]
    assert st.full_shape_of(pl, (3, 4)) == (8, 4)
    assert st.param_window(pl, (8, 4), 1) == ((3, 0), (5, 4))
    a = Parameter(Tensor(np.zeros((3, 4), np.float32)), name="u")
    b = Parameter(Tensor(np.ones((5, 4), np.float32)), name="u")
    np.testing.assert_array_equal(sp.merge_sliced_parameter([a, b], {"u": pl}).asnumpy()[3:], np.ones((5, 4)))
    whole = st.make_layouts([2, 4], [0, -1], None, 0, 4, -1)  # -1: the whole replica group of 2
    assert st.param_window(whole, (16, 2), 6) == ((10, 0), (2, 2))


# ----------------------------------------------------------------------------- bad inputs
def test_transform_bad_inputs_leave_nothing(tmp_path):
    semi(8)
    t8 = place(build(), [2, 4], L8)
    save_ranks(t8, str(tmp_path / "c8"), 8)
    s = str(tmp_path / "s.ckpt")
    st.save_strategy_file(s, st.strategy_of_net(t8, False))
    os.rename(tmp_path / "c8" / "rank_3", tmp_path / "gone")
    with pytest.raises(ValueError, match=r"source ranks \[3\] are needed for destination rank 0"):
        sp.transform_checkpoints(str(tmp_path / "c8"), str(tmp_path / "out"), "x", s, None)
    assert not os.path.exists(tmp_path / "out" / "rank_0" / "x0.ckpt")
    with pytest.raises(NotADirectoryError, match="src_checkpoints_dir"):
        sp.transform_checkpoints(str(tmp_path / "nope"), str(tmp_path / "out"), "x")
    with pytest.raises(TypeError, match="ckpt_prefix"):
        sp.transform_checkpoints(str(tmp_path / "c8"), str(tmp_path / "out"), 3)
    with pytest.raises(TypeError, match="checkpoint_files_map"):
        sp.transform_checkpoint_by_rank(0, [], str(tmp_path / "a.ckpt"))
    with pytest.raises(ValueError, match="should end with '.ckpt'"):
        sp.transform_checkpoint_by_rank(0, {0: str(tmp_path / "c8" / "rank_0" / "net.ckpt")}, str(tmp_path / "a.bin"))
    with pytest.raises(ValueError, match="checkpoint file .* of rank 9 does not exist"):
        sp.transform_checkpoint_by_rank(0, {9: str(tmp_path / "missing.ckpt")}, str(tmp_path / "a.ckpt"))
    with pytest.raises(ValueError, match=r"'rank_id' should be in \[0, 8\)"):
        sp.rank_list_for_transform(8, s, s)
    with pytest.raises(TypeError, match="'rank_id' should be an int"):
        sp.rank_list_for_transform("0", s, s)
    # a partial set of rank files: the window cannot be covered, and nothing is written
    files = {r: str(tmp_path / "c8" / f"rank_{r}" / "net.ckpt") for r in (0, 1)}
    with pytest.raises(ValueError, match="cover only .* a rank's file is missing"):
        sp.transform_checkpoint_by_rank(0, files, str(tmp_path / "part.ckpt"), s, None)
    assert not os.path.exists(tmp_path / "part.ckpt")
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_load_distributed_checkpoint_bad_inputs_change_nothing(tmp_path):
    semi(8)
    t8 = place(build(), [2, 4], L8)
    files = save_ranks(t8, str(tmp_path / "c8"), 8)
    sp.reset_auto_parallel_context()
    target = build()
    before = params(target)
    with pytest.raises(TypeError, match="'network' should be a Cell"):
        sp.load_distributed_checkpoint("net", files)
    with pytest.raises(TypeError, match="'checkpoint_filenames' should be a non-empty list"):
        sp.load_distributed_checkpoint(target, files[0])
    with pytest.raises(ValueError, match="rank 2\\) does not exist"):
        sp.load_distributed_checkpoint(target, files[:2] + [str(tmp_path / "x.ckpt")])
    with pytest.raises(ValueError, match="unified-safetensors"):
        sp.load_distributed_checkpoint(target, files, unified_safetensors_dir=str(tmp_path))
    with pytest.raises(ValueError, match="cover only"):
        sp.load_distributed_checkpoint(target, files[:3])
    s = str(tmp_path / "s.ckpt")
    st.save_strategy_file(s, st.strategy_of_net(t8, False))
    bare = []  # MindSpore-style rank files: slices without sporax's layout records
    for r, f in enumerate(files[:4]):
        bare.append(str(tmp_path / f"bare{r}.ckpt"))
        sp.save_checkpoint({k: Tensor(v.asnumpy()) for k, v in sp.load_checkpoint(f).items()}, bare[-1])
    with pytest.raises(ValueError, match=r"one file per training device \(8 in"):
        sp.load_distributed_checkpoint(target, bare, train_strategy_filename=s)
    other = build()
    other.network._backbone.fc1.weight = Parameter(Tensor(np.zeros((32, 16), np.int32)), name="fc1.weight")
    with pytest.raises(ValueError, match="'fc1.weight' has dtype Int32 in the network but Float32"):
        sp.load_distributed_checkpoint(other, files)
    after = params(target)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)


def test_lazy_sharded_parameter_loads_its_window_through_load_checkpoint_too(tmp_path):
    """A rank file written by the transform loads into that rank's lazy sliced net with plain
    ``load_checkpoint`` (the record already is the slice)."""
    full = np.arange(64, dtype=np.float32).reshape(16, 4)
    sp.save_checkpoint({"w": Tensor(full)}, str(tmp_path / "rank_0.ckpt"))
    dst = {"w": st.make_layouts([4], [0, -1], [16, 4])}
    sp.transform_checkpoint_by_rank(2, {0: str(tmp_path / "rank_0.ckpt")}, str(tmp_path / "r2.ckpt"), None,
                                    _written(tmp_path, dst))
    sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=4, global_rank=2)
    net = nn.Cell()
    net.w = Parameter(initializer("zeros", (16, 4), sp.float32), name="w")
    net.parameter_layout_dict = {"w": ([4], [0, -1], [4, 4])}
    sp.load_checkpoint(str(tmp_path / "r2.ckpt"), net)
    np.testing.assert_array_equal(net.w.asnumpy(), full[8:12])


# ----------------------------------------------------------------------------- parallel optimizer
def popt(n: int):
    sp.reset_auto_parallel_context()
    sp.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True, device_num=n,
                                 enable_parallel_optimizer=True,
                                 parallel_optimizer_config={"parallel_optimizer_threshold": 0})


@pytest.mark.parametrize("integrated", [False, True])
def test_parallel_optimizer_train_8_load_into_2_and_1_continue(tmp_path, integrated):
    """Data parallel with the parallel optimizer on 8 devices (weights and Adam state stored 1/8
    along dim 0); saved per rank (each its rows) or integrated (gathered in row bands); loaded
    into the parallel optimizer on 2 devices and into one device: equal to uninterrupted training."""
    sp.set_context(mode=sp.GRAPH_MODE)
    rng = np.random.default_rng(1)
    batches = [(Tensor(rng.standard_normal((8, 16)).astype(np.float32)),
                Tensor(rng.standard_normal((8, 8)).astype(np.float32))) for _ in range(4)]
    sp.reset_auto_parallel_context()
    ref = build()
    reference = (batches, steps(ref, batches), params(ref))
    popt(8)
    t8 = build()
    first = steps(t8, batches[:2])
    assert _shards(t8, "moment1.fc1.weight") == {(4, 16)} and _shards(t8, "fc2.weight") == {(1, 32)}
    if integrated:
        files = [str(tmp_path / "full.ckpt")]
        sp.save_checkpoint(t8, files[0])
    else:
        files = save_ranks(t8, str(tmp_path / "c8"), 8)
        with ckf.CkptReader(files[3]) as r:
            assert r.records["moment2.fc1.weight"].shape == (4, 16)
            assert r.records["moment2.fc1.weight"].layout["offsets"] == [12, 0]
    popt(2)
    t2 = build()
    t2(*batches[0])  # compiled and sharded; its values are then overwritten
    sp.load_distributed_checkpoint(t2, files)
    assert _shards(t2, "moment1.fc1.weight") == {(16, 16)}
    _check_same(t2, first + steps(t2, batches[2:]), reference)
    sp.reset_auto_parallel_context()
    t1 = build()
    sp.load_distributed_checkpoint(t1, files)
    _check_same(t1, first + steps(t1, batches[2:]), reference)


def test_mindspore_transforms_sporax_rank_files_as_sporax_does(tmp_path):
    """Golden from MindSpore 2.10 (fixtures/make_reshard_golden.py): its build_searched_strategy
    read sporax's strategy file and its transform_checkpoints merged sporax's 8 rank files of a
    semi-auto run; sporax's transform of the same files gives the same tensors, and so does
    loading them into one device."""
    src = os.path.join(FIXTURES, "reshard_ms")
    sp.transform_checkpoints(os.path.join(src, "c8"), str(tmp_path), "m", os.path.join(src, "s8.ckpt"), None)
    golden = sp.load_checkpoint(os.path.join(src, "ms_full", "rank_0", "m0.ckpt"))
    mine = sp.load_checkpoint(str(tmp_path / "rank_0" / "m0.ckpt"))
    assert set(mine) == set(golden) and "moments.fc1.weight" in golden
    for name, value in golden.items():
        np.testing.assert_array_equal(mine[name].asnumpy(), value.asnumpy(), err_msg=name)
        assert mine[name].dtype == value.dtype
    t1 = build(opt="momentum")
    files = [os.path.join(src, "c8", f"rank_{r}", "net.ckpt") for r in range(8)]
    sp.load_distributed_checkpoint(t1, files, train_strategy_filename=os.path.join(src, "s8.ckpt"))
    for name, value in params(t1).items():
        np.testing.assert_array_equal(value, golden[name].asnumpy(), err_msg=name)


def test_semi_auto_load_file_imposes_the_saved_strategies(tmp_path, reference):
    """strategy_ckpt_config={"load_file": ...}: a net built without shard calls compiles with the
    op strategies of the file, hence the same layouts (and the same training)."""
    batches = reference[0]
    path = str(tmp_path / "s.json")
    semi_auto(8, strategy_ckpt_config={"save_file": path})
    a = build(shard=megatron(2, 4))
    losses = steps(a, batches[:1])
    semi_auto(8, strategy_ckpt_config={"load_file": path})
    b = build()
    np.testing.assert_allclose(steps(b, batches[:1]), losses, rtol=1e-6)
    assert b.parameter_layout_dict == a.parameter_layout_dict
    assert b.network._backbone.fc1.matmul.in_strategy == ((2, 1), (4, 1))


def test_crc_protected_rank_files_are_not_read_whole(tmp_path, monkeypatch):
    """A CRC check reads every byte of a file: resharding skips it (the structure is still
    validated), so a rank reads only its windows of CRC-protected files too."""
    semi(8)
    t8 = place(build(), [2, 4], L8)
    files = []
    for r in range(8):
        sp.set_auto_parallel_context(global_rank=r)
        files.append(str(tmp_path / f"r{r}.ckpt"))
        sp.save_checkpoint(t8, files[-1], integrated_save=False, crc_check=True)
    expected = params(t8)

    def no_full_pass(self, end, stored):
        raise AssertionError("the whole file was read for its CRC")

    monkeypatch.setattr(ckf.CkptReader, "_verify_crc", no_full_pass)
    sp.reset_auto_parallel_context()
    t1 = build()
    sp.load_distributed_checkpoint(t1, files)
    for name, value in params(t1).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_optimizer_shard_group_smaller_than_the_replicas():
    """optimizer_weight_shard_size k < N: a named group of k ranks splits dim 0 k ways; a rank's
    member index is its position among the replicas modulo k (groups of consecutive ranks)."""
    from sporax import communication
    from sporax.train import serialization as ser

    sp.set_auto_parallel_context(device_num=8, global_rank=5)
    communication.create_group("opt4", [4, 5, 6, 7])
    layout = ([8], [-1, -1], [16, 4], 0, True, "opt4")
    assert ser._layout_window(layout, (16, 4), 5) == ((4, 0), (4, 4))
    assert st.layouts_from_tuple(layout, (16, 4)).opt_weight_shard_size == 4
    assert ser._layout_window((*layout[:5], "unregistered"), (16, 4), 5) == ((10, 0), (2, 4))  # all 8 replicas


# ----------------------------------------------------------------------------- semi-auto + parallel optimizer
def test_semi_auto_with_parallel_optimizer_train_8_reshard_into_2_and_1(tmp_path, reference):
    """Semi-auto parallel (dp 2 x mp 4) combined with the parallel optimizer: each weight slice and
    its Adam state split again along dim 0 over the replica group of 2. Saved per rank, the
    layouts carry opt_shard_group and so does the strategy file; resharded into 2 devices
    (transform_checkpoints + load) and into 1 (load_distributed_checkpoint), 2 more steps equal
    4 uninterrupted steps, optimizer state included."""
    batches = reference[0]
    s8, s2 = str(tmp_path / "s8.ckpt"), str(tmp_path / "s2.json")
    po = {"enable_parallel_optimizer": True, "parallel_optimizer_config": {"parallel_optimizer_threshold": 0}}
    semi_auto(8, strategy_ckpt_config={"save_file": s8, "only_trainable_params": False}, **po)
    t8 = build(shard=megatron(2, 4))
    first = steps(t8, batches[:2])
    pld = t8.parameter_layout_dict
    assert pld["fc1.weight"][:3] == ([2, 4], [0, -1], [8, 16])
    for name in ("fc1.weight", "moment1.fc1.weight", "moment2.fc2.weight"):
        assert pld[name][5], name  # opt_shard_group
    assert _shards(t8, "fc1.weight") == {(4, 16)} and _shards(t8, "moment1.fc1.weight") == {(4, 16)}
    assert _shards(t8, "moment2.fc2.weight") == {(4, 8)}  # fc2 slice (8, 8), its rows halved
    src = sp.build_searched_strategy(s8)
    assert src["moment1.fc1.weight"].opt_weight_shard_size == 2
    assert src["fc2.weight"].opt_weight_shard_size == 2
    files = save_ranks(t8, str(tmp_path / "c8"), 8)
    with ckf.CkptReader(files[6]) as r:  # rank 6: mp index 2, optimizer half 1 (dp index 1)
        rec = r.records["moment1.fc1.weight"]
        assert rec.shape == (4, 16) and rec.layout["offsets"] == [20, 0]
    expected = params(t8)
    sp.reset_auto_parallel_context()
    whole = build()
    sp.load_distributed_checkpoint(whole, files, train_strategy_filename=s8)
    for name, value in params(whole).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    # 8 -> 2 through the strategy files, then each rank loads its own file
    semi_auto(2, strategy_ckpt_config={"save_file": s2, "only_trainable_params": False}, **po)
    probe = build(shard=megatron(1, 2))
    probe(*batches[0])
    assert sp.build_searched_strategy(s2)["moment1.fc1.weight"].opt_weight_shard_size <= 1  # no replicas at 2
    sp.transform_checkpoints(str(tmp_path / "c8"), str(tmp_path / "c2"), "net", s8, s2)
    out = [str(tmp_path / "c2" / f"rank_{r}" / f"net{r}.ckpt") for r in range(2)]
    semi_auto(2, **po)
    t2 = build(shard=megatron(1, 2))
    t2(*batches[0])
    sp.load_distributed_checkpoint(t2, out, train_strategy_filename=s2)
    assert _shards(t2, "fc1.weight") == {(16, 16)}
    _check_same(t2, first + steps(t2, batches[2:]), reference)
    # 8 -> 2 with the parallel optimizer still on (dp 2 x mp 1: weights split over the 2 replicas)
    semi_auto(2, **po)
    t2b = build(shard=megatron(2, 1))
    t2b(*batches[0])
    sp.load_distributed_checkpoint(t2b, files, train_strategy_filename=s8)
    assert _shards(t2b, "moment1.fc1.weight") == {(16, 16)}
    _check_same(t2b, first + steps(t2b, batches[2:]), reference)
    semi_auto(1)
    t1 = build()
    sp.load_distributed_checkpoint(t1, files, train_strategy_filename=s8)
    _check_same(t1, first + steps(t1, batches[2:]), reference)


@pytest.mark.parametrize("k", [8, 4])
def test_parallel_optimizer_data_parallel_writes_the_strategy_file(tmp_path, k):
    """Data parallel with the parallel optimizer fills no parameter_layout_dict, but its compile
    writes the strategy file of strategy_ckpt_config: replicated layouts over the 8 devices, the
    sharded weights and states with their dim-0 optimizer shard (groups of k consecutive ranks).
    transform_checkpoints then merges the 8 rank files, and reshards them into 2 ranks."""
    sp.set_context(mode=sp.GRAPH_MODE)
    rng = np.random.default_rng(1)
    batch = (Tensor(rng.standard_normal((8, 16)).astype(np.float32)),
             Tensor(rng.standard_normal((8, 8)).astype(np.float32)))
    s8, s2 = str(tmp_path / "s8.ckpt"), str(tmp_path / "s2.json")
    popt(8)
    sp.set_auto_parallel_context(strategy_ckpt_config={"save_file": s8, "only_trainable_params": False},
                                 parallel_optimizer_config={"parallel_optimizer_threshold": 0,
                                                            "optimizer_weight_shard_size": k})
    t8 = build()
    t8(*batch)
    assert t8.parameter_layout_dict == {}
    strategy = sp.build_searched_strategy(s8)
    m = strategy["moment1.fc1.weight"]
    assert m.dev_matrix[0].dim == [8] and m.tensor_map[0].dim == [-1, -1]
    assert (m.opt_weight_shard_step, m.opt_weight_shard_size) == (1, k)
    assert strategy["fc2.weight"].opt_weight_shard_size == k
    assert strategy["global_step"].opt_weight_shard_size == 0  # not sharded: replicated
    for r in (3, 6):
        assert st.param_window(m, (32, 16), r) == (((r % k) * (32 // k), 0), (32 // k, 16))
    files = save_ranks(t8, str(tmp_path / "c8"), 8)
    with ckf.CkptReader(files[6]) as r:  # the strategy file's window is where the rank's rows are
        assert r.records["moment1.fc1.weight"].layout["offsets"] == [(6 % k) * (32 // k), 0]
    expected = params(t8)
    # MindSpore-style rank files (no layout records): only the strategy file places the slices
    bare = tmp_path / "bare"
    for r, f in enumerate(files):
        os.makedirs(bare / f"rank_{r}")
        sp.save_checkpoint({n: Tensor(v.asnumpy()) for n, v in sp.load_checkpoint(f).items()},
                           str(bare / f"rank_{r}" / "net.ckpt"))
    sp.transform_checkpoints(str(bare), str(tmp_path / "c1"), "m", s8, None)
    merged = sp.load_checkpoint(str(tmp_path / "c1" / "rank_0" / "m0.ckpt"))
    for name, value in expected.items():
        np.testing.assert_array_equal(merged[name].asnumpy(), value, err_msg=name)
    popt(2)
    sp.set_auto_parallel_context(strategy_ckpt_config={"save_file": s2, "only_trainable_params": False})
    probe = build()
    probe(*batch)
    assert sp.build_searched_strategy(s2)["moment2.fc1.weight"].opt_weight_shard_size == 2
    sp.transform_checkpoints(str(bare), str(tmp_path / "c2"), "m", s8, s2)
    with ckf.CkptReader(str(tmp_path / "c2" / "rank_1" / "m1.ckpt")) as r:
        assert r.records["moment2.fc1.weight"].shape == (16, 16)
    sp.set_auto_parallel_context(strategy_ckpt_config={"save_file": ""})
    t2 = build()
    t2(*batch)
    sp.load_distributed_checkpoint(t2, [str(tmp_path / "c2" / f"rank_{r}" / f"m{r}.ckpt") for r in range(2)],
                                   train_strategy_filename=s2)
    for name, value in params(t2).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
