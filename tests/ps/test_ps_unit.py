"""Parameter-server pieces that need no Ray: context, placement, the cache, EmbeddingLookup locally."""

from collections import OrderedDict

import numpy as np
import pytest

import sporax as sp
from sporax import nn
from sporax.ps._placement import place, row_blocks, split_rows, stable_server
from sporax.ps.cache import EmbeddingCache


def test_ps_context_roles_and_validation(monkeypatch):
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert sp.get_ps_context("ms_role") == "MS_NOT_PS"
    p = sp.Parameter(np.ones(2, np.float32), name="w")
    with pytest.raises(RuntimeError, match=r"set_ps_context\(enable_ps=True\).*MS_ROLE"):
        p.set_param_ps()
    sp.set_ps_context(enable_ps=True, snapshot_steps=3, server_timeout=5)
    assert sp.get_ps_context("ms_role") == "MS_WORKER"  # embedded: this process is the worker
    assert sp.get_ps_context("snapshot_steps") == 3 and sp.get_ps_context("server_timeout") == 5.0
    p.set_param_ps(init_in_server=True)
    assert p.is_param_ps and p.init_in_server
    with pytest.raises(ValueError, match="no_such_key"):
        sp.set_ps_context(no_such_key=1)
    with pytest.raises(TypeError, match="enable_ps"):
        sp.set_ps_context(enable_ps=1, snapshot_steps=9)
    with pytest.raises(ValueError, match="snapshot_steps"):
        sp.set_ps_context(snapshot_steps=-1)
    with pytest.raises(ValueError, match="server_timeout"):
        sp.set_ps_context(server_timeout=0)
    assert sp.get_ps_context("snapshot_steps") == 3  # a failed call changed nothing
    monkeypatch.setenv("MS_ROLE", "MS_SERVER")
    assert sp.get_ps_context("ms_role") == "MS_PSERVER"
    monkeypatch.setenv("MS_ROLE", "bogus")
    with pytest.raises(RuntimeError, match="MS_ROLE"):
        sp.Parameter(1.0).set_param_ps()


def test_placement_is_stable_and_row_slices_tables():
    assert stable_server("fc.weight", 4) == stable_server("fc.weight", 4)  # crc32, not Python's salted hash
    assert {stable_server(f"p{i}", 3) for i in range(30)} == {0, 1, 2}
    assert row_blocks(10, 3) == [(0, 4), (4, 8), (8, 10)]
    pieces = place("emb", (10, 4), 3, row_sparse=True)
    assert [(pc.server, pc.row_start, pc.row_stop) for pc in pieces] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    (single,) = place("fc.weight", (4, 8), 3, row_sparse=False)
    assert not single.sliced and single.row_stop == 4
    ids = np.array([1, 3, 4, 9])
    got = [(pc.server, ids[pos].tolist()) for pc, pos in split_rows(pieces, ids)]
    assert got == [(0, [1, 3]), (1, [4]), (2, [9])]


def _lru_sim(stream, capacity):
    """Exact LRU over each step's unique ids: hits by unique id."""
    cache: OrderedDict = OrderedDict()
    hits = total = 0
    for ids in stream:
        for i in ids:
            total += 1
            if i in cache:
                hits += 1
                cache.move_to_end(i)
        for i in ids:
            if i not in cache:
                cache[i] = True
                cache.move_to_end(i)
                while len(cache) > capacity:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(i)
    return hits / total


def test_cache_lru_eviction_keeps_rows_in_use_and_writes_back():
    c = EmbeddingCache(3, 2, np.float32, 10)
    p = c.prepare(np.array([1, 2, 3]), np.array([1, 1, 1]))
    assert (p.slots >= 0).all() and len(p.load_ids) == 3 and c.stats()["step"]["unique_hits"] == 0
    c.fill(p.load_slots, np.ones((3, 2), np.float32) * np.array([[1], [2], [3]]), {})
    c.dirty[c.slot_of[2]] = True  # row 2 was updated in the cache
    p = c.prepare(np.array([1, 3]), np.array([2, 1]))  # hits only; 2 is now least recently used
    assert len(p.load_ids) == 0 and c.stats()["step"]["hit_rate"] == 1.0
    p = c.prepare(np.array([1, 4]), np.array([1, 1]))  # 4 misses: evicts 2 (LRU, dirty -> written back)
    ids, vals, _ = p.evicted
    assert ids.tolist() == [2] and vals.tolist() == [[2.0, 2.0]]
    assert c.slot_of[2] == -1 and c.slot_of[4] >= 0 and c.slot_of[1] >= 0
    # A step with more distinct rows than the cache holds: rows in use stay, the rest read directly.
    p = c.prepare(np.array([1, 3, 4, 5, 6]), np.ones(5, np.int64))
    assert (p.slots[:3] >= 0).all() and (p.slots[3:] == -1).all() and len(p.evicted[0]) == 0
    assert c.stats()["step"]["fallback"] == 2


