"""Parameter-server mode end to end on the session's local Ray instance (2 servers per test)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import sporax as sp
import sporax.ps

pytestmark = pytest.mark.xdist_group("ray")  # all Ray tests share one worker, hence one Ray instance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _model import batch, build, train, values  # noqa: E402
from conftest import reset_servers  # noqa: E402


def _local(steps, opt="sgd", cache=0, batches=None):
    cell, net = build(False, cache, opt)
    train(cell, steps, batches=batches)
    return values(net)


def _ps(steps, opt="sgd", cache=0, policy="LRU", init_in_server=True, batches=None):
    sp.set_ps_context(enable_ps=True, server_timeout=60.0)
    cell, net = build(True, cache, opt, init_in_server, policy)
    train(cell, steps, batches=batches)
    sporax.ps.pull_parameters(cell)
    return cell, net, values(net)


def _close(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=1e-5, err_msg=k)


def _servers(job):
    import ray

    from sporax.ps import cluster

    return [ray.get_actor(f"{job}.server{k}", namespace=cluster.NAMESPACE) for k in range(2)]


def test_embedded_ps_matches_local_training_with_and_without_cache(ps_job, monkeypatch):
    ref = _local(6)
    cell, net, no_cache = _ps(6)
    _close(no_cache, ref)
    # the table is row-sliced over both servers, the Dense weights hashed to one each
    import ray

    pieces = [ray.get(h.ping.remote())["pieces"] for h in _servers(ps_job["job"])]
    assert all("emb.embedding_table" in p for p in pieces)
    reset_servers(ps_job["job"])
    sp.context._reset()
    cell, net, cached = _ps(6, cache=12)  # far fewer slots than distinct ids: evictions, write-backs, fallbacks
    _close(cached, ref)
    stats = sporax.ps.cache_stats(cell)["emb.embedding_table"]
    assert stats["total"]["evictions"] > 0 and stats["total"]["writebacks"] > 0 and stats["total"]["fallback"] > 0
    assert 0.0 < stats["total"]["hit_rate"] < 1.0 and stats["capacity"] == 12
    # callbacks see the same figures, per step
    from sporax.train.callback import InternalCallbackParam, RunContext

    monitor = sporax.ps.CacheMonitor(per_print_times=1)
    ids, labels = batch(6)
    cell(sp.Tensor(ids), sp.Tensor(labels))
    monitor.step_end(RunContext(InternalCallbackParam(train_network=cell, cur_step_num=7)))
    step = monitor.history[-1]["emb.embedding_table"]
    assert step == net.emb.cache_stats()["step"] and step["lookups"] == ids.size
    assert step["lookup_hits"] <= step["lookups"] and 0.0 <= step["hit_rate"] <= 1.0


def test_cache_equals_no_cache_with_adam_in_graph_mode(ps_job, monkeypatch):
    sp.set_context(mode=sp.GRAPH_MODE)
    _, _, no_cache = _ps(5, opt="adam")
    reset_servers(ps_job["job"])
    sp.set_context(mode=sp.GRAPH_MODE)
    # the cached run as a user's script: Model.train, with the hit-rate callback
    from _model import Net

    from sporax import nn
    from sporax.train.model import Model

    sp.set_ps_context(enable_ps=True)
    sp.set_seed(7)
    net = Net(cache=20, policy="LFU")
    net.set_param_ps(init_in_server=True)
    model = Model(net, nn.MSELoss(), nn.Adam(net.trainable_params(), 0.01))
    monitor = sporax.ps.CacheMonitor()
    model.train(1, [tuple(sp.Tensor(a) for a in batch(s)) for s in range(5)], callbacks=[monitor])
    assert len(monitor.history) == 5 and monitor.history[0]["emb.embedding_table"]["unique_hits"] == 0
    sporax.ps.pull_parameters(model._train_network)
    cached = values(net)
    _close(cached, no_cache)
    # Adam (not lazy) moves every row each step, as MindSpore's SparseApplyAdam: equal to local dense Adam
    _close(no_cache, _local(5, opt="adam"))


def _half_vocab_batch(step: int):
    """Steps 0..: every id of [0, 32) each step; ids [32, 48) only at step 0 (later replaced by [0, 32))."""
    ids, labels = batch(step)
    ids = ids % 32
    ids.reshape(-1)[:32] = np.random.RandomState(100 + step).permutation(32)
    if step == 0:
        ids.reshape(-1)[32:48] = np.arange(32, 48)
    return ids, labels


def test_server_optimizers_lazy_rows_only_others_as_dense_local_training(ps_job):
    """MindSpore's PS optimizers: Adam(use_lazy=True) is SparseApplyLazyAdam (only looked-up rows
    and their moments change); Momentum (ApplyMomentum) and Adam (SparseApplyAdam) move every row."""
    steps = 4
    dense_ref = _local(steps, opt="adam", batches=_half_vocab_batch)
    _, _, lazy = _ps(steps, opt="lazy_adam", batches=_half_vocab_batch)
    # rows looked up every step, and the Dense head, agree with dense Adam
    for k in ("fc.weight", "fc.bias", "out.weight", "out.bias"):
        np.testing.assert_allclose(lazy[k], dense_ref[k], atol=1e-6, rtol=1e-5, err_msg=k)
    table = "emb.embedding_table"
    np.testing.assert_allclose(lazy[table][:32], dense_ref[table][:32], atol=1e-6, rtol=1e-5)
    # rows looked up at step 0 only stay where step 0 left them (dense Adam keeps moving them)
    after_first = _local(1, opt="adam", batches=_half_vocab_batch)[table]
    np.testing.assert_allclose(lazy[table][32:48], after_first[32:48], atol=1e-7, rtol=1e-6)
    assert np.abs(dense_ref[table][32:48] - after_first[32:48]).min() > 1e-4
    np.testing.assert_array_equal(lazy[table][48:], dense_ref[table][48:])  # never looked up: initial values
    reset_servers(ps_job["job"])
    sp.context._reset()
    _, _, momentum = _ps(steps, opt="momentum", cache=24, batches=_half_vocab_batch)
    _close(momentum, _local(steps, opt="momentum", batches=_half_vocab_batch))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(env: dict, role: str, args: list, **extra):
    env = {k: v for k, v in env.items() if not k.startswith("RAY_ADDRESS")}
    env.update(MS_ROLE=role, **{k: str(v) for k, v in extra.items()})
    return subprocess.Popen([sys.executable, os.path.join(HERE, "_worker_script.py"), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _kill_all(procs) -> None:
    """SIGKILL every process of ``procs`` that still runs, with everything it started (Ray's head included)."""
    import psutil

    for p in procs:
        if p is None or p.poll() is not None:
            continue
        try:
            family = psutil.Process(p.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        for c in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                c.kill()
        p.wait()


def test_scheduler_servers_and_workers_as_processes_train_with_caches_and_survive_a_worker_kill(ray_address, tmp_path):
    """MindSpore's launch: an MS_SCHED process (it starts the Ray head at 127.0.0.1:<free port>), an
    MS_PSERVER process and two MS_WORKER processes, 2 servers. Two jobs in turn on that cluster:
    no cache (worker 1 is killed mid-training and replaced by a new process, which resumes from the
    servers' state), then a 12-row cache on each worker. Both equal single-process local training:
    Adam moves every row each step as locally, and caches on several workers change nothing."""
    pytest.importorskip("psutil")
    steps, opt = 6, "adam"
    port = _free_port()
    env = dict(os.environ, MS_SCHED_HOST="127.0.0.1", MS_SCHED_PORT=str(port), MS_SERVER_NUM="2", MS_WORKER_NUM="2",
               SPORAX_PS_JOB=f"procs{os.getpid()}", JAX_PLATFORMS="cpu", RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(HERE)), os.environ.get("PYTHONPATH", "")]))
    def args(w=0):
        return [tmp_path / f"w{w}", steps, "0,12", opt]

    sched = servers = workers = replacement = None
    try:
        sched = _spawn(env, "MS_SCHED", args())
        servers = [_spawn(env, "MS_PSERVER", args(), MS_SERVER_ID=0)]  # server 1's actor: made by whoever needs it
        workers = [_spawn(env, "MS_WORKER", args(w), MS_WORKER_ID=w) for w in range(2)]
        for line in workers[1].stdout:
            if line.startswith("step 0 2"):
                break
        os.killpg(workers[1].pid, signal.SIGKILL)  # killed mid-training: worker 0 waits for it
        workers[1].wait()
        replacement = _spawn(env, "MS_WORKER", args(1), MS_WORKER_ID=1)
        outs = {}
        for name, p in [("w0", workers[0]), ("w1", replacement), ("s0", servers[0]), ("sched", sched)]:
            outs[name], _ = p.communicate(timeout=240)
            assert p.returncode == 0, (name, outs[name][-3000:])
    finally:
        _kill_all([sched, *(servers or []), *(workers or []), replacement])
    start = int(outs["w1"].split("start 0 ")[1].split()[0])
    assert 2 <= start < steps and "start 0 0" in outs["w0"]  # it redoes the step whose commit was lost, at most
    assert "served 12" in outs["s0"] and "served 12" in outs["sched"]
    # both sides of the protocol ran: rows both workers used, cached rows handed over, and cache hits
    stats = [[int(x) for x in out.split("stats 12 ")[1].split()[1:6:2]] for out in (outs["w0"], outs["w1"])]
    assert all(shared > 0 and hits > 0 for shared, _, hits in stats) and sum(gb for _, gb, _ in stats) > 0, stats
    ref = _local(steps, opt=opt)
    for w in range(2):
        no_cache, cached = (dict(np.load(tmp_path / f"w{w}_c{c}.npz")) for c in (0, 12))
        _close(no_cache, ref, atol=1e-5)
        _close(cached, no_cache, atol=1e-5)


