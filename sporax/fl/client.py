"""The client side: a Cell, a local training function and a data source as a Flower ``ClientApp``.

On each train message the client

1. rebuilds its network from Flower's ``Context.state`` (the parameters the server may not
   send back: personal layers, per-client stored ones) -- or, the first time, from
   ``make_net()`` and, when resuming, its checkpoint;
2. overwrites exactly the parameters the message carries, each of which must be flagged
   ``pull_weight_from_server`` and fit its shape and dtype;
3. runs ``train_fn(net, data, server_round) -> num_examples`` (with FedProx's proximal term
   available to the loss through ``proximal_term(net)``);
4. replies with the ``push_weight_to_server`` parameters only, and writes the local ones
   back into ``Context.state`` (and its checkpoint).

The network object is cached on the app between messages as a speed-up only: the cache
entry is used when its version token matches the one in ``Context.state``; a fresh process
(as Flower's SuperNode starts per message) rebuilds from the state.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from sporax.fl._records import Plan, RejectedArray, from_array, record_from
from sporax.fl.strategy import ARRAYS_KEY, CLIENT_KEY, CONFIG_KEY, METRICS_KEY, WEIGHT_KEY

__all__ = ["client_app", "proximal_term", "FLClient"]

_log = logging.getLogger("sporax.fl")

_STATE_LOCAL = "sporax.fl.local"
_STATE_META = "sporax.fl.meta"
_proximal: contextvars.ContextVar = contextvars.ContextVar("sporax_fl_proximal", default=None)


def proximal_term(net):
    """FedProx's ``mu / 2 * sum ||w - w_global||^2`` over the averaged parameters of ``net``, as a
    differentiable Tensor to add to the local loss; 0 outside a FedProx round.

    >>> loss = loss_fn(net(x), y) + sporax.fl.proximal_term(net)      # doctest: +SKIP
    """
    from sporax.common.tensor import Tensor
    from sporax.ops import functional as F

    scope = _proximal.get()
    if scope is None or scope[0] is not net or scope[1] == 0.0:
        return Tensor(np.float32(0.0))
    _, mu, anchors = scope
    total = None
    for _, p in net.parameters_and_names():
        anchor = anchors.get(p.name)
        if anchor is None:
            continue
        term = F.reduce_sum(F.square(p - anchor))
        total = term if total is None else total + term
    if total is None:
        return Tensor(np.float32(0.0))
    return total * (mu / 2.0)


def _params(net) -> dict:
    return {p.name: p for _, p in net.parameters_and_names()}


def _assign(param, value: np.ndarray) -> None:
    """Give ``param`` the values of ``value`` (a read-only array nobody else writes: no copy)."""
    from sporax.common.tensor import Tensor, _readonly

    if value.flags.writeable:
        value = value.copy()
    param.set_data(Tensor._wrap(_readonly(value)))


def _host(param) -> np.ndarray:
    """``param``'s values as a host array (no copy when they already are one)."""
    return np.asarray(param)