def test_cache_lfu_evicts_the_least_used():
    c = EmbeddingCache(2, 1, np.float32, 10, policy="LFU")
    c.prepare(np.array([1, 2]), np.array([5, 1]))
    c.prepare(np.array([2]), np.array([1]))  # 2 is more recent, but 1 is used more often
    c.prepare(np.array([3]), np.array([1]))
    assert c.slot_of[1] >= 0 and c.slot_of[2] == -1
    with pytest.raises(ValueError, match="policy"):
        EmbeddingCache(2, 1, np.float32, 10, policy="MRU")


def test_cache_hit_rate_matches_exact_lru():
    rng = np.random.default_rng(0)
    stream = [np.unique(np.minimum(rng.zipf(1.2, 256), 5000) - 1) for _ in range(60)]
    c = EmbeddingCache(300, 1, np.float32, 5000)
    for ids in stream:
        c.prepare(ids, np.ones(len(ids), np.int64))
    measured = c.stats()["total"]["unique_hit_rate"]
    assert abs(measured - _lru_sim(stream, 300)) < 0.01


def test_embedding_lookup_local_and_bad_input():
    sp.set_seed(3)
    layer = nn.EmbeddingLookup(10, 4, vocab_cache_size=5)
    t = layer.embedding_table
    assert t.name == "embedding_table" and t.cache_enable and t.cache_shape == [5, 4] and t.unique
    assert not t.is_param_ps  # outside PS mode the cache flags are recorded, the lookup is local
    ids = np.array([[1, 2], [9, 1]], np.int32)
    out = layer(sp.Tensor(ids)).asnumpy()
    np.testing.assert_array_equal(out, t.asnumpy()[ids])
    clipped = nn.EmbeddingLookup(10, 4, param_init="ones", max_norm=1.0)(sp.Tensor(ids)).asnumpy()
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="input_indices"):
        layer(sp.Tensor(np.array([0, 10], np.int32)))
    with pytest.raises(ValueError, match="vocab_cache_size"):
        nn.EmbeddingLookup(10, 4, vocab_cache_size=-1)
    with pytest.raises(ValueError, match="vocab_cache_size"):
        nn.EmbeddingLookup(10, 4, vocab_cache_size=11)
    with pytest.raises(TypeError, match="vocab_cache_size"):
        nn.EmbeddingLookup(10, 4, vocab_cache_size=2.0)
    with pytest.raises(ValueError, match="target"):
        nn.EmbeddingLookup(10, 4, target="GPU")
    with pytest.raises(ValueError, match="slice_mode"):
        nn.EmbeddingLookup(10, 4, slice_mode="rows")
    with pytest.raises(ValueError, match="max_norm"):
        nn.EmbeddingLookup(10, 4, max_norm=0.0)
    with pytest.raises(ValueError, match="cache_policy"):
        nn.EmbeddingLookup(10, 4, cache_policy="FIFO")


def test_embedding_lookup_trains_locally():
    sp.set_seed(3)
    net = nn.EmbeddingLookup(10, 4)
    before = net.embedding_table.asnumpy().copy()
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    step = nn.TrainOneStepCell(loss_net, nn.SGD(net.trainable_params(), 0.5))
    ids = np.array([1, 1, 3], np.int32)
    step(sp.Tensor(ids), sp.Tensor(np.zeros((3, 4), np.float32)))
    after = net.embedding_table.asnumpy()
    changed = np.flatnonzero(np.abs(after - before).sum(1) > 0).tolist()
    assert changed == [1, 3]


def test_rows_only_follows_mindspore_ps_optimizers():
    from sporax.ps._apply import rows_only

    params = nn.Dense(2, 2).trainable_params()
    assert rows_only(nn.Adam(params, use_lazy=True)) and rows_only(nn.FTRL(params))
    assert rows_only(nn.ProximalAdagrad(params)) and rows_only(nn.Adagrad(params))
    assert rows_only(nn.SGD(params))  # a zero gradient changes nothing: rows only is the dense update
    assert not rows_only(nn.Adam(params)) and not rows_only(nn.Momentum(params, 0.1, 0.9))
    assert not rows_only(nn.SGD(params, momentum=0.9)) and not rows_only(nn.SGD(params, weight_decay=0.1))
    assert not rows_only(nn.Adagrad(params, weight_decay=0.1)) and not rows_only(nn.RMSProp(params))


