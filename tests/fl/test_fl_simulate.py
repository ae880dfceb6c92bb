"""sporax.fl.simulate: server and clients in one process over Flower's Message API."""

import itertools
import logging
import time

import numpy as np
import pytest
from fl_nets import Flags, add_train

import sporax
from sporax import Parameter, Tensor, nn, ops
from sporax.context import set_fl_context

fl = pytest.importorskip("sporax.fl")

DATA = [(1.0, 1), (2.0, 3), (4.0, 4)]  # (step, examples) per client
W = np.array([1, 3, 4], np.float64)
S = np.array([1.0, 2.0, 4.0])


def test_weighted_average_is_exact():
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    weights = [3, 5, 7]

    def train(net, i, server_round):
        net.shared.set_data(Tensor(values[i]))
        return weights[i]

    result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=1)
    expected = sum(w * v.astype(np.float64) for w, v in zip(weights, values)) / sum(weights)
    np.testing.assert_allclose(result.server["shared"], expected, rtol=1e-6, atol=1e-7)
    assert result.server["shared"].dtype == np.float32
    h = result.history[0]
    assert (h["sampled"], h["accepted"], h["rejected"], h["failed"], h["skipped"]) == (3, 3, [], [], None)
    for i in range(3):
        np.testing.assert_array_equal(result.clients[i]["shared"], values[i])  # trained after the last pull


@pytest.mark.parametrize("push,pull,aggr", list(itertools.product([False, True], repeat=3)))
def test_every_flag_combination(push, pull, aggr):
    name = f"p_{int(push)}{int(pull)}{int(aggr)}"
    seen = {}

    def train(net, i, server_round):
        seen[(i, server_round)] = getattr(net, name).asnumpy().copy()
        return add_train(net, DATA[i], server_round)

    result = fl.simulate(lambda: Flags([(push, pull, aggr)]), train, [0, 1, 2], num_rounds=2)
    a1 = float(W @ S / W.sum())  # the round-1 average
    for i in range(3):
        np.testing.assert_array_equal(seen[(i, 1)], np.zeros(4, np.float32))
        if pull and push and aggr:
            start = a1  # the global average overwrites the client's value
        elif pull and not push:
            start = 0.0  # the server's (never changed) value
        else:
            start = S[i]  # not pulled, or the client's own value kept by the server
        np.testing.assert_allclose(seen[(i, 2)], np.full(4, start), rtol=1e-6)
        np.testing.assert_allclose(result.clients[i][name], np.full(4, start + S[i]), rtol=1e-6)
    expected_global = 2 * a1 if push and aggr else 0.0
    np.testing.assert_allclose(result.server[name], np.full(4, expected_global), rtol=1e-6)
    stored = {c: rec[name] for c, rec in result.server_clients.items() if name in rec}
    if push and not aggr:
        assert sorted(stored) == ["0", "1", "2"]
        for i in range(3):
            np.testing.assert_allclose(stored[str(i)], np.full(4, 2 * S[i]))
    else:
        assert stored == {}
    # the shared parameter is plain FedAvg throughout
    np.testing.assert_allclose(result.server["shared"], np.full((2, 3), 2 * a1), rtol=1e-6)


