"""``python -m sporax fl server ...`` / ``python -m sporax fl client ...`` (see ``sporax.fl.deploy``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

USAGE = """usage: python -m sporax fl server --app SCRIPT [options]
       python -m sporax fl client --app SCRIPT --superlink HOST:PORT --partition-id I [options]

SCRIPT is a Python file (or module) defining make_net(), train_fn(net, data, server_round) -> int,
client_data (a list indexed by partition id, or a callable) and optionally eval_fn(net, data)."""


def _settings_defaults():
    from sporax.fl.server import fl_settings

    return fl_settings()


def _server_parser(defaults: dict) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sporax fl server",
                                description="Start a Flower SuperLink and run a sporax federated ServerApp on it.")
    p.add_argument("--app", required=True, help="the federated script (path or module)")
    p.add_argument("--num-rounds", type=int, default=defaults["num_rounds"])
    p.add_argument("--strategy", default=defaults["strategy"], choices=["fedavg", "fedprox", "fedadam"])
    p.add_argument("--fraction-fit", type=float, default=defaults["fraction_fit"])
    p.add_argument("--fraction-evaluate", type=float, default=defaults["fraction_evaluate"])
    p.add_argument("--min-clients", type=int, default=None,
                   help="clients needed per round (min_fit_clients and min_available_clients)")
    p.add_argument("--round-timeout", type=float, default=defaults["round_timeout"])
    p.add_argument("--proximal-mu", type=float, default=defaults["proximal_mu"])
    p.add_argument("--checkpoint-dir", default=defaults["checkpoint_dir"])
    p.add_argument("--resume", action="store_true", default=defaults["resume"])
    p.add_argument("--output", default=None, help="directory for final.ckpt, server_clients.ckpt and history.json")
    p.add_argument("--superlink", default=None, help="use this running SuperLink (host:port) instead of starting one")
    p.add_argument("--address", default=defaults["server_address"],
                   help="host:port of the SuperLink to start (its Fleet, Control and Runtime HTTP API)")
    p.add_argument("--flwr-home", default=None, help="Flower's home directory (default: a fresh temporary one)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    return p


def _client_parser(defaults: dict) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sporax fl client",
                                description="Start a Flower SuperNode running the sporax ClientApp of a script.")
    p.add_argument("--app", required=True, help="the federated script (path or module)")
    p.add_argument("--superlink", default=defaults["server_address"], help="the SuperLink's host:port")
    p.add_argument("--partition-id", type=int, default=None)
    p.add_argument("--num-partitions", type=int, default=None)
    p.add_argument("--checkpoint-dir", default=None, help="save this client's local layers there each round")
    p.add_argument("--resume", action="store_true", help="start from the local layers in --checkpoint-dir")
    p.add_argument("--port", type=int, default=None, help="the SuperNode's own Runtime API port (default: a free one)")
    p.add_argument("--flwr-home", default=None)
    return p


def _split(address: str, arg: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"sporax fl: {arg} should be host:port, got {address!r}")
    return host, int(port)


def _check_app(ref: str) -> None:
    """Load the script here, so that a mistake shows now rather than in a Flower subprocess."""
    from sporax.fl import deploy

    try:
        deploy.load_user_app(ref)
    except (OSError, ImportError, AttributeError) as e:
        raise SystemExit(str(e)) from None


def _preload(argv: list[str]) -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--app")
    known, _ = pre.parse_known_args(argv)
    if known.app:
        _check_app(known.app)


def server_main(argv: list[str]) -> int:
    from sporax.fl import deploy

    _preload(argv)
    defaults = _settings_defaults()  # after the script ran: its set_fl_context(...) gives the defaults
    ns = _server_parser(defaults).parse_args(argv)
    home = os.path.abspath(ns.flwr_home) if ns.flwr_home else deploy.temp_home()
    env = deploy.flower_env(home)
    address = ns.superlink or ns.address
    host, port = _split(address, "--superlink" if ns.superlink else "--address")
    deploy.write_connection(home, address)
    min_clients = ns.min_clients or defaults["min_fit_clients"]
    run_config = {
        deploy.APP_KEY: os.path.abspath(ns.app) if ns.app.endswith(".py") else ns.app,
        "num-rounds": ns.num_rounds, "strategy": ns.strategy, "fraction-fit": ns.fraction_fit,
        "fraction-evaluate": ns.fraction_evaluate, "min-fit-clients": min_clients,
        "min-available-clients": ns.min_clients or max(min_clients, defaults["min_available_clients"]),
        "round-timeout": ns.round_timeout, "proximal-mu": ns.proximal_mu,
        "checkpoint-dir": os.path.abspath(ns.checkpoint_dir) if ns.checkpoint_dir else None,
        "resume": bool(ns.resume), "sporax-output": os.path.abspath(ns.output) if ns.output else "",
    }
    app_dir = deploy.write_app(os.path.join(home, "sporax-app"), run_config)
    with deploy.Processes() as procs:
        if not ns.superlink:
            deploy.start_superlink(procs, host, port, env, os.path.join(home, "superlink.log"))
            print(f"sporax fl: SuperLink listening on {address} (logs: {home}/superlink.log)", flush=True)
        code = deploy.submit_run(app_dir, env, timeout=ns.timeout)
    if ns.output and os.path.isfile(os.path.join(ns.output, "history.json")):
        with open(os.path.join(ns.output, "history.json")) as f:
            history = json.load(f)
        print(f"sporax fl: {len(history)} rounds done; the global model is in {ns.output}/final.ckpt", flush=True)
    return code


def client_main(argv: list[str]) -> int:
    from sporax.fl import deploy

    _preload(argv)
    ns = _client_parser(_settings_defaults()).parse_args(argv)
    _split(ns.superlink, "--superlink")
    home = os.path.abspath(ns.flwr_home) if ns.flwr_home else deploy.temp_home()
    env = deploy.flower_env(home)
    with deploy.Processes() as procs:
        node = deploy.start_supernode(procs, ns.superlink, ns.app, ns.partition_id, ns.num_partitions, env,
                                      port=ns.port, checkpoint_dir=ns.checkpoint_dir, resume=ns.resume,
                                      log_path=None)

        def stop(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        print(f"sporax fl: SuperNode (partition {ns.partition_id}) connecting to {ns.superlink}", flush=True)
        try:
            return node.wait()
        except KeyboardInterrupt:
            return 130


def main(argv: list[str]) -> int:
    """Dispatch ``server`` / ``client``."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "server":
        return server_main(rest)
    if command == "client":
        return client_main(rest)
    print(USAGE, file=sys.stderr)
    return 2
