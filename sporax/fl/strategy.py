"""Server strategies: Flower's Message-API FedAvg, FedProx and FedAdam, made to aggregate only
what each parameter's ``set_param_fl`` flags allow.

Each class subclasses Flower's strategy of the same name and keeps its math (the weighted
average, FedAdam's moments); the mixin decides what the messages carry and what reaches the
average:

* ``configure_train`` sends each sampled node only the *pulled* parameters of the global
  record; a pulled parameter that is stored per client (pushed with ``requires_aggr=False``,
  or of an integer/bool dtype) goes back to the client that pushed it, never to others;
* ``aggregate_train`` checks every reply against the plan (known and pushed names, shape,
  dtype, byte count, finite values, a valid example count), rejects a bad reply with a
  logged reason and goes on with the others, averages only the ``requires_aggr`` floating
  parameters (weighted by ``num-examples``), stores the other pushed ones per client, and
  returns the full global record in which every other entry is the very same ``Array``;
* a round with fewer nodes than ``min_available_nodes`` (or fewer accepted replies than
  ``min_train_nodes``) is skipped with a warning and changes nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.grid import Grid
from flwr.serverapp.strategy import FedAdam as _FlowerFedAdam
from flwr.serverapp.strategy import FedAvg as _FlowerFedAvg
from flwr.serverapp.strategy import FedProx as _FlowerFedProx
from flwr.serverapp.strategy.fedopt import FedOpt as _FlowerFedOpt

from sporax.fl._records import Plan, RejectedArray, arrays_nbytes, from_array, to_array

__all__ = ["FedAvg", "FedProx", "FedAdam", "make_strategy"]

_log = logging.getLogger("sporax.fl")

ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
CLIENT_KEY = "sporax"  # ConfigRecord of a reply: {"client-id": str}
WEIGHT_KEY = "num-examples"


class _PartialAggregation:
    """The flag-driven part shared by our strategies (see the module docstring)."""

    def __init__(self, net, *, max_message_bytes: int | None = None, sample_seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.plan = net if isinstance(net, Plan) else Plan(net)
        if max_message_bytes is not None and (not isinstance(max_message_bytes, int) or max_message_bytes < 1):
            raise ValueError(f"For '{type(self).__name__}', 'max_message_bytes' should be None or an int >= 1, "
                             f"but got {max_message_bytes!r}.")
        self.max_message_bytes = max_message_bytes
        self.sample_seed = sample_seed
        #: client id -> {name: Array} of the pushed parameters the server keeps per client
        self.client_records: dict[str, dict[str, Array]] = {}
        self.round_info: dict = {}
        self._node_client: dict[int, str] = {}
        self._current: ArrayRecord | None = None
        self._pulled_global = [n for n in self.plan.pulled if n not in set(self.plan.stored)]
        self._pulled_stored = [n for n in self.plan.pulled if n in set(self.plan.stored)]
        ints = [e.name for e in self.plan.entries.values() if e.push and e.requires_aggr and not e.aggr]
        if ints:
            _log.info("sporax.fl: integer/bool parameters %s are stored per client, never averaged.", ints)

    # ------------------------------------------------------------------ sampling
    def _sample(self, server_round: int, grid: Grid, fraction: float, minimum: int, what: str) -> list[int]:
        nodes = sorted(grid.get_node_ids())
        sample_size = max(int(len(nodes) * fraction), minimum)
        needed = max(self.min_available_nodes, sample_size)
        if len(nodes) < needed:
            reason = f"only {len(nodes)} clients available, {needed} needed"
            _log.warning("sporax.fl: round %d: %s skipped: %s; the global model is unchanged.", server_round, what, reason)
            if what == "training":
                self.round_info["skipped"] = reason
            return []
        rng = random.Random(f"{self.sample_seed}:{server_round}:{what}")
        return sorted(rng.sample(nodes, sample_size))

    def _payload(self, arrays: ArrayRecord, node: int) -> ArrayRecord:
        record = ArrayRecord()
        for name in self._pulled_global:
            if name not in arrays:
                raise KeyError(f"sporax.fl: the global ArrayRecord has no entry for the pulled parameter {name!r}")
            record[name] = arrays[name]
        stored = self.client_records.get(self._node_client.get(node, ""), {})
        for name in self._pulled_stored:
            if name in stored:  # the client's own value; a client not known yet keeps its value
                record[name] = stored[name]
            elif not self.plan.entries[name].push:
                record[name] = arrays[name]
        return record

    def _messages(self, server_round, arrays, config, nodes, message_type) -> list[Message]:
        config["server-round"] = server_round
        if isinstance(self, _FlowerFedProx):
            config["proximal-mu"] = float(self.proximal_mu)
        messages, sizes = [], []
        for node in nodes:
            record = self._payload(arrays, node)
            sizes.append(arrays_nbytes(record))
            content = RecordDict({ARRAYS_KEY: record, CONFIG_KEY: config})
            messages.append(Message(content, dst_node_id=node, message_type=message_type, group_id=str(server_round)))
        return messages, sizes

    # ------------------------------------------------------------------ training
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """One message per sampled node, carrying the pulled parameters only."""
        self.round_info = {"round": server_round, "skipped": None, "sampled": 0, "rejected": [], "failed": []}
        self._current = arrays
        if self.fraction_train == 0.0:
            self.round_info["skipped"] = "fraction_fit is 0"
            return []
        nodes = self._sample(server_round, grid, self.fraction_train, self.min_train_nodes, "training")
        messages, sizes = self._messages(server_round, arrays, config, nodes, MessageType.TRAIN)
        self.round_info.update(sampled=len(nodes), bytes_down=sizes)
        return messages

    def _parse_reply(self, msg: Message) -> tuple[str, int, dict, dict, MetricRecord]:
        node = msg.metadata.src_node_id
        content = msg.content
        client = str(node)
        if CLIENT_KEY in content.config_records:
            client = str(content.config_records[CLIENT_KEY].get("client-id", node))
        if len(content.array_records) != 1:
            raise RejectedArray(client, f"the reply carries {len(content.array_records)} ArrayRecords, expected 1")
        record = next(iter(content.array_records.values()))
        if len(content.metric_records) != 1:
            raise RejectedArray(client, f"the reply carries {len(content.metric_records)} MetricRecords, expected 1")
        metrics = next(iter(content.metric_records.values()))
        weight = metrics.get(WEIGHT_KEY)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0 or weight != int(weight):
            raise RejectedArray(client, f"'{WEIGHT_KEY}' is {weight!r}, expected an int >= 0")
        nbytes = arrays_nbytes(record)
        limit = self.max_message_bytes
        if limit is None:
            limit = self.plan.push_nbytes + 4096 * max(1, len(self.plan.pushed))
        if nbytes > limit:
            raise RejectedArray(client, f"the reply carries {nbytes} bytes of arrays, more than the limit of {limit}")
        missing = [n for n in self.plan.pushed if n not in record]
        if missing:
            raise RejectedArray(client, f"the reply misses the pushed parameters {missing}")
        aggregated, stored = {}, {}
        for name, array in record.items():
            try:
                value = self.plan.check(name, array, direction="push")
            except RejectedArray as e:
                raise RejectedArray(client, str(e)) from None
            entry = self.plan.entries[name]
            if entry.aggr:
                aggregated[name] = value  # a read-only view of the received bytes
            else:
                stored[name] = array
        return client, int(weight), aggregated, stored, metrics

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Check the replies, average the aggregated parameters, store the per-client ones."""
        info = self.round_info if self.round_info.get("round") == server_round else {
            "round": server_round, "skipped": None, "sampled": 0, "rejected": [], "failed": []}
        self.round_info = info
        replies = list(replies)
        accepted = []
        for msg in replies:
            node = msg.metadata.src_node_id
            if msg.has_error():
                info["failed"].append({"node": node, "reason": msg.error.reason})
                _log.warning("sporax.fl: round %d: client on node %d failed: %s", server_round, node, msg.error.reason)
                continue
            try:
                accepted.append((msg, *self._parse_reply(msg)))
            except RejectedArray as e:
                client, reason = e.args if len(e.args) == 2 else (str(node), str(e))
                info["rejected"].append({"client": client, "node": node, "reason": reason})
                _log.error("sporax.fl: round %d: rejected the reply of client %s (node %d): %s", server_round, client,
                           node, reason)
        accepted.sort(key=lambda a: (a[1], a[0].metadata.src_node_id))  # a fixed order: the same sums everywhere
        info.update(replies=len(replies), accepted=len(accepted), bytes_up=[arrays_nbytes(
            next(iter(m.content.array_records.values()))) for m, *_ in accepted])
        if info["skipped"]:
            return None, None
        if len(accepted) < max(1, self.min_train_nodes):
            info["skipped"] = f"{len(accepted)} accepted replies, {max(1, self.min_train_nodes)} needed"
            _log.warning("sporax.fl: round %d skipped: %s; the global model is unchanged.", server_round, info["skipped"])
            return None, None
        if sum(a[2] for a in accepted) == 0 and self.plan.aggregated:
            info["skipped"] = "the accepted replies report 0 examples in total"
            _log.warning("sporax.fl: round %d skipped: %s; the global model is unchanged.", server_round, info["skipped"])
            return None, None
        for msg, client, _, _, stored, _ in accepted:
            self._node_client[msg.metadata.src_node_id] = client
            if stored:
                self.client_records.setdefault(client, {}).update(stored)
        metrics = self.train_metrics_aggr_fn(
            [RecordDict({METRICS_KEY: metrics}) for _, _, _, _, _, metrics in accepted], self.weighted_by_key)
        if not self.plan.aggregated:
            return None, metrics
        current = self._current
        if current is None:
            raise RuntimeError("sporax.fl: aggregate_train was called before configure_train.")
        averaged = self._weighted_average([(weight, values) for _, _, weight, values, _, _ in accepted])
        if isinstance(self, _FlowerFedOpt):
            averaged = self._server_step(server_round, current, averaged, accepted[0][0].metadata)
            if averaged is None:
                info["skipped"] = "the server optimizer step failed"
                return None, None
        result = ArrayRecord()
        for name in current.keys():
            if name in averaged:
                result[name] = to_array(averaged[name].astype(self.plan.entries[name].dtype, copy=False))
            else:
                result[name] = current[name]  # the same Array: unchanged byte for byte
        return result, metrics

    def _weighted_average(self, weighted: list) -> dict[str, np.ndarray]:
        """``sum_i (n_i / N) * x_i`` per averaged parameter: Flower's FedAvg arithmetic, in the
        same order and precision (float32 for float32 and narrower floats, else the dtype)."""
        total = float(sum(w for w, _ in weighted))
        out = {}
        for name in self.plan.aggregated:
            entry = self.plan.entries[name]
            dtype = np.result_type(entry.dtype, np.float32) if entry.dtype.kind == "f" else np.dtype(np.float32)
            acc = tmp = None
            for w, values in weighted:
                if acc is None:
                    acc = np.multiply(values[name], w / total, dtype=dtype)
                    tmp = np.empty_like(acc)
                else:
                    np.multiply(values[name], w / total, out=tmp, dtype=dtype)
                    acc += tmp
            out[name] = acc
        return out

    def _server_step(self, server_round: int, current: ArrayRecord, averaged: dict, metadata) -> dict | None:
        """FedOpt family (FedAdam): Flower's own step from the current global values to the average,
        fed one pre-averaged reply of weight 1 (``x * 1.0`` is exact)."""
        self.current_arrays = {n: from_array(current[n]).astype(averaged[n].dtype) for n in averaged}
        content = RecordDict({ARRAYS_KEY: ArrayRecord({n: to_array(v) for n, v in averaged.items()}),
                              METRICS_KEY: MetricRecord({self.weighted_by_key: 1})})
        stepped, _ = super().aggregate_train(server_round, [Message(content, metadata=metadata)])
        return None if stepped is None else {n: a.numpy() for n, a in stepped.items()}

    # ------------------------------------------------------------------ evaluation
    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """Evaluation messages (pulled parameters only); none when ``fraction_evaluate`` is 0."""
        if self.fraction_evaluate == 0.0:
            return []
        nodes = self._sample(server_round, grid, self.fraction_evaluate, self.min_evaluate_nodes, "evaluation")
        return self._messages(server_round, arrays, config, nodes, MessageType.EVALUATE)[0]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = [m for m in replies if not m.has_error()]
        if not replies:
            return None
        try:
            return super().aggregate_evaluate(server_round, replies)
        except Exception as e:  # inconsistent metric records: logged, the run goes on
            _log.warning("sporax.fl: round %d: evaluation metrics not aggregated: %s", server_round, e)
            return None

    def summary(self) -> None:
        _log.info("sporax.fl: %d parameters, %d pushed (%d averaged, %d stored per client), %d pulled",
                  len(self.plan.entries), len(self.plan.pushed), len(self.plan.aggregated), len(self.plan.stored),
                  len(self.plan.pulled))
        super().summary()

    # ------------------------------------------------------------------ state (checkpoints)
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The server state beyond the global model: per-client records and optimizer moments."""
        out = {}
        for client, record in self.client_records.items():
            for name, array in record.items():
                out[f"clients/{client}/{name}"] = from_array(array)
        for key in ("m_t", "v_t"):
            for name, value in (getattr(self, key, None) or {}).items():
                out[f"{key}/{name}"] = np.asarray(value)
        return out

    def load_state_arrays(self, values: dict[str, np.ndarray]) -> None:
        """Restore what ``state_arrays`` gave."""
        self.client_records = {}
        moments: dict = {}
        for key, value in values.items():
            kind, _, rest = key.partition("/")
            if kind == "clients":
                client, _, name = rest.partition("/")
                if name in self.plan.entries:
                    self.client_records.setdefault(client, {})[name] = to_array(value)
            elif kind in ("m_t", "v_t"):
                moments.setdefault(kind, {})[rest] = value
        for kind, record in moments.items():
            setattr(self, kind, record)


class FedAvg(_PartialAggregation, _FlowerFedAvg):
    """Flower's FedAvg over the flagged parameters of ``net`` (a Cell, or its ``Plan``).

    Keyword arguments are Flower's (``fraction_train``, ``min_train_nodes``,
    ``min_available_nodes``, ...), plus ``max_message_bytes`` (a larger reply is rejected;
    default: the pushed parameters' size plus headers) and ``sample_seed``.
    """


class FedProx(_PartialAggregation, _FlowerFedProx):
    """Flower's FedProx (``proximal_mu``); the client adds the proximal term (``sporax.fl.proximal_term``)."""


class FedAdam(_PartialAggregation, _FlowerFedAdam):
    """Flower's FedAdam (``eta``, ``beta_1``, ``beta_2``, ``tau``) on the averaged parameters."""


_STRATEGIES = {"fedavg": FedAvg, "fedprox": FedProx, "fedadam": FedAdam}


def make_strategy(strategy, net, **settings):
    """A strategy instance from a name ('fedavg', 'fedprox', 'fedadam') or an instance of ours."""
    if isinstance(strategy, _PartialAggregation):
        return strategy
    if not isinstance(strategy, str) or strategy.lower() not in _STRATEGIES:
        raise ValueError(
            f"For 'sporax.fl', the 'strategy' should be one of {list(_STRATEGIES)} or a sporax.fl strategy "
            f"instance, but got {strategy!r}."
        )
    cls = _STRATEGIES[strategy.lower()]
    proximal_mu = settings.pop("proximal_mu", 0.0)
    eta = settings.pop("server_learning_rate", None)
    if cls is FedProx:
        settings["proximal_mu"] = proximal_mu
    if cls is FedAdam and eta is not None:
        settings["eta"] = eta
    return cls(net, **settings)
