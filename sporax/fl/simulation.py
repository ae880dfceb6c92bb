"""Embedded mode: the ServerApp and N ClientApps in one process, exchanging Flower Messages
through an in-process ``Grid`` -- no SuperLink, no Ray, and none of the fixed 3 s sleeps of
Flower's polling loops (a round costs what the clients and the aggregation cost).

Without a ``round_timeout`` clients run one after another in the calling thread. With one, they
run at once in worker threads (their networks are built beforehand, in the calling thread) and
the round stops waiting when its time is up: a client still running then is left out of the
round (and of sampling, until it returns). Replies are aggregated in client order either way, so
both give the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from sporax.fl.client import client_app
from sporax.fl.server import FLResult, fl_settings, server_app

__all__ = ["simulate", "LocalGrid"]

_log = logging.getLogger("sporax.fl")


class LocalGrid(Grid):
    """A Flower ``Grid`` delivering each Message straight to an in-process ``ClientApp``."""

    embedded = True

    def __init__(self, app, contexts: list[Context], run: Run) -> None:
        self.app = app
        self.contexts = {ctx.node_id: ctx for ctx in contexts}
        self._run = run
        self._busy: dict[int, threading.Thread] = {}
        self._pending: list[Message] = []
        self._replies: dict[str, Message] = {}
        self._lock = threading.Lock()

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        with self._lock:
            return [n for n in self.contexts if n not in self._busy]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            if msg.metadata.dst_node_id not in self.contexts:
                raise ValueError(f"sporax.fl: no client with node id {msg.metadata.dst_node_id}")
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            self._pending.append(msg)
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        self._deliver(None)
        with self._lock:
            return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def _call(self, msg: Message) -> None:
        node = msg.metadata.dst_node_id
        try:
            reply = self.app(msg, self.contexts[node])
        except Exception as e:  # what a SuperNode reports for a raising ClientApp
            _log.error("sporax.fl: the client on node %d raised: %s: %s", node, type(e).__name__, e,
                       exc_info=_log.isEnabledFor(logging.DEBUG))
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=f"{type(e).__name__}: {e}"),
                            reply_to=msg)
        reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
        with self._lock:
            self._replies[msg.metadata.message_id] = reply
            self._busy.pop(node, None)

    def _deliver(self, deadline: float | None) -> None:
        """Run the pending messages: one after another without a deadline; else all at once in
        worker threads, waiting for them until ``deadline``."""
        pending, self._pending = self._pending, []
        if deadline is None:
            for msg in pending:
                self._call(msg)
            return
        workers = []
        for msg in pending:
            worker = threading.Thread(target=self._call, args=(msg,), name="sporax-fl-client", daemon=True)
            with self._lock:
                self._busy[msg.metadata.dst_node_id] = worker
            worker.start()
            workers.append((msg.metadata.dst_node_id, worker))
        for node, worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                _log.warning("sporax.fl: the client on node %d did not answer within the round timeout; "
                             "the round goes on without it.", node)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        ids = list(self.push_messages(messages))
        self._deliver(None if timeout is None else time.monotonic() + timeout)
        with self._lock:
            return [self._replies.pop(i) for i in ids if i in self._replies]

    def drain(self, timeout: float) -> list[int]:
        """Wait up to ``timeout`` s for clients still running; return the nodes that still are."""
        deadline = time.monotonic() + timeout
        for worker in list(self._busy.values()):
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._replies.clear()  # late replies of finished rounds are dropped, as a SuperLink would
            return list(self._busy)


@contextlib.contextmanager
def _task_identity(run_id: int):
    saved = (TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id)
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, run_id, SUPERLINK_NODE_ID
    try:
        yield
    finally:
        TaskIdentity._task_id, TaskIdentity._run_id, TaskIdentity._node_id = saved


def simulate(make_net: Callable, train_fn: Callable, client_data: list, num_rounds: int, strategy="fedavg",
             fraction_fit: float = 1.0, round_timeout: float | None = None) -> FLResult:
    """Federated training of ``make_net()`` over ``len(client_data)`` clients, in this process.

    ``make_net()`` returns a fresh Cell with the same initial values at every call (fixed
    initializers, or ``sporax.set_seed`` inside it): the server and each client build their
    own; ``train_fn(net, data, server_round) -> int`` trains a client's net in place on its
    item of ``client_data`` and returns its number of examples. ``strategy`` is 'fedavg',
    'fedprox', 'fedadam' or a ``sporax.fl`` strategy instance. Other settings (minimum clients,
    ``proximal_mu``, checkpoints, resume, ...) come from ``set_fl_context``.

    Returns an ``FLResult``: ``server`` (the global record, name -> numpy), ``clients`` (each
    client's parameters after the last round), ``history`` (per-round metrics and timings).

    >>> result = sporax.fl.simulate(make_net, train_fn, [data0, data1], num_rounds=3)   # doctest: +SKIP
    """
    from sporax.common._validation import check_positive_int

    where = "sporax.fl.simulate"
    if not callable(make_net):
        raise TypeError(f"For '{where}', the 'make_net' should be a callable returning a Cell, but got {make_net!r}.")
    if not callable(train_fn):
        raise TypeError(f"For '{where}', the 'train_fn' should be a callable (net, data, server_round) -> int, "
                        f"but got {train_fn!r}.")
    if not isinstance(client_data, (list, tuple)) or not client_data:
        raise ValueError(f"For '{where}', the 'client_data' should be a non-empty list with one item per client, "
                         f"but got {type(client_data).__name__} of length {len(client_data) if hasattr(client_data, '__len__') else '?'}.")
    check_positive_int(num_rounds, "num_rounds", where)
    if isinstance(fraction_fit, bool) or not isinstance(fraction_fit, (int, float)) or not 0.0 <= fraction_fit <= 1.0:
        raise ValueError(f"For '{where}', the 'fraction_fit' should be a float in [0, 1], but got {fraction_fit!r}.")
    if round_timeout is not None and (isinstance(round_timeout, bool) or not isinstance(round_timeout, (int, float))
                                      or not round_timeout > 0):
        raise ValueError(f"For '{where}', the 'round_timeout' should be None or a number of seconds > 0, "
                         f"but got {round_timeout!r}.")
    settings = fl_settings()
    ckpt_dir = settings["checkpoint_dir"]
    import os

    app = client_app(make_net, train_fn, list(client_data),
                     checkpoint_dir=os.path.join(ckpt_dir, "clients") if ckpt_dir else None, resume=settings["resume"])
    run_id = 1
    n = len(client_data)
    contexts = [Context(run_id=run_id, node_id=1000 + i, node_config={"partition-id": i, "num-partitions": n},
                        state=RecordDict(), run_config={}) for i in range(n)]
    for ctx in contexts:  # every network built here, in order: make_net never runs in a worker thread
        app.sporax_client.network(ctx)
    grid = LocalGrid(app, contexts, Run.create_empty(run_id))
    holder: list[FLResult] = []
    server = server_app(make_net, strategy=strategy, num_rounds=num_rounds, fraction_fit=float(fraction_fit),
                        round_timeout=None if round_timeout is None else float(round_timeout), on_finish=holder.append)
    server_context = Context(run_id=run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(),
                             run_config={})
    with _task_identity(run_id):
        server(grid, server_context)
    still = grid.drain(max(float(round_timeout or 0.0), 1.0))
    if still:
        _log.warning("sporax.fl: clients on nodes %s are still running; their parameters are read as they are now.",
                     still)
    result = holder[0]
    result.clients = [app.sporax_client.parameters(ctx) for ctx in contexts]
    return result
