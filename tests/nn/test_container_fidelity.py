# ruff: noqa: E701, E702  (the script is kept as it was run under MindSpore, one line per step)
"""SequentialCell / CellList item assignment, deletion, slicing, +=, extend and insert, with the
children's keys and the parameters' names as in MindSpore 2.10 (issue 11, item 7).

``MINDSPORE_2_10`` is the output of the same script run with real MindSpore 2.10 (CPU,
``/work/ms-ref/bin/python``), hard-coded. One line differs on purpose: assigning a non-Cell
raises TypeError (MindSpore 2.10 fails with an AttributeError from inside its own code).
"""

import sporax as ms  # noqa: F401
from sporax import nn

MINDSPORE_2_10 = """\
seq ['0', '1', '2'] ['0.weight', '0.bias', '2.weight', '2.bias'] ['Dense', 'ReLU', 'Dense']
seq_set1 ['0', '1', '2'] ['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias'] ['Dense', 'Dense', 'Dense']
seq_setm1 ['0', '1', '2'] ['0.weight', '0.bias', '1.weight', '1.bias'] ['Dense', 'Dense', 'ReLU']
seq_set_bad ERR TypeError For 'SequentialCell', each cell must be subclass of Cell, but got int.
seq_set_oob ERR IndexError For 'SequentialCell', the value of 'index' must be a number in range [-3, 3), but got 5.
seq_del0 ['0', '1'] ['0.weight', '0.bias'] ['Dense', 'ReLU']
seq_delslice ['0', '1'] ['0.weight', '0.bias', '1.weight', '1.bias'] ['Dense', 'Dense']
seq_delall [] [] []
0
seq_slice ['1', '2'] ['2.weight', '2.bias'] ['ReLU', 'Dense']
SequentialCell
seq_after_slice ['0', '1', '2'] ['0.weight', '0.bias', '2.weight', '2.bias'] ['Dense', 'ReLU', 'Dense']
seq_append ['0', '1', '2'] ['0.weight', '0.bias', '2.weight', '2.bias'] ['Dense', 'ReLU', 'Dense']
seq_insert ERR AttributeError The 'SequentialCell' object has no attribute 'insert'.
seq_after_insert ['0', '1', '2'] ['0.weight', '0.bias', '2.weight', '2.bias'] ['Dense', 'ReLU', 'Dense']
seq_iadd ERR AttributeError The 'SequentialCell' object has no attribute '__iadd__'.
cl ['0', '1'] ['0.weight', '0.bias'] ['Dense', 'ReLU']
cl_iadd ['0', '1', '2'] ['0.weight', '0.bias', '2.weight', '2.bias'] ['Dense', 'ReLU', 'Dense']
cl_extend ['0', '1', '2', '3', '4'] ['0.weight', '0.bias', '2.weight', '2.bias', '4.weight', '4.bias'] ['Dense', 'ReLU', 'Dense', 'ReLU', 'Dense']
cl_insert1 ['0', '1', '2', '3', '4', '5'] ['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias', '5.weight', '5.bias'] ['Dense', 'Dense', 'ReLU', 'Dense', 'ReLU', 'Dense']
cl_insertm1 ['0', '1', '2', '3', '4', '5', '6'] ['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias', '6.weight', '6.bias'] ['Dense', 'Dense', 'ReLU', 'Dense', 'ReLU', 'ReLU', 'Dense']
cl_set0 ['0', '1', '2', '3', '4', '5', '6'] ['1.weight', '1.bias', '3.weight', '3.bias', '6.weight', '6.bias'] ['ReLU', 'Dense', 'ReLU', 'Dense', 'ReLU', 'ReLU', 'Dense']
cl_del1 ['0', '1', '2', '3', '4', '5'] ['2.weight', '2.bias', '5.weight', '5.bias'] ['ReLU', 'ReLU', 'Dense', 'ReLU', 'ReLU', 'Dense']
CellList
cl_slice ['0', '1'] ['1.weight', '1.bias'] ['ReLU', 'Dense']
cl_delstep ['0', '1', '2'] ['2.weight', '2.bias'] ['ReLU', 'ReLU', 'Dense']
cl_extend_bad ERR TypeError For 'CellList', the new cells wanted to append should be instance of list, but got int.
cl_extend_bad2 ERR TypeError For 'CellList', each cell must be subclass of Cell, but got int.
cl_set_bad ERR AttributeError 'int' object has no attribute 'update_parameters_name'
cl_idx_bad ERR TypeError For 'CellList', the type of 'index' must be int or slice, but got str.
cl_iadd_cl ERR TypeError For 'CellList', the new cells wanted to append should be instance of list, but got CellList.
cl_final ['0', '1', '2'] ['2.weight', '2.bias'] ['ReLU', 'ReLU', 'Dense']
nested ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']
nested_append ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias', 'layers.2.weight', 'layers.2.bias']
nested_set ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias', 'layers.2.weight', 'layers.2.bias']
nested_del ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']
nested_insert ['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias', 'layers.2.weight', 'layers.2.bias']
"""

