"""Workers that fail on purpose, for the launcher's fault tests.

Usage: fault.py raise|sigkill|alone|drop_before_go|drop_after_go. ``raise``: rank 1 raises before
init() while rank 0 waits in init(); ``sigkill``: both init(), then rank 1 kills itself with SIGKILL
while rank 0 sleeps; ``alone``: init() with a peer that never starts. ``drop_*`` (3 workers): rank 2
joins the rendezvous by hand and kills itself with SIGKILL after its hello (rank 1 joining 2 s
later), or after rank 0's GO; ranks 0 and 1 init() as usual. Each prints ``INIT_AT <unix time>``
before init() and ``FAIL_AT <unix time>`` when it fails.
"""

import os
import signal
import sys
import time

from mindspore.communication import get_rank, init

mode = sys.argv[1]
rank = int(os.environ["MS_NODE_ID"])
if mode == "raise" and rank == 1:
    print(f"FAIL_AT {time.time()}", flush=True)
    raise ValueError("worker 1 fails on purpose")
if mode.startswith("drop") and rank == 2:
    import socket

    from sporax.communication import _cluster

    c = _cluster.cluster_env()
    while True:
        try:
            s = socket.create_connection((c.host, c.port), timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    s.sendall(b"%s 2 %d\n" % (_cluster._HELLO, c.worker_num))
    if mode == "drop_after_go":
        s.settimeout(60)
        assert s.recv(64) == _cluster._GO
    print(f"FAIL_AT {time.time()}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "drop_before_go" and rank == 1:
    time.sleep(2)
print(f"INIT_AT {time.time()}", flush=True)
try:
    init()
except RuntimeError:
    print(f"FAIL_AT {time.time()}", flush=True)
    raise
print(f"inited rank {get_rank()}", flush=True)
if mode == "sigkill" and rank == 1:
    print(f"FAIL_AT {time.time()}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(300)
