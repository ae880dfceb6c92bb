"""Parameter-server mode: steps/s, bytes per step, cache hit rates, and message overhead, in one run.

A 1M x 64 float32 table (``EmbeddingLookup``, on 2 servers, ``init_in_server=True``) feeds a
``Dense(64, 1)`` head; each step looks up a batch of 1024 ids drawn from a Zipf distribution
(exponent 1.1, ranks mapped to ids by a fixed permutation). Side by side:

* PS training with ``vocab_cache_size`` 0, 10k and 100k: steps/s, bytes moved per step (the
  arrays the worker pulls and pushes), and the cache's hit rate next to an exact LRU
  simulation of the same id stream (by lookup and by unique id);
* the same model trained locally in one process (dense table, dense update);
* pull/push latency of sporax's server messages against a bare Ray actor call carrying the
  same payload.

SGD (no momentum), so all variants train the same parameters. The machine is shared (2
cores): figures are relative, not absolute. Usage::

    python benchmarks/bench_ps.py [--steps 60] [--warmup 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import OrderedDict

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["MS_SERVER_NUM"] = "2"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import sporax as sp  # noqa: E402
from sporax import nn  # noqa: E402

VOCAB, DIM, BATCH, ZIPF = 1_000_000, 64, 1024, 1.1


class Net(nn.Cell):
    def __init__(self, cache: int) -> None:
        super().__init__()
        self.emb = nn.EmbeddingLookup(VOCAB, DIM, vocab_cache_size=cache)
        self.head = nn.Dense(DIM, 1)

    def construct(self, ids):
        return self.head(self.emb(ids))


def id_stream(steps: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, VOCAB + 1) ** ZIPF
    cdf = np.cumsum(p / p.sum())
    perm = rng.permutation(VOCAB)
    return [perm[np.minimum(np.searchsorted(cdf, rng.random(BATCH)), VOCAB - 1)].astype(np.int32)
            for _ in range(steps)]


def lru_simulation(stream: list, capacity: int) -> tuple[float, float]:
    """Exact LRU of ``capacity`` rows over each step's ids: (hit rate by lookup, by unique id)."""
    cache: OrderedDict = OrderedDict()
    hits = lookups = uhits = unique = 0
    for ids in stream:
        u, counts = np.unique(ids, return_counts=True)
        for i, c in zip(u.tolist(), counts.tolist()):
            if i in cache:
                hits += c
                uhits += 1
            lookups += c
            unique += 1
        for i in u.tolist():
            cache[i] = True
            cache.move_to_end(i)
        while len(cache) > capacity:
            cache.popitem(last=False)
    return hits / lookups, uhits / unique


def make(ps: bool, cache: int):
    sp.set_seed(11)
    net = Net(cache)
    if ps:
        net.set_param_ps(init_in_server=True)
    cell = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.05))
    return cell, net


def run(cell, stream, labels, warmup: int):
    for s in range(warmup):
        cell(sp.Tensor(stream[s]), sp.Tensor(labels[s]))
    t0 = time.perf_counter()
    for s in range(warmup, len(stream)):
        loss = cell(sp.Tensor(stream[s]), sp.Tensor(labels[s]))
    float(loss.asnumpy())
    return (len(stream) - warmup) / (time.perf_counter() - t0)