def test_server_hands_rows_between_two_workers_caches():
    """The several-workers cache protocol on a ParameterServer object (no Ray): a row that worker 0's
    cache holds and both workers look up is given back before anyone reads it, and only then read."""
    import threading

    import ray.cloudpickle as cloudpickle

    from sporax.ps.server import ParameterServer

    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    layer = nn.EmbeddingLookup(10, 2)
    opt = nn.SGD(layer.trainable_params(), 0.5)
    name = layer.embedding_table.name
    from sporax.ps._apply import state_params

    states = {q.name: ("values", np.zeros_like(table)) for q in state_params(opt)[name]}
    spec = {"n_workers": 2, "optimizer": cloudpickle.dumps(opt), "pieces": [{
        "name": name, "shape": (10, 2), "dtype": "Float32", "row_start": 0, "row_stop": 10, "row_sparse": True,
        "source": ("values", table), "states": states}]}
    srv = ParameterServer(0, 1, "unit")
    srv.register(spec)
    loaded = srv.pull_rows({}, {name: np.array([3, 7])}, worker=0)  # worker 0's cache loads rows 3 and 7
    assert loaded["state_rows"][name][0].tolist() == [[6.0, 7.0], [14.0, 15.0]]
    answers = {}
    t = threading.Thread(target=lambda: answers.setdefault(0, srv.announce(0, 0, {name: np.array([3, 4])}, 30.0)))
    t.start()
    answers[1] = srv.announce(1, 0, {name: np.array([3, 5, 7])}, 30.0)  # the barrier: both have announced
    t.join(30)
    (shared0, back0), (shared1, back1) = answers[0]["answer"][name], answers[1]["answer"][name]
    assert shared0.tolist() == [3] and shared1.tolist() == [3]  # both look row 3 up: updated on the server
    assert back0.tolist() == [3, 7] and back1.tolist() == []  # 7 is worker 1's alone now, 3 is shared
    # Until worker 0 returns its rows, nobody reads them (bounded wait, clear error) ...
    early = srv.pull_rows({name: np.array([3])}, {}, worker=1, timeout=0.01)
    assert "give back" in early["error"]
    srv.give_back(0, name, back0, np.array([3, 7]), np.array([[60.0, 70.0], [140.0, 150.0]], np.float32), {})
    got = srv.pull_rows({name: np.array([3])}, {name: np.array([7])}, worker=1, timeout=0.01)
    assert got["rows"][name].tolist() == [[60.0, 70.0]] and got["state_rows"][name][0].tolist() == [[140.0, 150.0]]
    assert srv.owner[name][7] == 1 and srv.owner[name][3] == -1
    # ... and a worker that announces a different step is told so
    assert "error" in srv.announce(0, 1, {name: np.array([1])}, 0.01)


def test_server_allreduce_of_worker_local_gradients(monkeypatch):
    """Gradients of parameters no server holds: the mean over the workers (the sum when a parallel
    mode is set with gradients_mean=False, as MindSpore's DistributedGradReducer), once every
    worker has sent its part; a retry gets the same result; a missing worker is a bounded error."""
    import threading

    from sporax.ps.server import ParameterServer
    from sporax.ps.worker import _reduce_mean

    srv = ParameterServer(0, 1, "unit")
    got = {}
    g0, g1 = np.array([1.0, 2.0], np.float32), np.array([3.0, 6.0], np.float32)
    t = threading.Thread(target=lambda: got.setdefault(0, srv.allreduce(0, 0, {"w": g0}, 2, 30.0)))
    t.start()
    got[1] = srv.allreduce(1, 0, {"w": g1}, 2, 30.0)
    t.join(30)
    assert got[0]["mean"]["w"].tolist() == got[1]["mean"]["w"].tolist() == [2.0, 4.0]
    assert srv.allreduce(1, 0, {"w": g1 * 100}, 2, 0.01)["mean"]["w"].tolist() == [2.0, 4.0]  # a retried call
    t = threading.Thread(target=lambda: got.setdefault(2, srv.allreduce(0, 1, {"w": g0}, 2, 30.0, False)))
    t.start()
    assert srv.allreduce(1, 1, {"w": g1}, 2, 30.0, False)["mean"]["w"].tolist() == [4.0, 8.0]
    t.join(30)
    late = srv.allreduce(0, 2, {"w": g0}, 2, 0.05)
    assert "workers [1]" in late["error"] and "['w']" in late["error"]
    assert sorted(srv.reduced) == [0, 1]  # old results are dropped as steps go on
    assert _reduce_mean()  # stand-alone: averaged
    sp.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=False)
    assert not _reduce_mean()
    sp.set_auto_parallel_context(gradients_mean=True)
    assert _reduce_mean()