def test_messages_carry_exactly_the_flagged_names():
    """What a client sends is its pushed set; what the server sends, its pulled set."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

    combos = list(itertools.product([False, True], repeat=3))
    plan = fl.Plan(Flags(combos))
    strategy = fl.FedAvg(plan, min_train_nodes=1, min_available_nodes=1, fraction_evaluate=0.0)
    net = Flags(combos)
    initial = fl._records.record_from({p.name: p.asnumpy() for _, p in net.parameters_and_names()})

    class Grid:
        def get_node_ids(self):
            return [7]

    with fl.simulation._task_identity(1):
        (msg,) = strategy.configure_train(1, initial, ConfigRecord(), Grid())
        sent = set(msg.content["arrays"].keys())
        # pulled and not stored per client; stored ones go back only to the client that pushed them
        assert sent == {"shared", "p_010", "p_011", "p_111"}
        msg.metadata.__dict__["_message_id"] = "m1"
        client = fl.FLClient(lambda: Flags(combos), add_train, [DATA[0]])
        ctx = Context(run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
        reply = client.train(msg, ctx)
    assert set(reply.content["arrays"].keys()) == {"shared", "p_100", "p_101", "p_110", "p_111"}
    assert isinstance(reply.content["arrays"], ArrayRecord)
    assert isinstance(reply, Message)


def test_integer_and_bool_parameters_are_never_averaged():
    extra = {
        "steps": (np.zeros((), np.int32), dict(push_to_server=True, pull_from_server=True)),
        "mask": (np.zeros((3,), np.bool_), dict(push_to_server=True, pull_from_server=True)),
    }

    def train(net, i, server_round):
        net.steps.set_data(Tensor(np.array(net.steps.asnumpy() + i + 1, np.int32)))
        net.mask.set_data(Tensor(np.array([i == 0, i == 1, True])))
        return add_train(net, DATA[i], server_round)

    result = fl.simulate(lambda: Flags(extra=extra), train, [0, 1, 2], num_rounds=3)
    assert result.server["steps"].dtype == np.int32 and result.server["steps"] == 0  # the global is untouched
    assert result.server["mask"].dtype == np.bool_ and not result.server["mask"].any()
    for i in range(3):
        assert result.clients[i]["steps"] == 3 * (i + 1)  # its own value came back each round
        assert result.server_clients[str(i)]["steps"].dtype == np.int32
        np.testing.assert_array_equal(result.clients[i]["mask"], [i == 0, i == 1, True])


def test_personal_layers_survive_rounds_in_context_state():
    from flwr.app import Context, RecordDict

    def make_net():
        return Flags([(False, False, True)])  # p_001: personal

    result = fl.simulate(make_net, add_train, [0, 1, 2] and DATA, num_rounds=3)
    for i in range(3):
        np.testing.assert_allclose(result.clients[i]["p_001"], np.full(4, 3 * S[i]))
    np.testing.assert_array_equal(result.server["p_001"], np.zeros(4))

    # the state lives in Flower's Context: a fresh client object (an empty cache, as in a new
    # ClientApp process) rebuilds the personal layer from the Context alone
    app = fl.client_app(make_net, add_train, DATA)
    ctx = Context(run_id=1, node_id=5, node_config={"partition-id": 2}, state=RecordDict(), run_config={})
    grid = fl.LocalGrid(app, [ctx], None)
    from flwr.supercore.run import Run

    grid.set_run(Run.create_empty(1))
    server = fl.server_app(make_net, num_rounds=2)
    with fl.simulation._task_identity(1):
        server(grid, Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={}))
    fresh = fl.FLClient(make_net, add_train, DATA)
    np.testing.assert_allclose(fresh.parameters(ctx)["p_001"], np.full(4, 2 * S[2]))
    assert "sporax.fl.local" in ctx.state.array_records


def test_bfloat16_parameters_travel_and_average():
    extra = {"h": (np.zeros((4,), sporax.bfloat16.np_dtype), dict(push_to_server=True, pull_from_server=True))}

    def train(net, i, server_round):
        net.h.set_data(Tensor(np.full((4,), float(i + 1), np.float32)).astype(sporax.bfloat16))
        return 1

    result = fl.simulate(lambda: Flags(extra=extra), train, [0, 1, 2], num_rounds=1)
    assert result.server["h"].dtype == sporax.bfloat16.np_dtype
    np.testing.assert_allclose(result.server["h"].astype(np.float32), np.full(4, 2.0))


def test_fedprox_applies_the_proximal_term_on_the_client():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.zeros((3,), np.float32)), name="w")
            self.w.set_param_fl(push_to_server=True, pull_from_server=True)

        def construct(self):
            return self.w

    def train(net, target, server_round):
        t = Tensor(np.full((3,), target, np.float32))
        step = sporax.value_and_grad(lambda: ops.reduce_sum(ops.square(net() - t)) + fl.proximal_term(net),
                                     None, net.trainable_params())
        for _ in range(40):
            _, grads = step()
            net.w.set_data(net.w - 0.05 * grads[0])
        return 1

    mu = 10.0
    set_fl_context(proximal_mu=mu)
    result = fl.simulate(Net, train, [1.0, 3.0], num_rounds=2, strategy="fedprox")
    # the local optimum of (w - t)^2 + mu/2 (w - g)^2 is (2 t + mu g) / (2 + mu)
    g = 0.0
    for _ in range(2):
        local = [(2 * t + mu * g) / (2 + mu) for t in (1.0, 3.0)]
        g = sum(local) / 2
    np.testing.assert_allclose(result.server["w"], np.full(3, g), rtol=1e-4)
    np.testing.assert_allclose(result.clients[1]["w"], np.full(3, local[1]), rtol=1e-4)
    plain = fl.simulate(Net, train, [1.0, 3.0], num_rounds=1, strategy="fedavg")
    # no term outside FedProx: plain gradient descent from 0, 40 steps of factor (1 - 0.05 * 2)
    np.testing.assert_allclose(plain.server["w"], np.full(3, 2.0 * (1 - 0.9**40)), rtol=1e-4)


def test_fedadam_steps_from_the_average():
    result = fl.simulate(Flags, add_train, DATA, num_rounds=1, strategy="fedadam")
    delta = float(W @ S / W.sum())
    eta, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    m, v = (1 - b1) * delta, (1 - b2) * delta**2
    eta_norm = eta * np.sqrt(1 - b2**2) / (1 - b1**2)
    np.testing.assert_allclose(result.server["shared"], np.full((2, 3), eta_norm * m / (np.sqrt(v) + tau)), rtol=1e-5)


def test_bad_clients_are_rejected_and_the_round_goes_on(caplog):
    def train(net, i, server_round):
        add_train(net, DATA[i], server_round)
        if i == 2:
            net.shared.set_data(Tensor(np.full((2, 3), np.nan, np.float32)))
        return DATA[i][1]

    with caplog.at_level(logging.ERROR, logger="sporax.fl"):
        result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=1)
    h = result.history[0]
    assert h["accepted"] == 2 and [r["client"] for r in h["rejected"]] == ["2"]
    assert "NaN or Inf" in h["rejected"][0]["reason"]
    assert "rejected the reply of client 2" in caplog.text
    np.testing.assert_allclose(result.server["shared"], np.full((2, 3), (1 * 1 + 3 * 2) / 4), rtol=1e-6)


def test_a_raising_client_fails_alone():
    def train(net, i, server_round):
        if i == 0:
            raise RuntimeError("disk full")
        return add_train(net, DATA[i], server_round)

    result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=1)
    h = result.history[0]
    assert h["accepted"] == 2 and "disk full" in h["failed"][0]["reason"]
    np.testing.assert_allclose(result.server["shared"], np.full((2, 3), (3 * 2 + 4 * 4) / 7), rtol=1e-6)


def test_a_client_that_hangs_does_not_stall_past_the_round_timeout():
    def train(net, i, server_round):
        if i == 1 and server_round == 1:
            time.sleep(2.5)
        return add_train(net, DATA[i], server_round)

    result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=2, round_timeout=0.5)
    r1, r2 = result.history
    assert r1["accepted"] == 2 and r1["time"]["round_trip"] < 2.0  # not the 2.5 s the client sleeps
    # round 2 runs while client 1 still sleeps: it is not sampled; clients 0 and 2 start from
    # round 1's average of themselves, (1 * 1 + 4 * 4) / 5 = 3.4, and add their steps
    assert r2["sampled"] == 2 and r2["accepted"] == 2
    np.testing.assert_allclose(result.server["shared"], np.full((2, 3), (1 * 4.4 + 4 * 7.4) / 5), rtol=1e-6)


def test_too_few_clients_skip_the_round_and_change_nothing(caplog):
    set_fl_context(min_available_clients=4)
    calls = []

    def train(net, i, server_round):
        calls.append(i)
        return add_train(net, DATA[i], server_round)

    with caplog.at_level(logging.WARNING, logger="sporax.fl"):
        result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=2)
    assert calls == [] and all(h["skipped"] for h in result.history)
    assert "only 3 clients available, 4 needed" in caplog.text
    np.testing.assert_array_equal(result.server["shared"], np.zeros((2, 3)))


def test_too_few_accepted_replies_skip_the_round():
    set_fl_context(min_fit_clients=3)

    def train(net, i, server_round):
        add_train(net, DATA[i], server_round)
        if i == 0:
            net.shared.set_data(Tensor(np.full((2, 3), np.inf, np.float32)))
        return 1

    result = fl.simulate(Flags, train, [0, 1, 2], num_rounds=1)
    assert result.history[0]["skipped"] == "2 accepted replies, 3 needed"
    np.testing.assert_array_equal(result.server["shared"], np.zeros((2, 3)))


def test_fraction_fit_samples_clients():
    calls = []

    def train(net, i, server_round):
        calls.append((server_round, i))
        return add_train(net, DATA[i], server_round)

    result = fl.simulate(Flags, train, DATA and [0, 1, 2], num_rounds=3, fraction_fit=0.5)
    assert [h["sampled"] for h in result.history] == [1, 1, 1] and len(calls) == 3


def test_simulate_checks_its_arguments():
    with pytest.raises(TypeError, match="'make_net' should be a callable"):
        fl.simulate(None, add_train, DATA, 1)
    with pytest.raises(TypeError, match="'train_fn' should be a callable"):
        fl.simulate(Flags, 3, DATA, 1)
    with pytest.raises(ValueError, match="'client_data' should be a non-empty list"):
        fl.simulate(Flags, add_train, [], 1)
    with pytest.raises(ValueError, match="'num_rounds' should be an int >= 1"):
        fl.simulate(Flags, add_train, DATA, 0)
    with pytest.raises(ValueError, match="'fraction_fit' should be a float in"):
        fl.simulate(Flags, add_train, DATA, 1, fraction_fit=1.5)
    with pytest.raises(ValueError, match="'round_timeout' should be None or"):
        fl.simulate(Flags, add_train, DATA, 1, round_timeout=0)
    with pytest.raises(ValueError, match="'strategy' should be one of"):
        fl.simulate(Flags, add_train, DATA, 1, strategy="krum")
    with pytest.raises(TypeError, match="sporax.fl needs a Cell"):
        fl.simulate(lambda: 3, add_train, DATA, 1)


def test_train_fn_must_return_an_example_count():
    result = fl.simulate(Flags, lambda net, d, r: "many", [0, 1], num_rounds=1)
    assert len(result.history[0]["failed"]) == 2 and "number of local examples" in result.history[0]["failed"][0]["reason"]


def test_set_fl_context_validates_and_resets():
    from sporax import context

    set_fl_context(num_rounds=7, strategy="FedAdam", round_timeout=5, fl_iteration_num=9)
    assert context.get_fl_context("num_rounds") == 9 and context.get_fl_context("strategy") == "fedadam"
    assert context.get_fl_context("round_timeout") == 5.0
    with pytest.raises(ValueError, match="'fraction_fit' should be a float in"):
        set_fl_context(fraction_fit=2.0, num_rounds=1)
    assert context.get_fl_context("num_rounds") == 9  # nothing written
    with pytest.raises(ValueError, match="not recognized"):
        set_fl_context(rounds=3)
    with pytest.raises(ValueError, match="'server_address' should be a 'host:port'"):
        set_fl_context(server_address="localhost")
    with pytest.raises(ValueError, match="'strategy' should be one of"):
        set_fl_context(strategy="krum")
    context.reset_fl_context()
    assert context.get_fl_context("num_rounds") == 3


def _regression(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, n, 8)]


def _dense():
    net = nn.Dense(3, 1, weight_init="zeros", bias_init="zeros")
    net.set_param_fl(push_to_server=True, pull_from_server=True)
    return net


def test_model_trainer_trains_with_model_and_counts_examples():
    seen = []
    trainer = fl.ModelTrainer(nn.MSELoss(), lambda params: nn.SGD(params, 0.1))

    def train(net, data, server_round):
        n = trainer(net, data, server_round)
        seen.append(n)
        return n

    result = fl.simulate(_dense, train, [_regression(16, 0), _regression(48, 1)], num_rounds=2)
    assert sorted(seen) == [16, 16, 48, 48]
    weight = [v for k, v in result.server.items() if "weight" in k][0].ravel()
    target = np.array([1.0, -2.0, 0.5])
    assert np.linalg.norm(weight - target) < 0.5 * np.linalg.norm(target)  # from 0, well on the way


def test_model_trainer_adds_the_proximal_term_under_fedprox():
    trainer = fl.ModelTrainer(nn.MSELoss(), lambda params: nn.SGD(params, 0.01))
    data = [_regression(32, 0), _regression(32, 1)]
    plain = fl.simulate(_dense, trainer, data, num_rounds=1, strategy="fedavg")
    set_fl_context(proximal_mu=50.0)
    prox = fl.simulate(_dense, trainer, data, num_rounds=1, strategy="fedprox")
    moved = lambda r: max(float(np.abs(v).max()) for v in r.server.values())  # noqa: E731 (from the zero init)
    assert moved(prox) < 0.7 * moved(plain)


def test_federated_evaluation_through_the_apps():
    from flwr.app import Context, RecordDict
    from flwr.supercore.run import Run

    def evaluate(net, data):
        step, count = data
        return count, {"score": float(net.shared.asnumpy().mean()) + step}

    set_fl_context(fraction_evaluate=1.0)
    app = fl.client_app(Flags, add_train, DATA, eval_fn=evaluate)
    contexts = [Context(run_id=1, node_id=20 + i, node_config={"partition-id": i}, state=RecordDict(), run_config={})
                for i in range(3)]
    grid = fl.LocalGrid(app, contexts, Run.create_empty(1))
    results = []
    with fl.simulation._task_identity(1):
        fl.server_app(Flags, num_rounds=1, on_finish=results.append)(
            grid, Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={}))
    (result,) = results
    a1 = float(W @ S / W.sum())
    # each client evaluates the new global model (a1) on its data: score = a1 + step, weighted by count
    expected = float(W @ (a1 + S) / W.sum())
    assert result.history[0]["evaluate_metrics"]["score"] == pytest.approx(expected, rel=1e-6)


def test_run_config_overrides_the_context():
    from flwr.app import Context, RecordDict
    from flwr.supercore.run import Run

    app = fl.client_app(Flags, add_train, DATA)
    contexts = [Context(run_id=1, node_id=30 + i, node_config={"partition-id": i}, state=RecordDict(), run_config={})
                for i in range(3)]
    grid = fl.LocalGrid(app, contexts, Run.create_empty(1))
    results = []
    with fl.simulation._task_identity(1):
        fl.server_app(Flags, on_finish=results.append)(
            grid, Context(run_id=1, node_id=1, node_config={}, state=RecordDict(),
                          run_config={"num-rounds": 2, "fraction-fit": 0.34}))
    assert [h["sampled"] for h in results[0].history] == [1, 1]
