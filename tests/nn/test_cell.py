"""Cell parameter registration and naming (spec §6)."""

from collections import OrderedDict

import numpy as np
import pytest

import sporax as sp
from sporax import Parameter, ParameterTuple, Tensor, nn, ops


class Sub(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.ones((2, 2)), sp.float32))
        self.b = Parameter(Tensor(np.zeros(2), sp.float32), name="custom_b")


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.p = Parameter(Tensor([1.0]))
        self.q = Parameter(Tensor([2.0]), name="qq", requires_grad=False)
        self.sub = Sub()
        self.layers = nn.CellList([Sub()])
        self.pt = ParameterTuple((Parameter(Tensor([3.0])), Parameter(Tensor([4.0]), name="t1")))
        self.plist = [Parameter(Tensor([5.0])), Parameter(Tensor([6.0]))]


def test_spec_example_names_and_order():
    net = Net()
    got = [(path, p.name, p.requires_grad) for path, p in net.parameters_and_names()]
    assert got == [
        ("p", "p", True), ("q", "qq", False), ("Parameter$1", "Parameter$1", True), ("t1", "t1", True),
        ("sub.w", "sub.w", True), ("sub.b", "sub.b", True),
        ("layers.0.w", "layers.0.w", True), ("layers.0.b", "layers.0.b", True),
    ]
    assert [p.name for p in net.untrainable_params()] == ["qq"]
    assert [p.name for p in net.plist] == ["Parameter$2", "Parameter$3"]
    assert [n for n, _ in net.sub.parameters_and_names()] == ["w", "b"]
    assert len(net.trainable_params()) == 7 and len(list(net.get_parameters())) == 8
    assert list(net.parameters_dict())[:2] == ["p", "qq"]


def test_set_comm_fusion_and_tensor_assignment():
    net = Net()
    assert net.set_comm_fusion(4) is net
    assert (net.q.comm_fusion, net.p.comm_fusion) == (1, 4)
    with pytest.raises(ValueError, match="fusion_type"):
        net.set_comm_fusion(-1)
    with pytest.raises(TypeError, match="fusion_type"):
        net.set_comm_fusion(True)
    p = net.p
    net.p = Tensor([7.0])
    assert net.p is p and net.p.asnumpy().tolist() == [7.0]
    with pytest.raises(TypeError):
        net.p = 3
    with pytest.raises(ValueError, match="Can not change the shape"):
        net.p = Tensor([1.0, 2.0])
    net.p = None
    assert "p" not in [n for n, _ in net.parameters_and_names()]
    with pytest.raises(KeyError):
        net.insert_param_to_cell("a.b", Parameter(Tensor([1.0])))
    with pytest.raises(KeyError):
        net.insert_param_to_cell("", Parameter(Tensor([1.0])))
    with pytest.raises(TypeError):
        net.insert_param_to_cell("zz", 3)
    with pytest.raises(KeyError, match="already exists"):
        net.sub = None
        net.insert_param_to_cell("layers", Parameter(Tensor([1.0])))
    with pytest.raises(TypeError):
        net.layers = 5


def test_duplicate_names():
    class Dup(nn.Cell):
        def __init__(self):
            super().__init__()
            self.a = Parameter(Tensor([1.0]), name="same")
            self.b = Parameter(Tensor([2.0]), name="same")

    with pytest.raises(ValueError, match="its name 'same' already exists"):
        Dup().check_names()

    class Dup2(nn.Cell):
        def __init__(self):
            super().__init__()
            self.l1 = [Parameter(Tensor([1.0]), name="same")]
            self.l2 = [Parameter(Tensor([2.0]), name="same")]

    with pytest.raises(ValueError, match="its name 'same' already exists"):
        Dup2()


def test_assign_before_init_raises_attribute_error():
    class Early(nn.Cell):
        def __init__(self):
            self.w = Parameter(Tensor([1.0]))
            super().__init__()

    with pytest.raises(AttributeError, match="super"):
        Early()


def test_sequential_naming_and_call():
    class Lin(nn.Cell):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(Tensor(np.eye(2, dtype=np.float32) * 2))
            self.matmul = ops.MatMul(transpose_b=True)

        def construct(self, x):
            return self.matmul(x, self.weight)

    class Top(nn.Cell):
        def __init__(self):
            super().__init__()
            self.seq = nn.SequentialCell([Lin(), Lin()])
            self.named = nn.SequentialCell(OrderedDict([("first", Lin())]))

        def construct(self, x):
            return self.named(self.seq(x))

    top = Top()
    assert [p.name for p in top.get_parameters()] == ["seq.0.weight", "seq.1.weight", "named.first.weight"]
    out = top(Tensor(np.ones((1, 2), np.float32)))
    assert out.asnumpy().tolist() == [[8.0, 8.0]]
    assert [n for n, _ in top.cells_and_names()] == ["", "seq", "seq.0", "seq.1", "named", "named.first"]
    assert list(top.name_cells()) == ["seq", "named"]
    top.seq.append(Lin())
    assert top.seq[2].weight.name == "seq.2.weight" and len(top.seq) == 3


def test_auto_prefix_false_and_shared_cell():
    class Leaf(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor([1.0]))

    class Holder(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.net = Leaf()

    h = Holder()
    assert [(n, p.name) for n, p in h.parameters_and_names()] == [("net.w", "w")]

    class Twice(nn.Cell):
        def __init__(self):
            super().__init__()
            s = Leaf()
            self.a = s
            self.b = s

    t = Twice()
    assert [(n, p.name) for n, p in t.parameters_and_names()] == [("a.w", "b.w")]


def test_update_parameters_name_and_is_init():
    s = Sub()
    s.w.is_init = True
    s.update_parameters_name("net.")
    assert s.w.name == "net.w" and s.w.is_init is False
    with pytest.raises(ValueError, match="prefix"):
        s.update_parameters_name("a b")


def test_flags_over_parameters(monkeypatch):
    net = Net()
    net.set_param_fl(push_to_server=True)
    assert all(p.push_weight_to_server for p in net.get_parameters())
    with pytest.raises(RuntimeError, match="MS_ROLE"):
        net.set_param_ps()
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    sp.set_ps_context(enable_ps=True)
    net.set_param_ps()
    assert net.p.is_param_ps and not net.q.is_param_ps
    net.recompute(parallel_optimizer_comm_recompute=True)
    assert net.p.parallel_optimizer_comm_recompute and not net.q.parallel_optimizer_comm_recompute
    assert net.parameters_broadcast_dict() is not None
    assert net.set_train() is net and net.sub.training and net.set_train(False).training is False


def test_init_parameters_data_materializes_everything():
    from sporax.common.initializer import initializer

    class Lazy(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(initializer("normal", [3, 3], sp.float32))

    net = Lazy()
    assert net.w.has_init
    mapping = net.init_parameters_data()
    assert mapping[net.w] is net.w and not net.w.has_init


def test_construct_missing_is_clear():
    """MindSpore 2.x: AttributeError "For 'Cell', the method 'construct' is not defined."."""
    with pytest.raises(AttributeError, match="construct"):
        nn.Cell()(1)