def latency(rt, ray, repeat: int = 200) -> dict:
    """Median seconds of sporax's push / pull_rows against a bare actor call with the same payload.

    The same payload both ways: the bare push sends the same message and gets a small dict
    back; the bare pull sends the same sorted ids and gets the same rows back (gathered from a
    table of the server block's size, as the server does). ``pull_reply_only`` (an actor that
    returns as many rows without receiving ids) is printed for reference only.
    """

    @ray.remote(num_cpus=0)
    class Bare:
        def __init__(self):
            self.table = np.zeros((VOCAB // 2, DIM), np.float32)

        def take(self, payload):
            return {"ok": True}

        def give(self, n):
            return np.zeros((n, DIM), np.float32)

        def gather(self, ids):
            return self.table[ids]

    bare = Bare.remote()
    ray.get(bare.take.remote(0))
    plan = rt.plans[0]
    name = plan.tables[0].param.name
    ids = np.sort(np.random.default_rng(1).choice(VOCAB // 2, BATCH, replace=False))  # rows of server 0
    grads = np.ones((BATCH, DIM), np.float32)
    payload = {"dense": {}, "rows": {name: (ids, grads)}, "writeback": {}}
    step = 0  # an old step: the server reads the whole message, then drops it as a duplicate
    calls = {
        "push": lambda: rt.call_all([(0, "push", (rt.worker, step, payload))]),
        "push_bare": lambda: ray.get(bare.take.remote(payload)),
        "pull": lambda: rt.call_all([(0, "pull_rows", ({name: ids}, {}))]),
        "pull_bare": lambda: ray.get(bare.gather.remote(ids)),
        "pull_reply_only": lambda: ray.get(bare.give.remote(BATCH)),
    }
    times: dict = {k: [] for k in calls}
    for f in calls.values():
        f()
    for _ in range(repeat):  # interleaved, so that load from other processes hits all kinds alike
        for k, f in calls.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    ray.kill(bare)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--latency-only", action="store_true", help="only the message latencies")
    args = parser.parse_args()
    import ray

    import sporax.ps
    from sporax.ps import cluster

    stream = id_stream(args.steps + args.warmup)
    rng = np.random.default_rng(5)
    labels = [rng.standard_normal((BATCH, 1)).astype(np.float32) for _ in stream]
    n = len(stream)
    print(f"table {VOCAB} x {DIM} float32 ({VOCAB * DIM * 4 / 2**20:.0f} MiB), batch {BATCH}, Zipf {ZIPF}, "
          f"{args.steps} measured steps after {args.warmup} warm-up, 2 servers; shared 2-core machine")
    rows = []
    if args.latency_only:
        stream = stream[: args.warmup + 1]
        local_sps, local_values = 1.0, None
    else:
        cell, net = make(False, 0)
        local_sps = run(cell, stream, labels, args.warmup)
        local_values = {p.name: p.asnumpy() for p in net.trainable_params()}
        del cell, net
    cluster._quiet_env()
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, namespace=cluster.NAMESPACE)
    lat = None
    try:
        for cache in (0,) if args.latency_only else (0, 10_000, 100_000):
            os.environ["SPORAX_PS_JOB"] = f"bench{cache}"
            sp.set_ps_context(enable_ps=True, server_timeout=300.0)
            cell, net = make(True, cache)
            sps = run(cell, stream, labels, args.warmup)
            rt = sporax.ps.runtime()
            moved = (rt.bytes["pull"] + rt.bytes["push"]) / n
            stats = sporax.ps.cache_stats(cell).get("emb.embedding_table")
            if cache == 0 and lat is None:
                lat = latency(rt, ray)
            sporax.ps.pull_parameters(cell)
            if local_values is None:
                break
            diff = max(float(np.abs(p.asnumpy() - local_values[p.name]).max()) for p in net.trainable_params())
            sim = lru_simulation(stream, cache) if cache else (0.0, 0.0)
            hit = (stats["total"]["hit_rate"], stats["total"]["unique_hit_rate"]) if stats else (0.0, 0.0)
            rows.append((cache, sps, moved, hit, sim, diff))
            sporax.ps.shutdown(kill_servers=True)
            sp.context._reset()
    finally:
        ray.shutdown()
    if args.latency_only:
        rows = []
    print(f"\n{'variant':<22}{'steps/s':>9}{'vs local':>9}{'MB/step':>9}{'hit (lookup)':>14}{'LRU sim':>9}"
          f"{'hit (unique)':>14}{'LRU sim':>9}{'max |Δw| vs local':>19}")
    print(f"{'local, one process':<22}{local_sps:>9.2f}{1.0:>9.2f}{0.0:>9.2f}{'':>14}{'':>9}{'':>14}{'':>9}{0.0:>19.1e}")
    for cache, sps, moved, hit, sim, diff in rows:
        print(f"{'PS, cache ' + str(cache):<22}{sps:>9.2f}{sps / local_sps:>9.2f}{moved / 1e6:>9.2f}"
              f"{hit[0] * 100:>13.2f}%{sim[0] * 100:>8.2f}%{hit[1] * 100:>13.2f}%{sim[1] * 100:>8.2f}%{diff:>19.1e}")
    print(f"\nmessage latency, {BATCH} rows x {DIM} float32 ({BATCH * DIM * 4 / 1024:.0f} KiB), "
          "median of 200, interleaved; bare = a plain Ray actor call with the same payload both ways:")
    for kind in ("push", "pull"):
        ours, bare = lat[kind], lat[kind + "_bare"]
        print(f"  {kind:<5} sporax {ours * 1e3:7.3f} ms   bare Ray actor call {bare * 1e3:7.3f} ms   "
              f"overhead {(ours / bare - 1) * 100:+6.1f}%")
    print(f"  (reference only: a bare call that returns {BATCH} rows without receiving ids: "
          f"{lat['pull_reply_only'] * 1e3:.3f} ms)")

if __name__ == "__main__":
    main()
