"""Federated rounds: sporax.fl against Flower's own FedAvg, embedded and on SuperLink/SuperNodes.

The model is a sporax Cell of five 500x1000 float32 weights (10 MB, all pushed, pulled and
averaged), optionally with a 1 MB personal layer (250x1000, neither pushed nor pulled). The
clients' training is a no-op (it returns its example count), so what is measured is the
federated machinery: messages, serialization, checks, aggregation.

A. Embedded, one process, ``--clients`` clients (default 4), ``--rounds`` rounds:
   * ``sporax.fl.simulate`` with and without the personal layer;
   * Flower's ``FedAvg.start`` on the same in-process Grid, with a ClientApp doing FL the
     plain Flower way on the same Cell (the whole state dict both ways).
B. Real processes (``--deploy-rounds`` rounds, ``--deploy-clients`` SuperNodes; ``--no-deploy``
   skips it): a ``flower-superlink`` and SuperNodes on 127.0.0.1, running
   * sporax's ServerApp/ClientApp (what ``python -m sporax fl server|client`` starts), with and
     without the personal layer;
   * Flower's ``FedAvg`` ServerApp with the plain-Flower ClientApp on the same Cell.

Time per round: the server's time from the start of one round to the end of it (sampling,
messages, waiting for replies, aggregation), averaged over the rounds after the first.
Bytes: the array payload each client receives (down) and sends (up) per round.

Run: ``python benchmarks/bench_fl.py [--rounds 6] [--deploy-rounds 3] [--no-deploy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODEL = '''
import numpy as np
from sporax import Parameter, Tensor, nn

PERSONAL = {personal}


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        for i in range(5):
            p = Parameter(Tensor(np.full((500, 1000), 0.01 * i, np.float32)), name=f"w{{i}}")
            p.set_param_fl(push_to_server=True, pull_from_server=True)
            setattr(self, f"w{{i}}", p)
        if PERSONAL:
            self.head = Parameter(Tensor(np.zeros((250, 1000), np.float32)), name="head")

    def construct(self, x):
        return x


def make_net():
    return Net()


client_data = [None] * 64


def train_fn(net, data, server_round):
    return 1
'''

# Flower's way, on the same Cell: FedAvg over the whole state dict (what a Flower user writes)
FLOWER_APP = '''
import json
import os
import time

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from sporax.common.tensor import Tensor
from sporax.fl.deploy import load_user_app


def state_dict(net):
    return ArrayRecord({p.name: Array(np.asarray(p)) for _, p in net.parameters_and_names()})


clientapp = ClientApp()
_nets = {}


@clientapp.train()
def train(msg, context):
    user = load_user_app(context.node_config["sporax-app"])
    if context.node_id not in _nets:
        _nets[context.node_id] = user.make_net()
    net = _nets[context.node_id]
    params = {p.name: p for _, p in net.parameters_and_names()}
    for name, array in msg.content["arrays"].items():
        params[name].set_data(Tensor(array.numpy()))
    n = user.train_fn(net, None, int(msg.content["config"]["server-round"]))
    content = RecordDict({"arrays": state_dict(net), "metrics": MetricRecord({"num-examples": n})})
    return Message(content, reply_to=msg)


serverapp = ServerApp()


@serverapp.main()
def main(grid, context):
    cfg = context.run_config
    user = load_user_app(cfg["sporax-app"])
    initial = state_dict(user.make_net())
    n = int(cfg["min-fit-clients"])
    marks = []
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
    strategy.start(grid, initial, num_rounds=int(cfg["num-rounds"]), timeout=600.0,
                   evaluate_fn=lambda r, arrays: marks.append(time.perf_counter()) or None)
    nbytes = sum(len(a.data) for a in initial.values())
    out = cfg["sporax-output"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "flower.json"), "w") as f:
        json.dump({"round_times": [b - a for a, b in zip(marks, marks[1:])], "bytes": nbytes}, f)
'''


def _write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def _mean_after_first(times: list) -> float:
    rest = times[1:] or times
    return sum(rest) / len(rest)


# ------------------------------------------------------------------------------------- A. embedded
def embedded(script: str, clients: int, rounds: int) -> dict:
    import sporax.fl as fl
    from sporax.fl import deploy

    user = deploy.load_user_app(script)
    t0 = time.perf_counter()
    result = fl.simulate(user.make_net, user.train_fn, [None] * clients, num_rounds=rounds)
    wall = time.perf_counter() - t0
    h = result.history
    return {
        "round_s": _mean_after_first([r["time"]["total"] for r in h]),
        "wall_s_per_round": wall / rounds,
        "down": h[-1]["bytes_down_per_client"],
        "up": h[-1]["bytes_up_per_client"],
    }


def embedded_flower(script: str, clients: int, rounds: int, workdir: str) -> dict:
    """Flower's FedAvg.start over our in-process Grid, with the plain-Flower ClientApp."""
    import importlib.util

    from flwr.app import Context, RecordDict
    from flwr.supercore.run import Run

    from sporax.fl import LocalGrid
    from sporax.fl.simulation import _task_identity

    path = _write(os.path.join(workdir, "flower_app_embedded.py"), FLOWER_APP)
    spec = importlib.util.spec_from_file_location("flower_app_embedded", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    contexts = [Context(run_id=1, node_id=1000 + i, node_config={"sporax-app": script}, state=RecordDict(),
                        run_config={}) for i in range(clients)]
    grid = LocalGrid(module.clientapp, contexts, Run.create_empty(1))
    out = os.path.join(workdir, "flower_embedded")
    server_ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(),
                         run_config={"sporax-app": script, "min-fit-clients": clients, "num-rounds": rounds,
                                     "sporax-output": out})
    t0 = time.perf_counter()
    with _task_identity(1):
        module.serverapp(grid, server_ctx)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "flower.json")) as f:
        res = json.load(f)
    return {"round_s": _mean_after_first(res["round_times"]), "wall_s_per_round": wall / rounds,
            "down": res["bytes"], "up": res["bytes"]}


