"""Type promotion as MindSpore 2.10 does it (issue 11, item 1): one table, applied to every
operator, Parameter, functional op and operator class.

Goldens: ``fixtures/promotion_ms210.json`` holds the result dtype that real MindSpore 2.10 (CPU)
gives for every combination it supports, produced by ``fixtures/gen_promotion_ms210.py`` run
with the reference install (``/work/ms-ref/bin/python``). Combinations MindSpore's CPU kernels
reject are absent; sporax computes them by the same table.
"""

import json
import operator
import pathlib

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sporax as ms
from sporax import Parameter, Tensor, ops
from sporax.common import _promotion
from sporax.common import dtype as mstype

GOLDEN = json.loads((pathlib.Path(__file__).parent / "fixtures" / "promotion_ms210.json").read_text())
NAMES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
         "bfloat16", "float32", "float64", "complex64", "complex128"]
DT = {n: getattr(mstype, "bool_" if n == "bool" else n) for n in NAMES}
OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
       "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow}
FUNCS = {"add": ops.add, "sub": ops.sub, "mul": ops.mul, "div": ops.div, "maximum": ops.maximum,
         "minimum": ops.minimum, "Add": ops.Add(), "Sub": ops.Sub(), "Mul": ops.Mul(), "RealDiv": ops.RealDiv(),
         "Maximum": ops.Maximum(), "Pow": ops.Pow()}
SCALARS = {"bool": True, "int": 2, "float": 2.5}


def _t(name, shape=(2,), param=False):
    t = Tensor(np.ones(shape, DT[name].np_dtype))
    return Parameter(t, name="p") if param else t


def _run(key):
    case, op, a, b = key.split("|")
    if case in ("tt", "t0", "00"):
        return OPS[op](_t(a, () if case == "00" else (2,)), _t(b, (2,) if case == "tt" else ()))
    if case == "ts":
        return OPS[op](_t(a), SCALARS[b])
    if case == "ps":
        return OPS[op](_t(a, param=True), SCALARS[b])
    if case == "st":
        return OPS[op](SCALARS[a], _t(b))
    if case == "ftt":
        return FUNCS[op](_t(a), _t(b))
    return FUNCS[op](_t(a), SCALARS[b])


def _operands(key):
    case, op, a, b = key.split("|")
    if case in ("tt", "t0", "00"):
        return _t(a, () if case == "00" else (2,)), _t(b, (2,) if case == "tt" else ())
    if case in ("ts", "ps", "fts"):
        return _t(a, param=case == "ps"), SCALARS[b]
    if case == "st":
        return SCALARS[a], _t(b)
    return _t(a), _t(b)


_RULE = {"mul": "mul", "truediv": "truediv", "div": "truediv", "Mul": "mul", "RealDiv": "realdiv"}


def test_every_operator_and_op_matches_mindspore_2_10_dtypes():
    """Each golden combination, through the real operator/op (abstractly evaluated: no compiles).

    XLA has no complex floor division or remainder: there only the table is checked."""
    wrong, run = [], []
    for key in sorted(GOLDEN):
        op = key.split("|")[1]
        x, y = _operands(key)
        expected = _promotion.result_dtype(x, y, _RULE.get(op, "arith"))
        if str(mstype.from_numpy(expected)) != GOLDEN[key]:
            wrong.append((key, GOLDEN[key], "table", str(mstype.from_numpy(expected))))
        if not (op in ("floordiv", "mod") and np.dtype(expected).kind == "c"):
            run.append(key)
    got = jax.eval_shape(lambda: [_run(k)._jax() for k in run])  # one abstract trace for all
    for key, g in zip(run, got):
        if str(mstype.from_numpy(g.dtype)) != GOLDEN[key]:
            wrong.append((key, GOLDEN[key], "op", str(mstype.from_numpy(g.dtype))))
    ran = len(run)
    assert not wrong, wrong[:20]
    assert ran > 4000


