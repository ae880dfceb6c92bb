"""A PS worker (or server) process for the tests: ``python _worker_script.py OUT.npz STEPS [CACHE]``.

Its role comes from the environment (MS_ROLE=MS_WORKER, MS_WORKER_ID, MS_WORKER_NUM,
MS_SERVER_NUM, MS_SCHED_HOST/PORT, SPORAX_PS_JOB). It trains its shard of each batch from the
step the servers are at (a replacement worker resumes there), printing ``step N`` after each.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _model import batch, build  # noqa: E402

import sporax as sp  # noqa: E402
import sporax.ps  # noqa: E402

if os.environ.get("MS_ROLE") in ("MS_PSERVER", "MS_SCHED"):  # serve until the workers finish
    sp.set_ps_context(enable_ps=True)
    sporax.ps.serve(poll=0.5)
    print("served", flush=True)
    sys.exit(0)

out, steps = sys.argv[1], int(sys.argv[2])
cache = int(sys.argv[3]) if len(sys.argv) > 3 else 0
sp.set_ps_context(enable_ps=True, server_timeout=60.0)
cell, net = build(True, cache)
wid, nw = int(os.environ["MS_WORKER_ID"]), int(os.environ["MS_WORKER_NUM"])
start = sporax.ps.current_step(cell)
print(f"start {start}", flush=True)
for s in range(start, steps):
    ids, labels = batch(s)
    cell(sp.Tensor(ids[wid::nw]), sp.Tensor(labels[wid::nw]))
    print(f"step {s}", flush=True)
sporax.ps.pull_parameters(cell)
np.savez(out, **{p.name: p.asnumpy() for p in net.trainable_params()})
sporax.ps.shutdown(kill_servers=False)
print("done", flush=True)
