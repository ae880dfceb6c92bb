"""End to end on real processes: a SuperLink and two SuperNodes, compared with the in-process run."""

import os
import sys
import textwrap
import time

import numpy as np
import pytest

fl = pytest.importorskip("sporax.fl")
psutil = pytest.importorskip("psutil")

from sporax.fl import deploy  # noqa: E402

SCRIPT = '''
import numpy as np
from sporax import Parameter, Tensor, nn


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.shared = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="shared")
        self.shared.set_param_fl(push_to_server=True, pull_from_server=True)
        self.personal = Parameter(Tensor(np.zeros((4,), np.float32)), name="personal")
        self.steps = Parameter(Tensor(np.zeros((), np.int32)), name="steps", requires_grad=False)
        self.steps.set_param_fl(push_to_server=True, pull_from_server=True)

    def construct(self, x):
        return x


def make_net():
    return Net()


client_data = [(1.0, 2), (3.0, 5)]


def train_fn(net, data, server_round):
    step, count = data
    net.shared.set_data(Tensor(net.shared.asnumpy() * np.float32(0.5) + np.float32(step * server_round)))
    net.personal.set_data(Tensor(net.personal.asnumpy() + np.float32(step)))
    net.steps.set_data(Tensor(np.array(net.steps.asnumpy() + 1, np.int32)))
    return count
'''


def _ours(tmp_path) -> list:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(tmp_path) in cmd and proc.pid != os.getpid():
            found.append(cmd)
    return found


def test_superlink_and_two_supernodes_match_the_in_process_run(tmp_path):
    script = tmp_path / "fed_app.py"
    script.write_text(textwrap.dedent(SCRIPT))
    user = deploy.load_user_app(str(script))
    expected = fl.simulate(user.make_net, user.train_fn, user.client_data, num_rounds=2)

    port = deploy.free_port()
    out, ckpt = tmp_path / "out", tmp_path / "clients"
    env = deploy.flower_env(str(tmp_path / "home"))
    python = [sys.executable, "-m", "sporax", "fl"]
    procs = deploy.Processes()
    try:
        server = procs.start(python + ["server", "--app", str(script), "--address", f"127.0.0.1:{port}",
                                       "--num-rounds", "2", "--min-clients", "2", "--round-timeout", "120",
                                       "--output", str(out), "--flwr-home", str(tmp_path / "home"),
                                       "--timeout", "240"], env, str(tmp_path / "server.log"))
        for i in range(2):
            procs.start(python + ["client", "--app", str(script), "--superlink", f"127.0.0.1:{port}",
                                  "--partition-id", str(i), "--num-partitions", "2", "--checkpoint-dir", str(ckpt),
                                  "--flwr-home", str(tmp_path / f"home{i}")], env, str(tmp_path / f"client{i}.log"))
        rc = server.wait(timeout=280)
    finally:
        procs.close()
    log = (tmp_path / "server.log").read_text()
    assert rc == 0, log[-3000:]

    import sporax

    final = {k: v.asnumpy() for k, v in sporax.load_checkpoint(str(out / "final.ckpt")).items()}
    assert sorted(final) == sorted(expected.server)
    for name, value in expected.server.items():
        np.testing.assert_allclose(final[name], value, rtol=1e-6, err_msg=name)
    stored = sporax.load_checkpoint(str(out / "server_clients.ckpt"))
    for client, record in expected.server_clients.items():
        for name, value in record.items():
            np.testing.assert_array_equal(stored[f"{client}/{name}"].asnumpy(), value)
    for i in range(2):
        local = sporax.load_checkpoint(str(ckpt / f"client_{i}.ckpt"))
        np.testing.assert_allclose(local["personal"].asnumpy(), expected.clients[i]["personal"])
        np.testing.assert_array_equal(local["steps"].asnumpy(), expected.clients[i]["steps"])
    np.testing.assert_allclose(expected.clients[1]["personal"], np.full(4, 6.0))  # the run itself is sane

    deadline = time.monotonic() + 10
    while _ours(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ours(tmp_path) == []  # every process reaped


def test_the_cli_refuses_a_bad_script(tmp_path):
    from sporax.fl import cli

    with pytest.raises(SystemExit, match="no such script"):
        cli.main(["server", "--app", str(tmp_path / "missing.py")])
    bad = tmp_path / "bad_app.py"
    bad.write_text("def make_net():\n    return None\n")
    with pytest.raises(SystemExit, match=r"should define \['train_fn'\]"):
        cli.main(["client", "--app", str(bad), "--superlink", "127.0.0.1:1"])
    good = tmp_path / "good_app.py"
    good.write_text(textwrap.dedent(SCRIPT))
    with pytest.raises(SystemExit, match="should be host:port"):
        cli.main(["client", "--app", str(good), "--superlink", "nowhere"])
    assert cli.main([]) == 2 and cli.main(["--help"]) == 0


def test_the_generated_flower_app_is_valid(tmp_path):
    from flwr.common.config import validate_config

    tomllib = pytest.importorskip("tomllib")

    app = deploy.write_app(str(tmp_path / "app"), {"sporax-app": "x.py", "num-rounds": 2, "resume": False})
    with open(os.path.join(app, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)
    ok, errors, _ = validate_config(config, check_module=True, project_dir=app)
    assert ok, errors
    assert config["tool"]["flwr"]["app"]["config"] == {"sporax-app": "x.py", "num-rounds": 2, "resume": False}
