"""The server side: a Cell as a Flower ``ServerApp`` running one of our strategies round by round.

``run_rounds`` is the round loop over Flower's ``Grid`` (configure, send and receive, aggregate,
optionally evaluate), with per-round metrics and timings, a checkpoint of the global model after
each round (our checkpoint format, loadable into the Cell) and resumption from the latest one.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
import time

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from sporax.fl._records import Plan, from_array, record_from

__all__ = ["server_app", "run_rounds", "ServerCheckpoint", "FLResult", "fl_settings"]

_log = logging.getLogger("sporax.fl")


@dataclasses.dataclass
class FLResult:
    """What a federated run gives back.

    ``server``: the global record (name -> numpy array); ``clients``: each client's parameters
    after the last round (``simulate`` only); ``history``: one dict per round (metrics,
    rejected/failed clients, bytes per client, timings in seconds); ``server_clients``: the
    pushed ``requires_aggr=False`` (and integer) parameters the server stores per client.
    """

    server: dict
    clients: list
    history: list
    server_clients: dict


def fl_settings(**overrides) -> dict:
    """The federated settings: ``set_fl_context`` values, with the non-None ``overrides`` on top."""
    from sporax import context

    fields = [f.name for f in dataclasses.fields(context._FL)]
    settings = {name: context.get_fl_context(name) for name in fields}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


class ServerCheckpoint:
    """``global_round{r}.ckpt`` (the global model, loadable into the Cell) and
    ``server_state_round{r}.ckpt`` (per-client records and optimizer moments), written after each
    round; the ``keep`` newest rounds are kept."""

    _PATTERN = re.compile(r"global_round(\d+)\.ckpt$")

    def __init__(self, directory: str, keep: int = 5) -> None:
        self.directory = os.fspath(directory)
        self.keep = keep

    def _paths(self, server_round: int) -> tuple[str, str]:
        return (os.path.join(self.directory, f"global_round{server_round}.ckpt"),
                os.path.join(self.directory, f"server_state_round{server_round}.ckpt"))

    def rounds(self) -> list[int]:
        found = []
        for path in glob.glob(os.path.join(glob.escape(self.directory), "global_round*.ckpt")):
            m = self._PATTERN.search(os.path.basename(path))
            if m and os.path.isfile(self._paths(int(m.group(1)))[1]):
                found.append(int(m.group(1)))
        return sorted(found)

    def save(self, server_round: int, arrays: ArrayRecord, state: dict) -> None:
        from sporax.common.tensor import Tensor
        from sporax.train.serialization import save_checkpoint

        os.makedirs(self.directory, exist_ok=True)
        model_path, state_path = self._paths(server_round)
        # the state first: a round counts as saved once its model file exists next to it
        save_checkpoint({k: Tensor(v) for k, v in state.items()}, state_path, append_dict={"fl_round": server_round})
        save_checkpoint({k: Tensor(from_array(a)) for k, a in arrays.items()}, model_path,
                        append_dict={"fl_round": server_round})
        for old in self.rounds()[: -self.keep]:
            for path in self._paths(old):
                os.remove(path)

    def load_latest(self, plan: Plan) -> tuple[int, dict, dict] | None:
        """``(round, global values, state values)`` of the newest saved round, or None."""
        from sporax.train.serialization import load_checkpoint

        rounds = self.rounds()
        if not rounds:
            return None
        server_round = rounds[-1]
        model_path, state_path = self._paths(server_round)
        model = {k: v.asnumpy() for k, v in load_checkpoint(model_path).items() if k != "fl_round"}
        if set(model) != set(plan.entries):
            raise ValueError(f"sporax.fl: the checkpoint '{model_path}' holds {sorted(model)}, but the network has "
                             f"{sorted(plan.entries)}; resume with the same network.")
        for name, value in model.items():
            entry = plan.entries[name]
            if tuple(value.shape) != entry.shape or value.dtype != entry.dtype:
                raise ValueError(f"sporax.fl: the checkpoint '{model_path}' has {name!r} as {value.dtype}"
                                 f"{list(value.shape)}, but the network has {entry.dtype}{list(entry.shape)}.")
        state = {k: v.asnumpy() for k, v in load_checkpoint(state_path).items() if k != "fl_round"}
        return server_round, model, state


def _metrics(record: MetricRecord | None) -> dict:
    return {} if record is None else {k: v for k, v in record.items()}


def _wait_for_nodes(grid: Grid, needed: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(list(grid.get_node_ids())) < needed and time.monotonic() < deadline:
        time.sleep(0.2)


def run_rounds(grid: Grid, strategy, initial: ArrayRecord, num_rounds: int, *, start_round: int = 1,
               round_timeout: float | None = None, checkpoint: ServerCheckpoint | None = None,
               connect_timeout: float = 0.0) -> tuple[ArrayRecord, list]:
    """Run rounds ``start_round .. num_rounds``; return the final global record and the history."""
    arrays = initial
    history = []
    if connect_timeout > 0:
        _wait_for_nodes(grid, max(strategy.min_available_nodes, strategy.min_train_nodes), connect_timeout)
    strategy.summary()
    for server_round in range(start_round, num_rounds + 1):
        t0 = time.perf_counter()
        messages = list(strategy.configure_train(server_round, arrays, ConfigRecord(), grid))
        t1 = time.perf_counter()
        replies = list(grid.send_and_receive(messages, timeout=round_timeout)) if messages else []
        t2 = time.perf_counter()
        new_arrays, train_metrics = strategy.aggregate_train(server_round, replies)
        if new_arrays is not None:
            arrays = new_arrays
        t3 = time.perf_counter()
        eval_metrics = None
        eval_messages = list(strategy.configure_evaluate(server_round, arrays, ConfigRecord(), grid))
        if eval_messages:
            eval_metrics = strategy.aggregate_evaluate(
                server_round, grid.send_and_receive(eval_messages, timeout=round_timeout))
        t4 = time.perf_counter()
        if checkpoint is not None:
            checkpoint.save(server_round, arrays, strategy.state_arrays())
        t5 = time.perf_counter()
        info = dict(strategy.round_info)
        down, up = info.pop("bytes_down", []), info.pop("bytes_up", [])
        info.update(
            train_metrics=_metrics(train_metrics),
            evaluate_metrics=_metrics(eval_metrics),
            bytes_down_per_client=float(np.mean(down)) if down else 0.0,
            bytes_up_per_client=float(np.mean(up)) if up else 0.0,
            time={"configure": t1 - t0, "round_trip": t2 - t1, "aggregate": t3 - t2, "evaluate": t4 - t3,
                  "checkpoint": t5 - t4, "total": t5 - t0},
        )
        history.append(info)
        _log.info("sporax.fl: round %d/%d: %d sampled, %d accepted, %d rejected, %d failed%s (%.3f s)", server_round,
                  num_rounds, info.get("sampled", 0), info.get("accepted", 0), len(info.get("rejected", [])),
                  len(info.get("failed", [])), f", skipped: {info['skipped']}" if info.get("skipped") else "",
                  t5 - t0)
    return arrays, history


def _run_config(context: Context | None) -> dict:
    """Settings from a run's ``run_config`` (``flwr run --run-config 'num-rounds=3'``), as fl_settings keys."""
    if context is None:
        return {}
    return {k.replace("-", "_"): v for k, v in context.run_config.items()}