class FLClient:
    """The logic behind ``client_app`` (kept reachable as ``app.sporax_client``)."""

    def __init__(self, make_net: Callable, train_fn: Callable, client_data=None, *, eval_fn: Callable | None = None,
                 client_id: str | None = None, checkpoint_dir: str | None = None, resume: bool = False) -> None:
        if not callable(make_net):
            raise TypeError(f"For 'sporax.fl.client_app', the 'make_net' should be a callable returning a Cell, "
                            f"but got {make_net!r}.")
        if not callable(train_fn):
            raise TypeError(f"For 'sporax.fl.client_app', the 'train_fn' should be a callable "
                            f"(net, data, server_round) -> int, but got {train_fn!r}.")
        if client_data is not None and not callable(client_data) and not isinstance(client_data, Sequence):
            raise TypeError(f"For 'sporax.fl.client_app', the 'client_data' should be a list (one item per client), "
                            f"a callable partition_id -> data, or None, but got {type(client_data).__name__}.")
        self.make_net = make_net
        self.train_fn = train_fn
        self.client_data = client_data
        self.eval_fn = eval_fn
        self.client_id = client_id
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self._cache: dict = {}

    # ------------------------------------------------------------------ identity and data
    def _partition(self, context: Context):
        pid = context.node_config.get("partition-id")
        return int(pid) if isinstance(pid, (int, str)) and str(pid).isdigit() else None

    def identity(self, context: Context) -> str:
        if self.client_id is not None:
            return str(self.client_id)
        pid = self._partition(context)
        return str(pid) if pid is not None else str(context.node_id)

    def _data(self, context: Context):
        if self.client_data is None:
            return None
        pid = self._partition(context)
        if callable(self.client_data):
            return self.client_data(pid)
        if pid is None or not 0 <= pid < len(self.client_data):
            raise ValueError(f"sporax.fl: this node's 'partition-id' is {context.node_config.get('partition-id')!r}; "
                             f"with {len(self.client_data)} data items it should be an int in [0, "
                             f"{len(self.client_data) - 1}] (flower-supernode --node-config 'partition-id=0').")
        return self.client_data[pid]

    def _checkpoint_path(self, context: Context) -> str | None:
        if not self.checkpoint_dir:
            return None
        return os.path.join(self.checkpoint_dir, f"client_{self.identity(context)}.ckpt")

    # ------------------------------------------------------------------ network and state
    def network(self, context: Context):
        """This client's network, rebuilt from ``context.state`` unless the cached one is current."""
        key = (context.run_id, context.node_id)
        meta = context.state.config_records.get(_STATE_META)
        version = int(meta["version"]) if meta is not None else 0
        cached = self._cache.get(key)
        if cached is not None and cached[2] == version:
            return cached[0], cached[1]
        net = self.make_net()
        plan = Plan(net)
        params = _params(net)
        local = context.state.array_records.get(_STATE_LOCAL)
        if local is not None:
            for name, array in local.items():
                if name in params:
                    _assign(params[name], from_array(array))
        elif self.resume and (path := self._checkpoint_path(context)) and os.path.isfile(path):
            from sporax.train.serialization import load_checkpoint

            for name, value in load_checkpoint(path).items():
                if name in params and name in plan.local:
                    _assign(params[name], value.asnumpy())
            _log.info("sporax.fl: client %s resumed its local parameters from %s", self.identity(context), path)
        self._cache[key] = (net, plan, version)
        return net, plan

    def _save_state(self, context: Context, net, plan: Plan, server_round: int) -> None:
        params = _params(net)
        values = {name: _host(params[name]) for name in plan.local}
        context.state[_STATE_LOCAL] = record_from(values)
        meta = context.state.config_records.get(_STATE_META)
        version = (int(meta["version"]) if meta is not None else 0) + 1
        context.state[_STATE_META] = ConfigRecord({"version": version, "round": server_round})
        self._cache[(context.run_id, context.node_id)] = (net, plan, version)
        path = self._checkpoint_path(context)
        if path and values:
            from sporax.common.tensor import Tensor
            from sporax.train.serialization import save_checkpoint

            os.makedirs(os.path.dirname(path), exist_ok=True)
            save_checkpoint({n: Tensor._wrap(v) for n, v in values.items()}, path,
                            append_dict={"fl_round": server_round})

    def parameters(self, context: Context) -> dict[str, np.ndarray]:
        """This client's parameters (name -> numpy array) as they are now."""
        net, _ = self.network(context)
        return {name: p.asnumpy() for name, p in _params(net).items()}

    @staticmethod
    def _pull(net, plan: Plan, content: RecordDict) -> dict[str, np.ndarray]:
        record = content.array_records.get(ARRAYS_KEY, ArrayRecord())
        params = _params(net)
        values = {}
        for name, array in record.items():
            try:
                values[name] = plan.check(name, array, direction="pull")
            except RejectedArray as e:
                raise ValueError(f"sporax.fl client: the server sent a bad array: {e}") from None
        for name, value in values.items():  # all checked before any is written
            _assign(params[name], value)
        return values

    # ------------------------------------------------------------------ handlers
    def train(self, msg: Message, context: Context) -> Message:
        """Handle one train message (see the module docstring)."""
        net, plan = self.network(context)
        config = msg.content.config_records.get(CONFIG_KEY, ConfigRecord())
        server_round = int(config.get("server-round", 0))
        mu = float(config.get("proximal-mu", 0.0))
        pulled = self._pull(net, plan, msg.content)
        data = self._data(context)
        anchors = {}
        if mu > 0.0:
            from sporax.common.tensor import Tensor

            anchors = {n: Tensor(v) for n, v in pulled.items() if plan.entries[n].aggr}
        token = _proximal.set((net, mu, anchors))
        start = time.perf_counter()
        try:
            num_examples = self.train_fn(net, data, server_round)
        finally:
            _proximal.reset(token)
        elapsed = time.perf_counter() - start
        if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 0:
            raise TypeError(f"sporax.fl: 'train_fn' should return the number of local examples (an int >= 0), "
                            f"but returned {num_examples!r}.")
        params = _params(net)
        pushed = record_from({name: _host(params[name]) for name in plan.pushed})
        self._save_state(context, net, plan, server_round)
        content = RecordDict({
            ARRAYS_KEY: pushed,
            METRICS_KEY: MetricRecord({WEIGHT_KEY: int(num_examples), "train-time": float(elapsed)}),
            CLIENT_KEY: ConfigRecord({"client-id": self.identity(context)}),
        })
        return Message(content, reply_to=msg)

    def evaluate(self, msg: Message, context: Context) -> Message:
        """Evaluate the pulled global parameters (with this client's own ones) on the local data."""
        if self.eval_fn is None:
            raise RuntimeError("sporax.fl: this client has no 'eval_fn'; set fraction_evaluate=0 on the server.")
        net, plan = self.network(context)
        self._pull(net, plan, msg.content)
        result = self.eval_fn(net, self._data(context))
        num_examples, metrics = result if isinstance(result, tuple) else (result, {})
        record = MetricRecord({WEIGHT_KEY: int(num_examples), **{k: float(v) for k, v in dict(metrics).items()}})
        return Message(RecordDict({METRICS_KEY: record}), reply_to=msg)


def client_app(make_net: Callable, train_fn: Callable, client_data=None, *, eval_fn: Callable | None = None,
               client_id: str | None = None, checkpoint_dir: str | None = None, resume: bool = False) -> ClientApp:
    """A Flower ``ClientApp`` training ``make_net()`` with ``train_fn(net, data, server_round) -> int``.

    ``client_data`` is a list indexed by the node's ``partition-id`` (``flower-supernode
    --node-config 'partition-id=0'``), a callable ``partition_id -> data``, or None.
    ``eval_fn(net, data) -> (num_examples, {metric: float})`` answers evaluate messages.
    ``checkpoint_dir``: the client saves its local (not pulled) parameters there each round, and
    with ``resume=True`` starts from them.
    """
    client = FLClient(make_net, train_fn, client_data, eval_fn=eval_fn, client_id=client_id,
                      checkpoint_dir=checkpoint_dir, resume=resume)
    app = ClientApp()
    app.train()(client.train)
    app.evaluate()(client.evaluate)
    app.sporax_client = client
    return app