def test_retried_push_is_applied_once(ps_job):
    import ray

    sp.set_ps_context(enable_ps=True)
    cell, net = build(True)
    train(cell, 2)
    plan = cell._ps_plan
    servers = _servers(ps_job["job"])
    step = plan.step - 1  # pushed, not yet committed
    payload = plan.log.get(step)
    assert plan.uncommitted == step
    # A retry of step `step`'s commit, and of an already-applied step's push and commit, are no-ops.
    for h in servers:
        ray.get(h.commit.remote(0, step))
        ray.get(h.commit.remote(0, step))
        assert ray.get(h.push.remote(0, step - 1, {"dense": {}, "rows": {}, "writeback": {}}))["duplicate"]
        ray.get(h.commit.remote(0, step - 1))
    assert payload is None  # no log without snapshots
    train(cell, 4, start=2)
    sporax.ps.pull_parameters(cell)
    _close(values(net), _local(4))
    assert [ray.get(h.status.remote(0))["step"] for h in servers] == [4, 4]


def test_server_restart_resumes_from_snapshot_and_a_dead_server_fails_in_bounded_time(own_job, tmp_path):
    import ray

    ps_job = own_job
    sp.set_ps_context(enable_ps=True, snapshot_steps=2, snapshot_path=str(tmp_path), server_timeout=60.0)
    cell, net = build(True, opt="adam")
    train(cell, 5)
    servers = _servers(ps_job["job"])
    assert os.path.exists(tmp_path / f"{ps_job['job']}_server0_s4.ckpt")
    pid = ray.get(servers[0].ping.remote())["pid"]
    ray.kill(servers[0], no_restart=False)  # a crash: Ray re-runs the constructor, which loads the snapshot
    deadline = time.time() + 60
    while True:
        try:
            info = ray.get(servers[0].ping.remote(), timeout=10)
            if info["pid"] != pid:
                break
        except ray.exceptions.RayActorError:
            pass
        assert time.time() < deadline
        time.sleep(0.05)
    assert info["step"] == 4 and info["snapshot_step"] == 4  # resumed at its last snapshot
    train(cell, 8, start=5)  # the worker notices the restart and replays step 4 from its log
    sporax.ps.pull_parameters(cell)
    got = values(net)
    reset_servers(ps_job["job"])
    sp.context._reset()
    cell, _, uninterrupted = _ps(8, opt="adam")
    _close(got, uninterrupted, atol=1e-6)

    # A server that dies for good: a clear RuntimeError within a bounded time, naming it and what it held.
    sp.set_ps_context(server_timeout=3.0)
    held = ray.get(servers[1].ping.remote())["pieces"]
    ray.kill(servers[1], no_restart=True)
    t0 = time.time()
    with pytest.raises(RuntimeError, match=r"Parameter server 1 .*dead") as info:
        train(cell, 9, start=8)
    assert time.time() - t0 < 15
    for name in held:
        assert name in str(info.value)


