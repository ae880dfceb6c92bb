"""MindSpore 2.10 fidelity of seeding, checkpoint-loading errors, Tensor/Cell details and the
errors for modules sporax does not provide (issue 11, items 5, 6, 8, 9, 10).

Every expected value was produced by running the same code with real MindSpore 2.10 (CPU,
``/work/ms-ref/bin/python``) and is hard-coded here.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------- item 5
def test_import_does_not_consume_numpy_global_draws_as_mindspore():
    """MindSpore 2.10: np.random.seed(0) before ``import mindspore`` gives the same next draw."""
    code = ("import numpy as np; np.random.seed(0); a = np.random.rand(); np.random.seed(0); "
            "import sporax; print(np.random.rand() == a)")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "True", out.stderr[-2000:]


def test_default_init_follows_numpy_global_seed_as_mindspore():
    """MindSpore 2.10 without set_seed: np.random.seed(0) makes nn.Dense's init reproducible, and
    initialization consumes numpy draws."""
    ms.common._rng._seed = None  # as in a script that never calls set_seed
    try:
        np.random.seed(0)
        a = nn.Dense(3, 2).weight.asnumpy()
        np.random.seed(0)
        b = nn.Dense(3, 2).weight.asnumpy()
        c = nn.Dense(3, 2).weight.asnumpy()
        assert np.array_equal(a, b) and not np.array_equal(b, c)
        np.random.seed(0)
        nn.Dense(3, 2)
        after_init = np.random.rand()
        np.random.seed(0)
        assert after_init != np.random.rand()
    finally:
        ms.set_seed(1234)


def test_set_seed_seeds_numpy_global_rng_as_mindspore():
    """MindSpore 2.10: after set_seed(5), np.random.rand() equals it after np.random.seed(5)."""
    ms.set_seed(5)
    a = np.random.rand()
    np.random.seed(5)
    assert a == np.random.rand()
    ms.set_seed(7)
    assert ms.dataset.config.get_seed() == 7  # MindSpore: set_seed also seeds the dataset pipeline
    ms.set_seed(5)
    w1 = nn.Dense(3, 2).weight.asnumpy()
    ms.set_seed(5)
    assert np.array_equal(w1, nn.Dense(3, 2).weight.asnumpy())


# ---------------------------------------------------------------------------------- item 6
def test_load_param_into_net_rejects_plain_tensor_values_as_mindspore(tmp_path):
    """MindSpore 2.10: TypeError for a Tensor (or numpy) value; a str value is skipped."""
    net = nn.Dense(2, 2)
    with pytest.raises(TypeError, match="parameter_dict.*Parameter"):
        ms.load_param_into_net(net, {"weight": Tensor(np.ones((2, 2), np.float32))})
    with pytest.raises(TypeError, match="parameter_dict"):
        ms.load_param_into_net(net, {"weight": np.ones((2, 2), np.float32)})
    assert ms.load_param_into_net(net, {"weight": "abc"}) == (["bias"], ["weight"])


def test_load_checkpoint_prefix_and_choice_func_errors_as_mindspore(tmp_path):
    """MindSpore 2.10: '' in filter_prefix/specify_prefix is ValueError, a non-str TypeError, and
    any exception inside choice_func (or a non-callable) becomes ValueError."""
    net = nn.Dense(2, 2)
    f = str(tmp_path / "a.ckpt")
    ms.save_checkpoint(net, f)
    for kw in ({"filter_prefix": ""}, {"specify_prefix": ""}, {"filter_prefix": ["", "x"]}):
        with pytest.raises(ValueError, match="''"):
            ms.load_checkpoint(f, **kw)
    with pytest.raises(TypeError):
        ms.load_checkpoint(f, filter_prefix=1)

    def bad(name):
        raise KeyError("boom")

    with pytest.raises(ValueError, match="choice_func.*boom"):
        ms.load_checkpoint(f, choice_func=bad)
    with pytest.raises(ValueError, match="choice_func"):
        ms.load_checkpoint(f, choice_func=3)


# ---------------------------------------------------------------------------------- item 8
def test_tensor_details_as_mindspore():
    """Goldens from MindSpore 2.10 for from_numpy, strides, complex, string arrays, `in`, is_tensor,
    dtype_to_pytype and the STRICT/COMPATIBLE/LAX constants."""
    t = Tensor.from_numpy(np.array([1, 2], np.int32))
    assert repr(t) == "Tensor(shape=[2], dtype=Int32, value= [1, 2])"
    assert repr(ms.from_numpy(np.array([1, 2]))) == "Tensor(shape=[2], dtype=Int64, value= [1, 2])"
    assert type(ms.from_numpy(np.ones(2))) is Tensor  # MindSpore: the Tensor constructor, not the dtype helper
    assert ms.from_numpy is not getattr(ms.dtype, 'from_numpy', None)
    assert Tensor(np.ones((2, 3), np.float32)).strides == (12, 4)
    assert Tensor(np.ones((2, 3, 4), np.int64)).strides == (96, 32, 8)
    assert Tensor(np.float32(1)).strides == ()
    assert repr(Tensor(1 + 2j)) == "Tensor(shape=[], dtype=Complex128, value= 1+2j)"
    assert repr(Tensor([1 + 2j, 3])) == "Tensor(shape=[2], dtype=Complex128, value= [1+2j, 3+0j])"
    s = Tensor(np.array(["a", "bc"]))
    assert repr(s) == "Tensor(shape=[2], dtype=String, value= ['a', 'bc'])"
    assert str(s.dtype) == "String" and s.shape == (2,) and str(s) == "['a' 'bc']"
    assert s.asnumpy().tolist() == ["a", "bc"]
    assert str(Tensor(np.array([b"a", b"bc"])).dtype) == "String"
    with pytest.raises(TypeError):
        Tensor("abc")
    assert (np.array(1) in Tensor([1, 2])) is False
    assert (1 in Tensor([1, 2])) is True and (3 in Tensor([1, 2])) is False
    assert (2.0 in Tensor([1, 2]), Tensor([1, 5]) in Tensor([[1, 2], [3, 4]]), 'a' in Tensor([1, 2])) == (True, True, False)
    assert Tensor(1) in Tensor([1, 2]) and 1 in Tensor([[1, 2], [3, 4]]) and Tensor([1, 2]) in Tensor([[1, 2], [3, 4]])
    p = Parameter(Tensor(1), name="x")
    assert (ms.is_tensor(Tensor(1)), ms.is_tensor(1), ms.is_tensor(p), ms.is_tensor(np.ones(1))) == (True, False, True, False)
    dts = (ms.float32, ms.int32, ms.bool_, ms.float64, ms.complex64, ms.uint8, ms.float16, ms.bfloat16, ms.int8, ms.complex128)
    assert [ms.dtype_to_pytype(d) for d in dts] == [float, int, bool, float, complex, int, float, float, int, complex]
    with pytest.raises(KeyError):
        ms.dtype_to_pytype(3)
    assert (ms.STRICT, ms.COMPATIBLE, ms.LAX) == (0, 1, 2)


# ---------------------------------------------------------------------------------- item 9
class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(2, 3)
        self.seq = nn.SequentialCell(nn.Dense(3, 3), nn.ReLU())
        self.act = nn.ReLU()

    def construct(self, x):
        return x


MS_REPR = """Net(
  (fc): Dense(input_channels=2, output_channels=3, has_bias=True)
  (seq): SequentialCell(
    (0): Dense(input_channels=3, output_channels=3, has_bias=True)
    (1): ReLU()
  )
  (act): ReLU()
)"""


def test_cell_details_as_mindspore():
    """MindSpore 2.10: Cell.apply order, AttributeError of a construct-less Cell,
    NotImplementedError of Optimizer.construct, and print(net)'s 2.x layout."""
    with pytest.raises(AttributeError, match="For 'Cell', the method 'construct' is not defined."):
        nn.Cell()()
    with pytest.raises(AttributeError, match="construct"):
        nn.Cell().construct()
    seen = []
    net = nn.SequentialCell(nn.Dense(2, 3), nn.ReLU())
    assert net.apply(lambda c: seen.append(type(c).__name__)) is net
    assert seen == ["Dense", "ReLU", "SequentialCell"]

    class MyOpt(nn.Optimizer):
        def __init__(self, params):
            super().__init__(0.1, params)

    opt = MyOpt(nn.Dense(2, 2).trainable_params())
    with pytest.raises(NotImplementedError):
        opt(())
    net = Net()
    assert repr(net) == MS_REPR
    assert repr(nn.Dense(2, 3)) == "Dense(input_channels=2, output_channels=3, has_bias=True)"
    assert repr(nn.Cell()) == "Cell()"
    assert repr(nn.CellList([nn.ReLU(), nn.Dense(1, 1)])) == (
        "CellList(\n  (0): ReLU()\n  (1): Dense(input_channels=1, output_channels=1, has_bias=True)\n)")


