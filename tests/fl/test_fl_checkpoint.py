"""Checkpoints: the server's global model each round, the clients' local layers, and resuming."""

import os

import numpy as np
import pytest
from fl_nets import Flags, add_train

import sporax
from sporax.context import set_fl_context

fl = pytest.importorskip("sporax.fl")

DATA = [(1.0, 1), (2.0, 3), (4.0, 4)]
COMBOS = [(False, False, True), (True, True, False)]  # a personal layer and a per-client stored one


def make_net():
    return Flags(COMBOS)


def test_checkpoints_are_written_each_round_and_load_into_the_cell(tmp_path):
    set_fl_context(checkpoint_dir=str(tmp_path), keep_checkpoint_max=2)
    result = fl.simulate(make_net, add_train, DATA, num_rounds=3)
    files = sorted(os.listdir(tmp_path))
    assert files == ["clients", "global_round2.ckpt", "global_round3.ckpt", "server_state_round2.ckpt",
                     "server_state_round3.ckpt"]
    assert sorted(os.listdir(tmp_path / "clients")) == ["client_0.ckpt", "client_1.ckpt", "client_2.ckpt"]
    net = make_net()
    sporax.load_checkpoint(str(tmp_path / "global_round3.ckpt"), net)
    for _, p in net.parameters_and_names():
        np.testing.assert_array_equal(p.asnumpy(), result.server[p.name])
    saved = sporax.load_checkpoint(str(tmp_path / "clients" / "client_2.ckpt"))
    assert sorted(saved) == ["fl_round", "p_001", "p_110"]
    np.testing.assert_allclose(saved["p_001"].asnumpy(), result.clients[2]["p_001"])


@pytest.mark.parametrize("strategy", ["fedavg", "fedadam"])
def test_a_run_resumes_from_server_and_client_checkpoints(tmp_path, strategy):
    straight = fl.simulate(make_net, add_train, DATA, num_rounds=4, strategy=strategy)

    set_fl_context(checkpoint_dir=str(tmp_path))
    fl.simulate(make_net, add_train, DATA, num_rounds=2, strategy=strategy)
    set_fl_context(resume=True)
    resumed = fl.simulate(make_net, add_train, DATA, num_rounds=4, strategy=strategy)

    assert [h["round"] for h in resumed.history] == [3, 4]
    for name, value in straight.server.items():
        np.testing.assert_allclose(resumed.server[name], value, rtol=1e-6, err_msg=name)
    for i in range(3):
        for name, value in straight.clients[i].items():
            np.testing.assert_allclose(resumed.clients[i][name], value, rtol=1e-6, err_msg=f"client {i}: {name}")
    assert resumed.server_clients.keys() == straight.server_clients.keys()


def test_resume_refuses_another_network(tmp_path):
    set_fl_context(checkpoint_dir=str(tmp_path))
    fl.simulate(make_net, add_train, DATA, num_rounds=1)
    set_fl_context(resume=True)
    with pytest.raises(ValueError, match="resume with the same network"):
        fl.simulate(lambda: Flags([(True, True, True)]), add_train, DATA, num_rounds=2)