DIFFERENT = {
    "cl_set_bad ERR TypeError For 'CellList', each cell must be subclass of Cell, but got int.",
}


def _script(print):  # noqa: A002 - the script's own print, captured
    def st(tag, c):
        print(tag, list(c._cells.keys()), [p.name for p in c.get_parameters()], [type(x).__name__ for x in c])

    def show(tag, f):
        try:
            r = f()
            print(tag, "OK", r if not isinstance(r, nn.Cell) else type(r).__name__)
        except Exception as e:
            print(tag, "ERR", type(e).__name__, str(e)[:150].replace("\n", " "))

    def D():
        return nn.Dense(1, 1)

    seq = nn.SequentialCell(D(), nn.ReLU(), D()); st("seq", seq)
    seq[1] = D(); st("seq_set1", seq)
    seq[-1] = nn.ReLU(); st("seq_setm1", seq)
    show("seq_set_bad", lambda: seq.__setitem__(0, 3))
    show("seq_set_oob", lambda: seq.__setitem__(5, D()))
    del seq[0]; st("seq_del0", seq)
    seq = nn.SequentialCell(D(), nn.ReLU(), D(), D()); del seq[1:3]; st("seq_delslice", seq)
    seq = nn.SequentialCell(D(), nn.ReLU(), D()); del seq[:]; st("seq_delall", seq); print(len(seq))
    seq = nn.SequentialCell(D(), nn.ReLU(), D()); s2 = seq[1:]; st("seq_slice", s2); print(type(s2).__name__); st("seq_after_slice", seq)
    seq = nn.SequentialCell(D(), nn.ReLU()); seq.append(D()); st("seq_append", seq)
    show("seq_insert", lambda: seq.insert(0, D())); st("seq_after_insert", seq)
    show("seq_iadd", lambda: seq.__iadd__)
    cl = nn.CellList([D(), nn.ReLU()]); st("cl", cl)
    cl += [D()]; st("cl_iadd", cl)
    cl.extend([nn.ReLU(), D()]); st("cl_extend", cl)
    cl.insert(1, D()); st("cl_insert1", cl)
    cl.insert(-1, nn.ReLU()); st("cl_insertm1", cl)
    cl[0] = nn.ReLU(); st("cl_set0", cl)
    del cl[1]; st("cl_del1", cl)
    s3 = cl[1:3]; print(type(s3).__name__); st("cl_slice", s3)
    del cl[::2]; st("cl_delstep", cl)
    show("cl_extend_bad", lambda: cl.extend(3))
    show("cl_extend_bad2", lambda: cl.extend([3]))
    show("cl_set_bad", lambda: cl.__setitem__(0, 3))
    show("cl_idx_bad", lambda: cl["a"])
    show("cl_iadd_cl", lambda: cl.__iadd__(nn.CellList([D()])))
    st("cl_final", cl)
    class N(nn.Cell):
        def __init__(self): super().__init__(); self.layers = nn.CellList([D(), D()])
        def construct(self, x): return x
    n = N(); print("nested", [p.name for p in n.get_parameters()])
    n.layers.append(D()); print("nested_append", [p.name for p in n.get_parameters()])
    n.layers[0] = D(); print("nested_set", [p.name for p in n.get_parameters()])
    del n.layers[0]; print("nested_del", [p.name for p in n.get_parameters()])
    n.layers.insert(0, D()); print("nested_insert", [p.name for p in n.get_parameters()])



def test_containers_match_mindspore_2_10_names_and_errors():
    lines = []
    _script(lambda *a: lines.append(" ".join(str(x) for x in a)))
    expected = MINDSPORE_2_10.splitlines()
    assert len(lines) == len(expected)
    for got, exp in zip(lines, expected):
        assert got == exp or (got in DIFFERENT and exp.split(" ERR")[0] == got.split(" ERR")[0])


def test_sequential_cell_runs_after_edits_and_the_walk_sees_them():
    """A compiled SequentialCell re-walks its parameters after an item assignment or deletion."""
    import numpy as np

    from sporax import Tensor

    ms.set_context(mode=ms.GRAPH_MODE)
    seq = nn.SequentialCell(nn.Dense(2, 2), nn.ReLU())
    x = Tensor(np.ones((1, 2), np.float32))
    seq(x)
    seq[0] = nn.Dense(2, 3)
    assert seq(x).shape == (1, 3)
    del seq[1]
    assert len(seq) == 1 and seq(x).shape == (1, 3)
    del seq[:]
    assert len(seq) == 0 and list(seq.get_parameters()) == []
