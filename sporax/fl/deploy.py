"""Real processes: a Flower SuperLink, SuperNodes, and our ServerApp/ClientApp as a Flower App.

A user's federated script is a Python file (or module) defining ``make_net()``,
``train_fn(net, data, server_round) -> int``, ``client_data`` (a list indexed by partition id,
or a callable ``partition_id -> data``) and optionally ``eval_fn``. Then::

    python -m sporax fl server --app my_fl.py --num-rounds 3 --min-clients 2
    python -m sporax fl client --app my_fl.py --superlink 127.0.0.1:9092 --partition-id 0
    python -m sporax fl client --app my_fl.py --superlink 127.0.0.1:9092 --partition-id 1

``server`` starts ``flower-superlink`` (unless ``--superlink`` names a running one), writes a
small Flower App (``pyproject.toml`` whose components are ``serverapp`` / ``clientapp`` below,
the settings in ``[tool.flwr.app.config]``) and submits it with ``flwr run --stream``; each
``client`` runs ``flower-supernode`` with the script's path and its partition in
``--node-config``. Flower's SuperExec then starts a ``flwr-serverapp`` process for the run and
a ``flwr-clientapp`` process per message; both load this module and the user's script.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

__all__ = ["serverapp", "clientapp", "load_user_app", "write_app", "free_port", "Processes"]

_log = logging.getLogger("sporax.fl")

APP_KEY = "sporax-app"  # run_config / node_config key: the user's script (path or module name)
_loaded: dict = {}


def load_user_app(ref: str) -> SimpleNamespace:
    """The user's federated script: a ``.py`` path or an importable module name."""
    if ref in _loaded:
        return _loaded[ref]
    if ref.endswith(".py") or os.path.sep in ref:
        path = os.path.abspath(ref)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"sporax fl: no such script: {path}")
        name = "_sporax_fl_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(ref)
    missing = [n for n in ("make_net", "train_fn") if not callable(getattr(module, n, None))]
    if missing:
        raise AttributeError(f"sporax fl: the script {ref!r} should define {missing} (see 'python -m sporax fl --help').")
    app = SimpleNamespace(make_net=module.make_net, train_fn=module.train_fn,
                          client_data=getattr(module, "client_data", None), eval_fn=getattr(module, "eval_fn", None))
    _loaded[ref] = app
    return app


# ---------------------------------------------------------------------------------- the Flower App
serverapp = ServerApp()


@serverapp.main()
def _server_main(grid: Grid, context: Context) -> None:
    from sporax.fl.server import server_app

    cfg = dict(context.run_config)
    user = load_user_app(str(cfg.pop(APP_KEY)))
    output = cfg.pop("sporax-output", "")

    def finish(result) -> None:
        if not output:
            return
        from sporax.common.tensor import Tensor
        from sporax.train.serialization import save_checkpoint

        os.makedirs(output, exist_ok=True)
        save_checkpoint({k: Tensor(v) for k, v in result.server.items()}, os.path.join(output, "final.ckpt"))
        stored = {f"{c}/{n}": Tensor(v) for c, rec in result.server_clients.items() for n, v in rec.items()}
        save_checkpoint(stored, os.path.join(output, "server_clients.ckpt"), append_dict={"clients": len(stored)})
        with open(os.path.join(output, "history.json"), "w") as f:
            json.dump(result.history, f, default=str)

    inner = server_app(user.make_net, on_finish=finish)
    inner(grid, Context(run_id=context.run_id, node_id=context.node_id, node_config=context.node_config,
                        state=context.state, run_config=cfg))


clientapp = ClientApp()
_clients: dict = {}


def _client(context: Context):
    from sporax.fl.client import FLClient

    node = context.node_config
    ref = node.get(APP_KEY)
    if not ref:
        raise ValueError(f"sporax fl: this SuperNode has no {APP_KEY!r} in its --node-config; start it with "
                         f"'python -m sporax fl client --app SCRIPT ...'.")
    key = (ref, node.get("sporax-checkpoint-dir", ""), bool(node.get("sporax-resume", False)))
    if key not in _clients:
        user = load_user_app(str(ref))
        _clients[key] = FLClient(user.make_net, user.train_fn, user.client_data, eval_fn=user.eval_fn,
                                 checkpoint_dir=key[1] or None, resume=key[2])
    return _clients[key]


@clientapp.train()
def _client_train(msg: Message, context: Context) -> Message:
    return _client(context).train(msg, context)


