"""A PS process for the tests: ``python _worker_script.py OUT_PREFIX STEPS CACHES [OPT [table]]``.

Its role comes from the environment (MS_ROLE=MS_WORKER / MS_PSERVER / MS_SCHED, MS_WORKER_ID,
MS_WORKER_NUM, MS_SERVER_NUM, MS_SCHED_HOST/PORT, SPORAX_PS_JOB). ``CACHES`` is a comma list of
``vocab_cache_size`` values: one training job each (``<SPORAX_PS_JOB>_c<cache>``), in order.

* A worker trains its shard of each batch from the step the servers are at (a replacement
  worker resumes there), printing ``step N`` after each, then saves ``OUT_PREFIX_c<cache>.npz``.
* A server (MS_PSERVER) serves each job in turn until its workers finish; the scheduler
  (MS_SCHED) starts the Ray head, serves the last job, then stops the head.
"""

import os
import sys
import time

T0 = time.time()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _model import batch, build  # noqa: E402

import sporax as sp  # noqa: E402
import sporax.ps  # noqa: E402

out, steps = sys.argv[1], int(sys.argv[2])
caches = [int(c) for c in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0]
opt = sys.argv[4] if len(sys.argv) > 4 else "sgd"
table_only = len(sys.argv) > 5 and sys.argv[5] == "table"  # only the embedding table on the servers
base = os.environ["SPORAX_PS_JOB"]
role = os.environ.get("MS_ROLE")

if role in ("MS_PSERVER", "MS_SCHED"):
    if role == "MS_SCHED":  # start every job's server actors now, while the other processes start up
        from sporax.ps import cluster

        sp.set_ps_context(enable_ps=True, server_timeout=60.0)
        cluster.connect(60.0)
        for cache in caches:
            os.environ["SPORAX_PS_JOB"] = f"{base}_c{cache}"
            cluster.server_handles()
    for cache in caches if role == "MS_PSERVER" else caches[-1:]:
        os.environ["SPORAX_PS_JOB"] = f"{base}_c{cache}"
        sp.set_ps_context(enable_ps=True, server_timeout=60.0)
        sporax.ps.serve(poll=0.1)
        print(f"served {cache} at {time.time() - T0:.1f}s", flush=True)
    sys.exit(0)

wid, nw = int(os.environ["MS_WORKER_ID"]), int(os.environ["MS_WORKER_NUM"])
snap = os.environ.get("SPORAX_TEST_SNAPSHOT", "")  # "DIR,N": snapshots for the cached job
die_at = int(os.environ.get("SPORAX_TEST_DIE_AT", "-1"))  # SIGKILL itself after this step of the cached job
for cache in caches:
    os.environ["SPORAX_PS_JOB"] = f"{base}_c{cache}"
    sp.set_ps_context(enable_ps=True, server_timeout=60.0)
    if snap and cache:
        sp.set_ps_context(snapshot_path=snap.split(",")[0], snapshot_steps=int(snap.split(",")[1]))
    cell, net = build(True, cache, opt, table_only=table_only)
    start = sporax.ps.current_step(cell)
    print(f"start {cache} {start} at {time.time() - T0:.1f}s", flush=True)
    for s in range(start, steps):
        ids, labels = batch(s)
        cell(sp.Tensor(ids[wid::nw]), sp.Tensor(labels[wid::nw]))
        print(f"step {cache} {s} at {time.time() - T0:.1f}s", flush=True)
        if cache and s == die_at:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    if cache:
        total = sporax.ps.cache_stats(cell)["emb.embedding_table"]["total"]
        print(f"stats {cache} shared {total['shared']} given_back {total['given_back']} hits {total['unique_hits']}",
              flush=True)
    sporax.ps.pull_parameters(cell)
    np.savez(f"{out}_c{cache}.npz", **{p.name: p.asnumpy() for p in net.trainable_params()})
    sporax.ps.shutdown(kill_servers=False)
    sp.context._reset()
print(f"done at {time.time() - T0:.1f}s", flush=True)
