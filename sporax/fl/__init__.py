"""Federated learning on Flower, driven by each Parameter's ``set_param_fl`` flags.

``push_weight_to_server``: the client sends it; ``pull_weight_from_server``: the server's value
overwrites the client's at the start of a round; ``requires_aggr``: the server averages it
(else, like integer and bool parameters, it is stored per client and never averaged).
Parameters that are neither pushed nor pulled are personal: they stay on their client, in
Flower's ``Context.state``.

* ``simulate(make_net, train_fn, client_data, num_rounds, ...)``: server and clients in one
  process over Flower's Message API (no polling sleeps);
* ``client_app(...)`` / ``server_app(...)``: Flower ``ClientApp`` / ``ServerApp`` for a real
  deployment (``python -m sporax fl server|client ...`` starts SuperLink and SuperNodes);
* ``FedAvg`` / ``FedProx`` / ``FedAdam``: Flower's Message-API strategies, partial by flags;
* ``proximal_term(net)``: FedProx's term for the local loss;
* ``ModelTrainer(loss_fn, optimizer_fn)``: a ``train_fn`` training with ``sporax.train.Model``
  on a dataset (the proximal term added under FedProx).

Needs ``flwr`` (``pip install sporax[fl]``).
"""

from __future__ import annotations

try:
    import flwr  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("sporax.fl needs Flower: pip install 'sporax[fl]' (or pip install 'flwr>=1.42,<2').") from e

from sporax.fl._records import Plan
from sporax.fl.client import FLClient, client_app, proximal_term
from sporax.fl.server import FLResult, ServerCheckpoint, run_rounds, server_app
from sporax.fl.simulation import LocalGrid, simulate
from sporax.fl.strategy import FedAdam, FedAvg, FedProx, make_strategy
from sporax.fl.trainer import ModelTrainer

__all__ = [
    "simulate",
    "client_app",
    "server_app",
    "run_rounds",
    "FLResult",
    "FLClient",
    "Plan",
    "FedAvg",
    "FedProx",
    "FedAdam",
    "make_strategy",
    "proximal_term",
    "ModelTrainer",
    "ServerCheckpoint",
    "LocalGrid",
]
