"""Workers that fail on purpose, for the launcher's fault tests.

Usage: fault.py raise|sigkill|alone. ``raise``: rank 1 raises before init() while rank 0 waits in
init(); ``sigkill``: both init(), then rank 1 kills itself with SIGKILL while rank 0 sleeps;
``alone``: init() with a peer that never starts. Each prints ``FAIL_AT <unix time>`` when it fails.
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