def test_init_in_server_worker_never_allocates_the_table(ps_job):
    psutil = pytest.importorskip("psutil")
    from _model import Net

    from sporax import nn

    sp.set_ps_context(enable_ps=True)
    vocab, dim = 1_000_000, 64  # 256 MB of float32
    rss0 = psutil.Process().memory_info().rss
    sp.set_seed(7)
    net = Net(vocab=vocab, dim=dim)
    net.set_param_ps(init_in_server=True)
    cell = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    for s in range(3):
        ids, labels = batch(s, vocab)
        cell(sp.Tensor(ids), sp.Tensor(labels))
    grown = psutil.Process().memory_info().rss - rss0
    table = vocab * dim * 4
    assert net.emb.embedding_table.has_init  # still the placeholder: shape and dtype, no data
    assert net.emb.embedding_table.shape == (vocab, dim)
    assert grown < table / 4, (grown, table)
    # the servers hold it, initialized by the exact window generator: equal to local initialization
    import ray

    servers = _servers(ps_job["job"])
    start, block = ray.get(servers[1].read.remote(["emb.embedding_table"]))["emb.embedding_table"]
    from sporax.common.initializer import Normal

    expect = Normal().window(net.emb.embedding_table._seed, (vocab, dim), sp.float32, (start + 10, 0), (5, dim))
    touched = set(np.concatenate([batch(s, vocab)[0].reshape(-1) for s in range(3)]).tolist())
    rows = [r for r in range(start + 10, start + 15) if r not in touched]
    np.testing.assert_array_equal(block[[r - start for r in rows]], expect[[r - start - 10 for r in rows]])