def test_issue_examples_mindspore_float32_not_float64():
    """MindSpore 2.10: Tensor(int32) + 2.5, Tensor(int64) * 0.5, Tensor(bool) + 1.5 are Float32;
    Tensor(float16) * Tensor(float32 0-d) stays Float16."""
    assert (Tensor(np.array([1], np.int32)) + 2.5).dtype == ms.float32
    assert (Tensor(np.array([1], np.int64)) * 0.5).dtype == ms.float32
    out = Tensor(np.array([True])) + 1.5
    assert out.dtype == ms.float32 and out.asnumpy().tolist() == [2.5]
    assert (Tensor(np.array([1], np.float16)) * Tensor(np.array(2, np.float32))).dtype == ms.float16
    assert (Tensor([3, 4]) / Tensor([2, 2])).asnumpy().tolist() == [1.5, 2.0]
    assert ops.RealDiv()(Tensor([3]), Tensor([2])).dtype == ms.int64  # the operator class keeps ints


def test_promotion_inside_jit_matches_eager():
    """The rules are the same in GRAPH_MODE (traced) as in PYNATIVE."""
    ms.set_context(mode=ms.GRAPH_MODE)

    class Net(ms.nn.Cell):
        def construct(self, x):
            return x * 0.5 + 1, x / 2

    a, b = Net()(Tensor(np.array([1, 2], np.int32)))
    assert a.dtype == ms.float32 and b.dtype == ms.float32


_SCALAR_ST = st.one_of(st.booleans(), st.integers(-100, 100), st.floats(-10, 10, allow_nan=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(NAMES), scalar=_SCALAR_ST, op=st.sampled_from(sorted(OPS)),
       param=st.booleans(), reflected=st.booleans())
def test_hypothesis_python_scalar_operand_follows_the_table(dtype, scalar, op, param, reflected):
    """For random dtype / Python scalar pairs, every arithmetic operator on a Tensor or a Parameter
    gives the MindSpore 2.10 dtype (the golden where MindSpore's CPU kernels support the pair)."""
    x = _t(dtype, param=param)
    kind = type(scalar).__name__
    if op in ("mod", "floordiv") and "complex" in dtype:
        return  # XLA has no complex floor division or remainder
    if op == "pow" and kind == "int":
        scalar = abs(scalar)  # JAX refuses integers raised to negative powers
    fn = OPS[op]
    if reflected:
        if op in ("pow", "mod", "floordiv", "truediv") and not scalar and dtype != "bool":
            scalar = 1 if kind == "int" else 1.0 if kind == "float" else scalar
        out = jax.eval_shape(lambda: fn(scalar, x)._jax())
        golden = GOLDEN.get(f"st|{op}|{kind}|{dtype}")
    else:
        out = jax.eval_shape(lambda: fn(x, scalar)._jax())
        golden = GOLDEN.get(f"{'ps' if param else 'ts'}|{op}|{dtype}|{kind}") or GOLDEN.get(f"ts|{op}|{dtype}|{kind}")
    expected = _promotion.result_dtype(scalar, x, op if op in ("mul", "truediv") else "arith") if reflected else \
        _promotion.result_dtype(x, scalar, op if op in ("mul", "truediv") else "arith")
    assert out.dtype == expected
    if golden is not None:
        assert str(mstype.from_numpy(out.dtype)) == golden


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.sampled_from(NAMES), b=st.sampled_from(NAMES), op=st.sampled_from(sorted(OPS)),
       param=st.booleans(), zero_d=st.booleans())
def test_hypothesis_tensor_pairs_follow_the_table(a, b, op, param, zero_d):
    """Random dtype pairs (Tensor or Parameter on the left, a (2,) or 0-d Tensor on the right),
    executed for real: the dtype is the table's and MindSpore's."""
    x = _t(a, param=param)
    y = _t(b, () if zero_d else (2,))
    if op in ("mod", "floordiv") and "complex" in a + b:
        return  # XLA has no complex floor division or remainder
    out = OPS[op](x, y)
    golden = GOLDEN.get(f"{'t0' if zero_d else 'tt'}|{op}|{a}|{b}")
    assert out.dtype.np_dtype == _promotion.result_dtype(x, y, op if op in ("mul", "truediv") else "arith")
    if golden is not None:
        assert str(out.dtype) == golden


def test_x64_defaults_documented_cost_is_visible():
    """sporax keeps jax_enable_x64 on (64-bit MindSpore dtypes are real); its own ops never use
    JAX's 64-bit defaults: a Float32 program stays Float32 end to end."""
    net = ms.nn.Dense(3, 2)
    out = net(Tensor(np.ones((1, 3), np.float32))) * 2 + 1
    assert out.dtype == ms.float32
    with pytest.raises(TypeError, match="operand"):
        _promotion.result_dtype(Tensor([1]), object())