def server_app(make_net, *, strategy=None, num_rounds: int | None = None, fraction_fit: float | None = None,
               round_timeout: float | None = None, checkpoint_dir: str | None = None, resume: bool | None = None,
               on_finish=None, **strategy_kwargs) -> ServerApp:
    """A Flower ``ServerApp`` running our strategy (a name or an instance) on ``make_net()``'s global model.

    Unset arguments come from ``set_fl_context`` (and a run's ``run_config``: ``num-rounds``,
    ``round-timeout``, ...). ``on_finish(FLResult)`` is called at the end of the run.
    """
    if not callable(make_net):
        raise TypeError(f"For 'sporax.fl.server_app', the 'make_net' should be a callable returning a Cell, "
                        f"but got {make_net!r}.")
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_cfg = _run_config(context)
        explicit = {"strategy": strategy if isinstance(strategy, str) else None, "num_rounds": num_rounds,
                    "fraction_fit": fraction_fit, "round_timeout": round_timeout, "checkpoint_dir": checkpoint_dir,
                    "resume": resume}
        s = fl_settings(**{**run_cfg, **{k: v for k, v in explicit.items() if v is not None}})
        net = make_net()
        plan = Plan(net)
        from sporax.fl.strategy import make_strategy

        kwargs = dict(fraction_train=s["fraction_fit"], fraction_evaluate=s["fraction_evaluate"],
                      min_train_nodes=s["min_fit_clients"], min_evaluate_nodes=s["min_fit_clients"],
                      min_available_nodes=s["min_available_clients"], max_message_bytes=s["max_message_bytes"],
                      sample_seed=s["sample_seed"], proximal_mu=s["proximal_mu"],
                      server_learning_rate=s["server_learning_rate"])
        kwargs.update(strategy_kwargs)
        strat = make_strategy(strategy if strategy is not None and not isinstance(strategy, str) else s["strategy"],
                              plan, **kwargs)
        initial = record_from({p.name: p.asnumpy() for _, p in net.parameters_and_names()})
        start_round = 1
        ckpt = ServerCheckpoint(s["checkpoint_dir"], s["keep_checkpoint_max"]) if s["checkpoint_dir"] else None
        if ckpt is not None and s["resume"] and (saved := ckpt.load_latest(plan)) is not None:
            saved_round, model, state = saved
            initial = record_from({name: model[name] for name in plan.entries})
            strat.load_state_arrays(state)
            start_round = saved_round + 1
            _log.info("sporax.fl: resuming after round %d from %s", saved_round, ckpt.directory)
        connect = 0.0 if getattr(grid, "embedded", False) else float(s["round_timeout"] or 60.0)
        arrays, history = run_rounds(grid, strat, initial, int(s["num_rounds"]), start_round=start_round,
                                     round_timeout=s["round_timeout"], checkpoint=ckpt, connect_timeout=connect)
        result = FLResult(
            server={name: from_array(a) for name, a in arrays.items()},
            clients=[],
            history=history,
            server_clients={c: {n: from_array(a) for n, a in rec.items()} for c, rec in strat.client_records.items()},
        )
        if on_finish is not None:
            on_finish(result)

    return app