def test_bad_input_changes_nothing(ps_job):
    import ray
    from _model import Net

    from sporax import nn

    sp.set_ps_context(enable_ps=True)
    sp.set_seed(7)
    net = Net()
    net.emb.embedding_table.set_param_ps()  # the table on the servers, the Dense head local
    cell = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    train(cell, 1)
    servers = _servers(ps_job["job"])
    head = net.fc.weight.asnumpy().copy()
    bad = np.array([[0, 1, 64]] * 16, np.int32)
    with pytest.raises(ValueError, match="input_indices"):
        cell(sp.Tensor(bad), sp.Tensor(np.zeros((16, 1), np.float32)))
    assert cell._ps_plan.step == 1
    assert [ray.get(h.status.remote(0))["step"] for h in servers] == [1, 1]
    np.testing.assert_array_equal(net.fc.weight.asnumpy(), head)
    # a parameter this PS job already trains locally cannot move to the servers
    with pytest.raises(RuntimeError, match="fc.weight.*trained locally"):
        net.fc.weight.set_param_ps()
    assert not net.fc.weight.is_param_ps
    train(cell, 2, start=1)  # and training goes on
    # a new training cell joining the job mid-way (a replacement worker) is told its local head is its own
    sp.set_seed(7)
    again = Net()
    again.emb.embedding_table.set_param_ps()
    again_cell = nn.TrainOneStepCell(nn.WithLossCell(again, nn.MSELoss()), nn.SGD(again.trainable_params(), 0.1))
    with pytest.warns(RuntimeWarning, match=r"at step 1.*\['fc.weight', 'fc.bias', 'out.weight', 'out.bias'\]"):
        sporax.ps.current_step(again_cell)
    # a second, different training cell cannot take over the job's servers
    other = nn.Dense(2, 1)
    other.set_param_ps()
    other_cell = nn.TrainOneStepCell(nn.WithLossCell(other, nn.MSELoss()), nn.SGD(other.trainable_params(), 0.1))
    with pytest.raises(RuntimeError, match="already serve"):
        other_cell(sp.Tensor(np.ones((4, 2), np.float32)), sp.Tensor(np.ones((4, 1), np.float32)))