def test_model_eval_returns_numpy_scalars_as_mindspore():
    """MindSpore 2.10: Accuracy.eval() is numpy.float64 (0.666...), Loss.eval() numpy.float32 (0.375)."""
    logits = Tensor(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32))
    y = Tensor(np.array([1, 1, 1], np.int32))
    acc = train.Accuracy()
    acc.update(logits, y)
    assert type(acc.eval()) is np.float64 and acc.eval() == pytest.approx(2 / 3)
    loss = train.Loss()
    loss.update(Tensor(np.float32(0.5)))
    loss.update(Tensor(np.float32(0.25)))
    assert type(loss.eval()) is np.float32 and loss.eval() == np.float32(0.375)
    net = nn.Dense(2, 2)
    model = train.Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), metrics={"acc", "loss"})
    data = [(Tensor(np.ones((3, 2), np.float32)), y)]
    out = model.eval(data)
    assert type(out["acc"]) is np.float64 and type(out["loss"]) is np.float32


# ---------------------------------------------------------------------------------- item 10
def test_missing_modules_name_the_mindspore_module_imported():
    """`import mindspore.xyz` and `from mindspore import xyz` name mindspore.xyz (not
    sporax/__init__.py) and bind nothing; existing modules still import."""
    code = r'''
import sys
from sporax import compat; compat.install()
import mindspore
for stmt in ["import mindspore.xyz", "from mindspore import xyz", "import mindspore.nn.foo"]:
    try:
        exec(stmt)
    except ModuleNotFoundError as e:
        print(str(e).split(";")[0])
from mindspore import nn, Tensor
from mindspore.ops import functional
print(hasattr(mindspore, "xyz"), [k for k in sys.modules if "xyz" in k or "foo" in k])
'''
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.splitlines() == [
        "mindspore.xyz is not provided by sporax",
        "mindspore.xyz is not provided by sporax",
        "mindspore.nn.foo is not provided by sporax",
        "False []",
    ], out.stderr[-2000:]