# ------------------------------------------------------------------------------------- B. deployed
def deployed(script: str, clients: int, rounds: int, workdir: str, flower: bool) -> dict:
    from sporax.fl import deploy

    tag = ("flower" if flower else "sporax") + os.path.basename(script)[:-3]
    home = os.path.join(workdir, tag)
    os.makedirs(home, exist_ok=True)
    env = deploy.flower_env(os.path.join(home, "flwr"))
    port = deploy.free_port()
    address = f"127.0.0.1:{port}"
    deploy.write_connection(env["FLWR_HOME"], address)
    out = os.path.join(home, "out")
    config = {deploy.APP_KEY: script, "num-rounds": rounds, "min-fit-clients": clients,
              "min-available-clients": clients, "round-timeout": 600.0, "sporax-output": out}
    app_dir = deploy.write_app(os.path.join(home, "app"), config)
    if flower:
        _write(os.path.join(app_dir, "sporax_fl_app.py"), FLOWER_APP)  # the same components, Flower's code
    with deploy.Processes() as procs:
        deploy.start_superlink(procs, "127.0.0.1", port, env, os.path.join(home, "superlink.log"))
        for i in range(clients):
            deploy.start_supernode(procs, address, script, i, clients, env,
                                   log_path=os.path.join(home, f"node{i}.log"))
        code = deploy.submit_run(app_dir, env, timeout=1800, log_path=os.path.join(home, "run.log"))
    if code != 0:
        raise RuntimeError(f"the {tag} run failed (exit {code}); see {home}/run.log")
    if flower:
        with open(os.path.join(out, "flower.json")) as f:
            res = json.load(f)
        return {"round_s": _mean_after_first(res["round_times"]), "down": res["bytes"], "up": res["bytes"]}
    with open(os.path.join(out, "history.json")) as f:
        h = json.load(f)
    return {"round_s": _mean_after_first([r["time"]["total"] for r in h]), "down": h[-1]["bytes_down_per_client"],
            "up": h[-1]["bytes_up_per_client"]}


def _row(name: str, r: dict, ref: dict | None) -> str:
    ratio = f"{r['round_s'] / ref['round_s']:6.2f}x" if ref else "      -"
    return (f"  {name:<50} {r['round_s'] * 1e3:9.1f} ms {ratio}   down {r['down'] / 1e6:6.2f} MB"
            f"   up {r['up'] / 1e6:6.2f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--deploy-clients", type=int, default=4)
    ap.add_argument("--deploy-rounds", type=int, default=3)
    ap.add_argument("--no-deploy", action="store_true")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-fl-")
    plain = _write(os.path.join(workdir, "model_plain.py"), MODEL.format(personal=False))
    personal = _write(os.path.join(workdir, "model_personal.py"), MODEL.format(personal=True))
    print(f"10 MB model (5 x 500x1000 float32), no-op training; this machine: {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (shared with other jobs: compare within a run)")

    print(f"\nA. embedded, one process, {args.clients} clients, {args.rounds} rounds (goal: sporax <= 200 ms/round)")
    flower = embedded_flower(plain, args.clients, args.rounds, workdir)
    ours = embedded(plain, args.clients, args.rounds)
    ours_p = embedded(personal, args.clients, args.rounds)
    flower_p = embedded_flower(personal, args.clients, args.rounds, workdir)
    print(_row("Flower FedAvg.start, plain-Flower client", flower, None))
    print(_row("sporax.fl.simulate", ours, flower))
    print(_row("Flower FedAvg.start, + 1 MB personal layer", flower_p, None))
    print(_row("sporax.fl.simulate, + 1 MB personal (kept local)", ours_p, flower_p))
    print(f"  (sporax wall time per round incl. building the nets: {ours['wall_s_per_round'] * 1e3:.0f} ms, "
          f"{ours_p['wall_s_per_round'] * 1e3:.0f} ms with the personal layer)")

    if args.no_deploy:
        return
    n, r = args.deploy_clients, args.deploy_rounds
    print(f"\nB. flower-superlink + {n} flower-supernode processes on 127.0.0.1, {r} rounds "
          "(goal: sporax adds <= 5% to Flower's FedAvg)")
    f_plain = deployed(plain, n, r, workdir, flower=True)
    s_plain = deployed(plain, n, r, workdir, flower=False)
    s_pers = deployed(personal, n, r, workdir, flower=False)
    f_pers = deployed(personal, n, r, workdir, flower=True)
    print(_row("Flower FedAvg, plain-Flower client", f_plain, None))
    print(_row("sporax ServerApp/ClientApp", s_plain, f_plain))
    print(_row("Flower FedAvg, + 1 MB personal layer", f_pers, None))
    print(_row("sporax, + 1 MB personal (kept local)", s_pers, f_pers))
    print("  (a round there is dominated by Flower itself: a flwr-clientapp process per message and 3 s polls)")


if __name__ == "__main__":
    main()
