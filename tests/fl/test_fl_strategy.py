"""The strategies at the Message level: hand-made replies, good and bad."""

import logging

import numpy as np
import pytest
from fl_nets import Flags

fl = pytest.importorskip("sporax.fl")
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict  # noqa: E402

from sporax.fl._records import record_from  # noqa: E402

NODES = [11, 12, 13, 14]


class Grid:
    def __init__(self, nodes=NODES):
        self.nodes = nodes

    def get_node_ids(self):
        return list(self.nodes)


def _setup(combos=((True, False, False),), **kwargs):
    net = Flags(combos)  # p_100: pushed, stored per client
    strategy = fl.FedAvg(net, min_train_nodes=1, min_available_nodes=1, fraction_evaluate=0.0, **kwargs)
    initial = record_from({p.name: p.asnumpy() for _, p in net.parameters_and_names()})
    with fl.simulation._task_identity(1):
        messages = list(strategy.configure_train(1, initial, ConfigRecord(), Grid()))
    for i, m in enumerate(messages):
        m.metadata.__dict__["_message_id"] = f"m{i}"
    return strategy, initial, messages


def _reply(msg, arrays, examples=1, client=None):
    content = RecordDict({
        "arrays": arrays if isinstance(arrays, ArrayRecord) else record_from(arrays),
        "metrics": MetricRecord({"num-examples": examples}),
        "sporax": ConfigRecord({"client-id": client or str(msg.metadata.dst_node_id)}),
    })
    return Message(content, reply_to=msg)


def _good(value):
    return {"shared": np.full((2, 3), value, np.float32), "p_100": np.full((4,), value, np.float32)}


BAD = {
    "wrong shape": ({"shared": np.zeros((3, 2), np.float32)}, "has shape (3, 2), expected (2, 3)"),
    "wrong dtype": ({"shared": np.zeros((2, 3), np.float64)}, "has dtype float64, expected float32"),
    "unknown name": ({"extra": np.zeros(1, np.float32)}, "'extra' is not a parameter of the network"),
    "NaN": ({"shared": np.full((2, 3), np.nan, np.float32)}, "contains NaN or Inf"),
    "Inf": ({"p_100": np.full((4,), -np.inf, np.float32)}, "contains NaN or Inf"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_array_is_rejected_with_a_clear_message(case, caplog):
    strategy, initial, (m0, m1, m2, m3) = _setup()
    change, reason = BAD[case]
    replies = [_reply(m0, _good(1.0), 1), _reply(m1, {**_good(2.0), **change}, 5), _reply(m2, _good(3.0), 3)]
    with caplog.at_level(logging.ERROR, logger="sporax.fl"):
        arrays, _ = strategy.aggregate_train(1, replies)
    assert f"rejected the reply of client {m1.metadata.dst_node_id}" in caplog.text and reason in caplog.text
    (rejected,) = strategy.round_info["rejected"]
    assert reason in rejected["reason"]
    np.testing.assert_allclose(arrays["shared"].numpy(), np.full((2, 3), (1 * 1 + 3 * 3) / 4))
    assert "2" not in strategy.client_records and sorted(strategy.client_records) == ["11", "13"]


def test_a_name_the_client_does_not_push_is_rejected():
    strategy, initial, (m0, m1, *_) = _setup([(True, False, False), (False, True, True)])
    sneaky = {**_good(2.0), "p_011": np.zeros(4, np.float32)}  # p_011 is pulled, never pushed
    strategy.aggregate_train(1, [_reply(m0, _good(1.0)), _reply(m1, sneaky)])
    assert "'p_011' is not pushed to the server" in strategy.round_info["rejected"][0]["reason"]


def test_too_many_bytes_are_rejected():
    strategy, initial, (m0, m1, *_) = _setup()
    padded = ArrayRecord({k: Array(v) for k, v in _good(2.0).items()})
    a = padded["shared"]
    padded["shared"] = Array(dtype=a.dtype, shape=tuple(a.shape), stype=a.stype, data=a.data + b"\0" * 5000)
    strategy.aggregate_train(1, [_reply(m0, _good(1.0)), _reply(m1, padded)])
    assert "more than its 24 bytes of data" in strategy.round_info["rejected"][0]["reason"]

    strategy, initial, (m0, m1, *_) = _setup(max_message_bytes=100)
    strategy.aggregate_train(1, [_reply(m0, _good(1.0))])
    assert "more than the limit of 100" in strategy.round_info["rejected"][0]["reason"]


@pytest.mark.parametrize("examples,why", [(-1, "expected an int >= 0"), (2.5, "expected an int >= 0")])
def test_a_bad_example_count_is_rejected(examples, why):
    strategy, initial, (m0, m1, *_) = _setup()
    strategy.aggregate_train(1, [_reply(m0, _good(1.0)), _reply(m1, _good(2.0), examples)])
    assert why in strategy.round_info["rejected"][0]["reason"]


def test_missing_pushed_parameters_are_rejected():
    strategy, initial, (m0, m1, *_) = _setup()
    strategy.aggregate_train(1, [_reply(m0, _good(1.0)), _reply(m1, {"shared": np.ones((2, 3), np.float32)})])
    assert "misses the pushed parameters ['p_100']" in strategy.round_info["rejected"][0]["reason"]


def test_the_global_record_changes_only_by_aggregation():
    strategy, initial, (m0, m1, *_) = _setup()
    arrays, _ = strategy.aggregate_train(1, [_reply(m0, _good(1.0)), _reply(m1, _good(3.0))])
    # only 'shared' is averaged; every other entry is the very same Array, byte for byte
    assert arrays["p_100"] is initial["p_100"]
    np.testing.assert_allclose(arrays["shared"].numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(strategy.client_records["12"]["p_100"].numpy(), np.full(4, 3.0))
    # nothing accepted: nothing changes
    assert strategy.aggregate_train(2, []) == (None, None)


def test_too_few_nodes_skip_training_without_waiting(caplog):
    strategy, initial, _ = _setup()
    strategy.min_available_nodes = 5
    with caplog.at_level(logging.WARNING, logger="sporax.fl"):
        assert list(strategy.configure_train(2, initial, ConfigRecord(), Grid())) == []
    assert "only 4 clients available, 5 needed" in caplog.text
    assert strategy.aggregate_train(2, []) == (None, None) and strategy.round_info["skipped"]


def test_strategies_are_flowers():
    from flwr.serverapp import strategy as flower

    assert issubclass(fl.FedAvg, flower.FedAvg) and issubclass(fl.FedProx, flower.FedProx)
    assert issubclass(fl.FedAdam, flower.FedAdam)