@pytest.mark.parametrize("module,dep", [("dataset", "grain"), ("experimental.optim", "optax")])
def test_missing_dependency_names_the_module_and_leaves_nothing_half_imported(module, dep):
    """Without an optional dependency, ``import mindspore.<module>`` names the module and the
    package to install, twice alike, and leaves no partly imported ``sporax.<module>.*`` behind
    (a half-bound name would give a confusing second error)."""
    code = rf'''
import sys
sys.modules["{dep}"] = None  # as if not installed
from sporax import compat; compat.install()
import mindspore
for _ in range(2):
    try:
        import mindspore.{module}
    except ModuleNotFoundError as e:
        print(e.name, str(e).split(",")[0])
print([k for k in sys.modules if k.startswith("sporax.{module}")])
'''
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    line = f"{dep} mindspore.{module} (sporax.{module}) needs {'Grain' if dep == 'grain' else dep}"
    assert out.stdout.splitlines() == [line, line, "[]"], out.stderr[-2000:]


# MindSpore 2.10's type and value of every metric's eval() on the same inputs (made with
# /work/ms-ref/bin/python, the script being this test's body with mindspore for sporax).
METRIC_EVALS_MS_2_10 = """\
acc float64 float64 0.666667
acc_onehot float64 float64 0.666667
loss float32 float32 0.5
loss_arr float32 float32 0.375
mae float32 float32 0.166667
mse float32 float32 0.036667
mae64 float64 float64 0.2
prec ndarray float64 [1.0, 0.0, 1.0, 0.0]
prec_avg float64 float64 0.5
recall ndarray float64 [1.0, 0.0, 1.0, 0.0]
recall_avg float64 float64 0.5
top1 float64 float64 0.666667
top5 float64 float64 1.0
topk2 float64 float64 1.0"""


def test_every_metric_eval_returns_mindspore_numpy_types():
    """MindSpore 2.10: metrics' eval() gives numpy scalars (float64, or float32 for Loss/MAE/MSE of
    float32 inputs) and numpy arrays for per-class Precision/Recall, so Model.eval's dict does too."""
    x = Tensor(np.array([[0.1, 0.2, 0.6, 0.1], [0.9, 0.05, 0.03, 0.02], [0.2, 0.3, 0.1, 0.4]], np.float32))
    yl = Tensor(np.array([2, 0, 1], np.int32))
    yo = Tensor(np.eye(4, dtype=np.float32)[[2, 0, 1]])
    r = Tensor(np.array([0.1, 0.2, 0.6], np.float32))
    ry = Tensor(np.array([0.0, 0.5, 0.5], np.float32))
    lines = []

    def show(name, m, *args, **eval_kw):
        m.clear()
        m.update(*args)
        v = m.eval(**eval_kw)
        shown = np.round(v, 6).tolist() if isinstance(v, np.ndarray) else round(float(v), 6)
        lines.append(f"{name} {type(v).__name__} {v.dtype} {shown}")

    show("acc", nn.Accuracy(), x, yl)
    show("acc_onehot", nn.Accuracy(), x, yo)
    show("loss", nn.Loss(), Tensor(np.float32(0.5)))
    show("loss_arr", nn.Loss(), Tensor(np.array([0.5, 0.25], np.float32)))
    show("mae", nn.MAE(), r, ry)
    show("mse", nn.MSE(), r, ry)
    show("mae64", nn.MAE(), Tensor(np.array([0.1, 0.2]), ms.float64), Tensor(np.array([0.0, 0.5]), ms.float64))
    show("prec", nn.Precision(), x, yl)
    show("prec_avg", nn.Precision(), x, yl, average=True)
    show("recall", nn.Recall(), x, yl)
    show("recall_avg", nn.Recall(), x, yl, average=True)
    show("top1", nn.Top1CategoricalAccuracy(), x, yl)
    show("top5", nn.Top5CategoricalAccuracy(), Tensor(np.random.RandomState(0).rand(3, 6).astype(np.float32)), yl)
    show("topk2", nn.TopKCategoricalAccuracy(2), x, yl)
    assert lines == METRIC_EVALS_MS_2_10.splitlines()