def test_two_workers_with_a_local_dense_head_average_its_gradients(ps_job, monkeypatch, tmp_path):
    """2 workers + 2 servers, only the embedding table on the servers: the Dense head is data
    parallel over the workers (MindSpore's hybrid PS + AllReduce mode: DistributedGradReducer
    all-reduces every gradient but the set_param_ps ones), so each worker's copy equals
    single-process training on the full batch, and the table too, without and with a 12-row
    embedding cache on each worker. Worker 1 is a process; this process is worker 0. In the cached
    job (snapshots every 2 steps) worker 1 is SIGKILLed after step 2 (after the snapshot of step 2,
    before the next one) and a replacement process started: the job rolls back to that snapshot
    (cache rows, local head and its optimizer state included), worker 0 redoes step 2, and nothing
    is lost."""
    import threading

    import ray

    from sporax.ps import cluster

    steps, base = 4, f"{ps_job['job']}_head"
    monkeypatch.setenv("SPORAX_PS_JOB", base)
    host, port = ps_job["address"].rsplit(":", 1)
    env = dict(os.environ, MS_SCHED_HOST=host, MS_SCHED_PORT=port, MS_SERVER_NUM="2", MS_WORKER_NUM="2",
               JAX_PLATFORMS="cpu", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(HERE)), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MS_WORKER_NUM", "2")
    monkeypatch.setenv("MS_WORKER_ID", "0")
    steps = 5
    snap = tmp_path / "snap"
    env.update(SPORAX_TEST_SNAPSHOT=f"{snap},2")
    other, mine, box = None, {}, {}

    def replace():  # when worker 1 dies, start its replacement (this process meanwhile waits in its step)
        other.wait()
        box["p"] = _spawn(env, "MS_WORKER", [tmp_path / "w1", steps, "12", "sgd", "table"], MS_WORKER_ID=1)

    try:  # two jobs in turn, as the worker script runs them: no cache, then a 12-row cache on each worker
        other = _spawn(env, "MS_WORKER", [tmp_path / "w1", steps, "0,12", "sgd", "table"], MS_WORKER_ID=1,
                       SPORAX_TEST_DIE_AT=2)
        watcher = threading.Thread(target=replace, daemon=True)
        watcher.start()
        for cache in (0, 12):
            monkeypatch.setenv("SPORAX_PS_JOB", f"{base}_c{cache}")  # the name the worker script gives its job
            sp.set_ps_context(enable_ps=True, server_timeout=120.0)
            if cache:
                sp.set_ps_context(snapshot_path=str(snap), snapshot_steps=2)
            cell, net = build(True, cache, opt="sgd", table_only=True)
            train(cell, steps, shard=(0, 2))
            assert [p.name for p in cell._ps_plan.local] == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
            sporax.ps.pull_parameters(cell)
            mine[cache] = values(net)
            sporax.ps.shutdown(kill_servers=False)
            sp.context._reset()
        watcher.join(timeout=60)
        out, _ = box["p"].communicate(timeout=240)
        assert box["p"].returncode == 0, out[-3000:]
        assert "start 12 2 " in out, out[-3000:]  # the replacement starts at the snapshot's step
    finally:
        _kill_all([other, box.get("p")])
        sporax.ps.shutdown(kill_servers=True)
        for job in (f"{base}_c0", f"{base}_c12"):
            for k in range(2):
                with contextlib.suppress(Exception):
                    ray.kill(ray.get_actor(f"{job}.server{k}", namespace=cluster.NAMESPACE), no_restart=True)
    ref = _local(steps)
    for cache in (0, 12):
        _close(mine[cache], ref, atol=1e-6)
        _close(dict(np.load(tmp_path / f"w1_c{cache}.npz")), ref, atol=1e-6)
    # each worker alone (its half batch) would have moved its head elsewhere
    alone_cell, alone = build(False)
    train(alone_cell, steps, shard=(0, 2))
    assert np.abs(values(alone)["fc.weight"] - ref["fc.weight"]).max() > 1e-4
