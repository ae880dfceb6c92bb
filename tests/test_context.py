"""Context records (spec §7) and communication emulation (§7.2)."""

import pytest

import sporax as sp
from sporax import communication, context
from sporax.context import ParallelMode


def test_auto_parallel_context_defaults_validation_and_reset():
    assert sp.get_auto_parallel_context("parallel_mode") == "stand_alone"
    assert sp.get_auto_parallel_context("device_num") == 1
    sp.set_auto_parallel_context(parallel_mode=ParallelMode.SEMI_AUTO_PARALLEL, device_num=8, global_rank=3,
                                 gradients_mean=True, enable_parallel_optimizer=True)
    assert (communication.get_rank(), communication.get_group_size()) == (3, 8)
    with pytest.raises(ValueError, match="parallel_mode"):
        sp.set_auto_parallel_context(parallel_mode="DATA_PARALLEL")
    with pytest.raises(TypeError, match="device_num"):
        sp.set_auto_parallel_context(device_num="8")
    with pytest.raises(ValueError, match="device_num"):
        sp.set_auto_parallel_context(device_num=0)
    with pytest.raises(ValueError, match="global_rank"):
        sp.set_auto_parallel_context(global_rank=4096)
    with pytest.raises(TypeError, match="gradients_mean"):
        sp.set_auto_parallel_context(gradients_mean=1)
    with pytest.raises(ValueError, match="nope"):
        sp.set_auto_parallel_context(nope=1)
    with pytest.raises(ValueError, match="nope"):
        sp.get_auto_parallel_context("nope")
    # a rejected call changes nothing
    with pytest.raises(ValueError):
        sp.set_auto_parallel_context(device_num=2, parallel_mode="bad")
    assert sp.get_auto_parallel_context("device_num") == 8
    sp.reset_auto_parallel_context()
    assert sp.get_auto_parallel_context("parallel_mode") == "stand_alone"
    assert ParallelMode.MODE_LIST == ["stand_alone", "data_parallel", "hybrid_parallel", "semi_auto_parallel",
                                      "auto_parallel"]


def test_execution_context():
    assert sp.get_context("mode") == sp.PYNATIVE_MODE
    sp.set_context(mode=sp.GRAPH_MODE, device_target="CPU")
    assert sp.get_context("mode") == sp.GRAPH_MODE and sp.get_context("device_target") == "CPU"
    with pytest.raises(ValueError, match="mode"):
        sp.set_context(mode=5)
    with pytest.raises(ValueError, match="device_target"):
        sp.set_context(device_target="TPU")
    with pytest.raises(ValueError, match="unknown_key"):
        sp.set_context(unknown_key=1)
    context._reset()
    assert sp.get_context("mode") == sp.PYNATIVE_MODE


def test_ps_context(monkeypatch):
    assert sp.get_ps_context("enable_ps") is False and sp.get_ps_context("ms_role") == "MS_NOT_PS"
    monkeypatch.setenv("MS_ROLE", "MS_SERVER")
    sp.set_ps_context(enable_ps=True)
    assert sp.get_ps_context("ms_role") == "MS_PSERVER"
    with pytest.raises(ValueError, match="bogus"):
        sp.set_ps_context(bogus=1)


def test_communication_defaults_and_groups():
    assert (communication.get_rank(), communication.get_group_size()) == (0, 1)
    sp.set_auto_parallel_context(device_num=8, global_rank=5)
    communication.create_group("g", [4, 5, 6, 7])
    assert (communication.get_rank("g"), communication.get_group_size("g")) == (1, 4)
    with pytest.raises(ValueError, match="does not exist"):
        communication.get_group_size("missing")
