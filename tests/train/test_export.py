"""export / load / nn.GraphCell (file_format="STABLEHLO"), nn.ParameterUpdate, nn.WithGradCell.

MindSpore 2.10 (checked with it): ``load`` returns a graph that ``nn.GraphCell(graph)`` runs, the
GraphCell's parameters keep the exported names (``weight``, ``bias`` for a Dense), and an unknown
``file_format`` is a ValueError naming the supported ones.
"""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TwoHeads(nn.Cell):
    def __init__(self):
        super().__init__()
        self.body = nn.SequentialCell([nn.Dense(4, 8), nn.ReLU(), nn.BatchNorm1d(8)])
        self.head = nn.Dense(8, 3)

    def construct(self, x):
        h = self.body(x)
        return self.head(h), h.sum(axis=1)


def _x(n=5):
    return Tensor(np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_export_load_graph_cell_runs_the_exported_computation(tmp_path, mode):
    ms.set_context(mode=mode)
    net = TwoHeads()
    net.set_train(True)
    x = _x()
    ms.export(net, x, file_name=str(tmp_path / "net"), file_format="STABLEHLO")
    assert net.training  # the mode is restored after exporting in inference mode
    assert os.listdir(tmp_path) == ["net.stablehlo"]
    graph = ms.load(str(tmp_path / "net.stablehlo"))
    cell = nn.GraphCell(graph)
    assert [p.name for p in cell.get_parameters()] == [p.name for p in net.get_parameters()]
    net.set_train(False)
    want = net(x)
    got = cell(x)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(graph(x)[0].asnumpy(), want[0].asnumpy(), rtol=1e-6, atol=1e-6)
    # params_init replaces exported values
    zero = {"head.bias": Tensor(np.full(3, 5.0, np.float32)), "head.weight": Tensor(np.zeros((3, 8), np.float32))}
    np.testing.assert_allclose(nn.GraphCell(graph, params_init=zero)(x)[0].asnumpy(), 5.0)
    with pytest.raises(ValueError, match="input 0 should have shape"):
        cell(_x(3))
    with pytest.raises(ValueError, match="takes 1 inputs"):
        cell(x, x)


def test_graph_cell_can_be_trained_and_parameter_update_writes_back(tmp_path):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.export(nn.Dense(4, 3), _x(), file_name=str(tmp_path / "d"))
    cell = nn.GraphCell(ms.load(str(tmp_path / "d.stablehlo")))
    assert [p.name for p in cell.get_parameters()] == ["weight", "bias"]  # as MindSpore's GraphCell
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(cell, loss), nn.Momentum(cell.trainable_params(), 0.1, 0.9))
    y = Tensor(np.array([0, 1, 2, 0, 1], np.int32))
    losses = [float(step(_x(), y).asnumpy()) for _ in range(5)]
    assert losses[-1] < losses[0]
    p = Parameter(Tensor(np.zeros(3, np.float32)), name="p")
    ms.export(nn.ParameterUpdate(p), Tensor(np.ones(3, np.float32)), file_name=str(tmp_path / "u"))
    upd = nn.GraphCell(ms.load(str(tmp_path / "u.stablehlo")))
    upd(Tensor(np.arange(3, dtype=np.float32)))
    assert next(upd.get_parameters()).asnumpy().tolist() == [0.0, 1.0, 2.0]
    local = nn.ParameterUpdate(p)
    local(Tensor(np.array([7.0, 8.0, 9.0], np.float32)))
    assert p.asnumpy().tolist() == [7.0, 8.0, 9.0]
    with pytest.raises(TypeError, match="'param'"):
        nn.ParameterUpdate(Tensor(np.zeros(3, np.float32)))


def test_loaded_graph_runs_without_the_network_code(tmp_path):
    net = TwoHeads()
    x = _x()
    ms.export(net, x, file_name=str(tmp_path / "net"))
    net.set_train(False)
    np.save(tmp_path / "want.npy", net(x)[0].asnumpy())
    np.save(tmp_path / "x.npy", x.asnumpy())
    code = (
        "import numpy as np, sporax as ms\n"
        f"d = {str(tmp_path)!r}\n"
        "cell = ms.nn.GraphCell(ms.load(d + '/net.stablehlo'))\n"
        "out = cell(ms.Tensor(np.load(d + '/x.npy')))[0].asnumpy()\n"
        "np.testing.assert_allclose(out, np.load(d + '/want.npy'), rtol=1e-6, atol=1e-6)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_export_formats_and_bad_files(tmp_path):
    net = nn.Dense(4, 3)
    for fmt in ("MINDIR", "AIR", "ONNX"):
        with pytest.raises(ValueError, match=rf"must be one of \['STABLEHLO'\], but got '{fmt}' \({fmt}"):
            ms.export(net, _x(), file_name=str(tmp_path / "n"), file_format=fmt)
    with pytest.raises(ValueError, match="must be one of"):
        ms.export(net, _x(), file_name=str(tmp_path / "n"), file_format="TFLITE")
    with pytest.raises(TypeError, match="'net' should be a Cell"):
        ms.export(lambda v: v, _x(), file_name=str(tmp_path / "n"))
    with pytest.raises(ValueError, match="at least one input"):
        ms.export(net, file_name=str(tmp_path / "n"))
    assert not os.listdir(tmp_path)  # nothing written by a refused export
    bad = tmp_path / "bad.stablehlo"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid sporax STABLEHLO export"):
        ms.load(str(bad))
    ms.export(net, _x(), file_name=str(tmp_path / "ok"))
    with zipfile.ZipFile(tmp_path / "ok.stablehlo") as z, zipfile.ZipFile(tmp_path / "cut.stablehlo", "w") as out:
        for item in z.namelist():
            data = z.read(item)
            out.writestr(item, data[:-4] if item == "params/0.bin" else data)
    with pytest.raises(ValueError, match="'weight' holds"):
        ms.load(str(tmp_path / "cut.stablehlo"))
    (tmp_path / "m.mindir").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="MindIR file"):
        ms.load(str(tmp_path / "m.mindir"))
    with pytest.raises(ValueError, match="does not exist"):
        ms.load(str(tmp_path / "missing.stablehlo"))
    with pytest.raises(TypeError, match="'graph' must be a graph loaded by sporax.load"):
        nn.GraphCell(net)
    with pytest.raises(TypeError, match="'params_init' must be a dict"):
        nn.GraphCell(ms.load(str(tmp_path / "ok.stablehlo")), params_init=[1])


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_with_grad_cell_gives_the_weight_gradients(mode):
    ms.set_context(mode=mode)
    net = nn.Dense(4, 3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    y = Tensor(np.array([0, 1, 2, 0, 1], np.int32))
    grads = nn.WithGradCell(net, loss)(_x(), y)
    want = ms.value_and_grad(nn.WithLossCell(net, loss), None, net.trainable_params())(_x(), y)[1]
    assert len(grads) == 2
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-6, atol=1e-7)
    scaled = nn.WithGradCell(net, loss, sens=Tensor(np.float32(4.0)))(_x(), y)
    np.testing.assert_allclose(scaled[0].asnumpy(), 4 * want[0].asnumpy(), rtol=1e-5, atol=1e-6)
