"""Issue 13: asynchronous saves during GRAPH_MODE training, threads on one compiled step,
and the small validation gaps of Parameter and context."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import sporax
from sporax import Parameter, ParameterTuple, Tensor, context, nn
from sporax.common.initializer import initializer
from sporax.train import serialization as ser
from sporax.train.serialization import load_checkpoint, save_checkpoint


def _train_step(width: int = 64):
    sporax.set_seed(7)
    net = nn.Dense(width, width)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.01, 0.9))
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, width)).astype(np.float32))
    y = Tensor(rng.standard_normal((8, width)).astype(np.float32))
    return net, step, x, y


def test_async_save_then_graph_steps(tmp_path):
    """The background writer holds its arrays out of the donation registry: the next compiled
    steps copy instead of donating them, the file holds the values at the call, training goes on."""
    context.set_context(mode=context.GRAPH_MODE)
    net, step, x, y = _train_step(512)
    for _ in range(3):
        step(x, y)
    at_call = {p.name: p.asnumpy() for p in net.get_parameters()}
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(net, path, async_save=True)
    for _ in range(3):
        step(x, y)
    ser._wait_async_save()
    loaded = load_checkpoint(path)
    for name, value in at_call.items():
        np.testing.assert_array_equal(loaded[name].asnumpy(), value)
    assert not np.array_equal(net.weight.asnumpy(), at_call["weight"])  # training went on
    step(x, y)


def test_two_threads_train_one_net_in_graph_mode():
    """Compiled calls are serialized: two threads stepping one net never see a donated buffer,
    and every step of both threads is applied."""
    context.set_context(mode=context.GRAPH_MODE)
    net, step, x, y = _train_step()
    step(x, y)  # compile once before the threads start
    errors: list = []
    n_steps = 60

    def run() -> None:
        try:
            for _ in range(n_steps):
                step(x, y)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    # the same number of steps run serially from the same start gives the same weights
    ref_net, ref_step, _, _ = _train_step()
    for _ in range(1 + 2 * n_steps):
        ref_step(x, y)
    np.testing.assert_allclose(net.weight.asnumpy(), ref_net.weight.asnumpy(), rtol=1e-5, atol=1e-6)


def test_saves_while_another_thread_trains(tmp_path):
    context.set_context(mode=context.GRAPH_MODE)
    net, step, x, y = _train_step()
    step(x, y)
    errors: list = []
    done = threading.Event()

    def run() -> None:
        try:
            while not done.is_set():
                step(x, y)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    trainer = threading.Thread(target=run)
    trainer.start()
    try:
        for i in range(8):
            save_checkpoint(net, str(tmp_path / f"s{i}.ckpt"), async_save=bool(i % 2))
        ser._wait_async_save()
    finally:
        done.set()
        trainer.join(120)
    assert errors == []
    for i in range(8):
        assert load_checkpoint(str(tmp_path / f"s{i}.ckpt"))["weight"].shape == (64, 64)


def test_threads_first_call_traces_once():
    """Two threads making the very first (tracing) call: one traces, the other waits for it."""
    from sporax.common import api

    context.set_context(mode=context.GRAPH_MODE)
    _, step, x, y = _train_step()
    before = api.compile_count()
    barrier = threading.Barrier(2)
    errors: list = []

    def run() -> None:
        try:
            barrier.wait()
            step(x, y)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and api.compile_count() - before == 1


# ----------------------------------------------------------------------------- validation gaps
def test_set_data_int_overflow_is_value_error():
    p = Parameter(Tensor(np.zeros(3, np.int32)), name="p")
    with pytest.raises(ValueError, match="'data'"):
        p.set_data(2**40)
    np.testing.assert_array_equal(p.asnumpy(), np.zeros(3, np.int32))
    assert p.dtype == sporax.int32


def test_set_context_mode_must_be_int():
    for bad in (0.0, 1.0, True, "0"):
        with pytest.raises(ValueError, match="'mode'"):
            context.set_context(mode=bad)
    assert context.get_context("mode") == context.PYNATIVE_MODE


def test_sliced_flags_are_bools():
    p = Parameter(initializer("normal", (4, 4), sporax.float32), name="w")
    with pytest.raises(TypeError, match="'set_sliced'"):
        p.init_data(set_sliced="yes")
    assert p.has_init
    q = Parameter(Tensor(np.zeros((2, 2), np.float32)), name="q")
    with pytest.raises(TypeError, match="'slice_shape'"):
        q.set_data(Tensor(np.ones((2, 2), np.float32)), slice_shape="yes")
    np.testing.assert_array_equal(q.asnumpy(), np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="'sliced'"):
        q.sliced = "x"
    assert q.sliced is False
    q.sliced = True
    assert q.sliced is True


def test_init_data_layout_errors_name_the_argument():
    for layout in (((2,), (0,), "x"), ((0,), (0,), (2, 4)), ((2,), 0, (2, 4)), ((2,), (0,), (3, 4))):
        p = Parameter(initializer("normal", (4, 4), sporax.float32), name="w")
        with pytest.raises((TypeError, ValueError), match=r"For 'Parameter.init_data', the 'layout'"):
            p.init_data(layout=layout)
        assert p.has_init


def test_parameter_tuple_errors_name_the_argument():
    with pytest.raises(TypeError, match="'iterable'"):
        ParameterTuple(5)
    with pytest.raises(TypeError, match="'iterable'"):
        ParameterTuple([1, 2])
    a, b = Parameter(Tensor(1.0), name="x"), Parameter(Tensor(2.0), name="x")
    with pytest.raises(ValueError, match="'iterable'.*its name 'x' already exists"):
        ParameterTuple([a, b])