@clientapp.evaluate()
def _client_evaluate(msg: Message, context: Context) -> Message:
    return _client(context).evaluate(msg, context)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_app(directory: str, run_config: dict) -> str:
    """Write the Flower App (``pyproject.toml`` and a two-line module) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    config = "\n".join(f"{k} = {_toml(v)}" for k, v in run_config.items() if v is not None)
    with open(os.path.join(directory, "pyproject.toml"), "w") as f:
        f.write(f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "sporaxfl"
version = "1.0.0"
description = "A sporax federated run"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "sporax"

[tool.flwr.app.components]
serverapp = "sporax_fl_app:serverapp"
clientapp = "sporax_fl_app:clientapp"

[tool.flwr.app.config]
{config}
""")
    with open(os.path.join(directory, "sporax_fl_app.py"), "w") as f:
        f.write('"""The sporax federated Flower App (generated by python -m sporax fl server)."""\n\n'
                "from sporax.fl import deploy as _deploy\n\n"
                "serverapp = _deploy.serverapp\nclientapp = _deploy.clientapp\n")
    return directory


# ---------------------------------------------------------------------------------- processes
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"sporax fl: {proc.args[0]} exited with code {proc.returncode} before listening "
                               f"on {host}:{port}.")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"sporax fl: nothing listens on {host}:{port} after {timeout} s.")


def flower_env(flwr_home: str, extra: dict | None = None) -> dict:
    """Environment for Flower's processes: telemetry and update checks off, our Python first."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(FLWR_HOME=flwr_home, FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1",
               FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1")
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.update(extra or {})
    return env


def _flower_bin(name: str) -> str:
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else (shutil.which(name) or name)


def write_connection(flwr_home: str, address: str) -> None:
    """A Flower CLI configuration whose default SuperLink connection is ``address`` (insecure)."""
    os.makedirs(flwr_home, exist_ok=True)
    with open(os.path.join(flwr_home, "config.toml"), "w") as f:
        f.write(f'[superlink]\ndefault = "sporax"\n\n[superlink.sporax]\naddress = "{address}"\ninsecure = true\n')


class Processes:
    """Subprocesses in their own process groups, all killed (group and all) on ``close``."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict, log_path: str | None = None) -> subprocess.Popen:
        out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed in close()); None: inherited
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc._sporax_log = out  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def descendants(self) -> list:
        """Every live descendant (psutil processes) -- Flower's SuperExec leaves our process groups."""
        try:
            import psutil
        except ImportError:  # without psutil, Flower's parent-process monitors end them
            return []
        found = []
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                found.extend(psutil.Process(proc.pid).children(recursive=True))
        return found

    def close(self, grace: float = 3.0) -> None:
        strays = self.descendants()
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: SuperExec and app processes too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5.0)
            log = getattr(proc, "_sporax_log", None)
            if log is not None:
                log.close()
        for stray in strays:
            with contextlib.suppress(Exception):
                stray.kill()
                stray.wait(5.0)
        self.procs.clear()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_superlink(procs: Processes, host: str, port: int, env: dict, log_path: str | None = None,
                    timeout: float = 60.0) -> subprocess.Popen:
    """``flower-superlink`` (insecure, its Runtime/Fleet/Control HTTP API on ``host:port``)."""
    proc = procs.start([_flower_bin("flower-superlink"), "--insecure", "--host", host, "--port", str(port),
                        "--disable-runtime-dependency-installation"], env, log_path)
    wait_for_port(host, port, timeout, proc)
    return proc


def start_supernode(procs: Processes, superlink: str, app: str, partition_id: int | None, num_partitions: int | None,
                    env: dict, *, port: int | None = None, checkpoint_dir: str | None = None, resume: bool = False,
                    log_path: str | None = None) -> subprocess.Popen:
    """``flower-supernode`` connected to ``superlink``, running our ClientApp on the user's script."""
    node = {APP_KEY: os.path.abspath(app) if app.endswith(".py") else app}
    if partition_id is not None:
        node["partition-id"] = partition_id
    if num_partitions is not None:
        node["num-partitions"] = num_partitions
    if checkpoint_dir:
        node["sporax-checkpoint-dir"] = os.path.abspath(checkpoint_dir)
    if resume:
        node["sporax-resume"] = True
    node_config = " ".join(f"{k}={_toml(v)}" for k, v in node.items())
    port = port or free_port()
    return procs.start([_flower_bin("flower-supernode"), "--insecure", "--superlink", superlink,
                        "--node-config", node_config, "--host", "127.0.0.1", "--port", str(port)], env, log_path)


def submit_run(app_dir: str, env: dict, timeout: float | None = None, log_path: str | None = None) -> int:
    """``flwr run APP_DIR --stream`` against the default connection of ``env['FLWR_HOME']``; its exit code."""
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115
    try:
        proc = subprocess.Popen([_flower_bin("flwr"), "run", app_dir, "--stream"], env=env, stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True)
        try:
            return proc.wait(timeout)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        if out:
            out.close()


def temp_home() -> str:
    return tempfile.mkdtemp(prefix="sporax-flwr-")
