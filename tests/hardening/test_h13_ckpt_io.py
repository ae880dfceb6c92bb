"""Issue 13: save-side hardening: file modes, OSErrors naming the checkpoint, and the temp
files of killed writers (removed by the next save, never a live writer's)."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sporax import Tensor
from sporax.train import _ckpt_io as cio
from sporax.train.serialization import load_checkpoint, save_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _items(n: int = 10):
    return [{"name": "w", "data": Tensor(np.arange(n, dtype=np.float32))}]


@pytest.mark.parametrize("ext", [".ckpt", ".safetensors"])
def test_resave_keeps_file_mode(tmp_path, ext):
    path = str(tmp_path / ("a" + ext))
    save_checkpoint(_items(), path)
    os.chmod(path, 0o600)
    save_checkpoint(_items(12), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o640)
    save_checkpoint(_items(12), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert load_checkpoint(path)["w"].shape == (12,)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_oserror_names_the_checkpoint(tmp_path, monkeypatch, code):
    path = str(tmp_path / "a.ckpt")
    save_checkpoint(_items(), path)

    def fail(self, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cio._WritebackFile, "write", fail)
    with pytest.raises(OSError) as info:
        save_checkpoint(_items(12), path)
    assert info.value.errno == code and info.value.filename == path and path in str(info.value)
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == code
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["a.ckpt"]
    assert load_checkpoint(path)["w"].shape == (10,)


def test_unwritable_directory_names_the_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "a.ckpt")
    real_open = os.open

    def ro_open(p, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), p)
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    with pytest.raises(OSError) as info:
        save_checkpoint(_items(), path)
    assert info.value.errno == errno.EROFS and info.value.filename == path
    assert isinstance(info.value.__cause__, OSError)


def test_file_too_large_names_the_checkpoint(tmp_path):
    """A real EFBIG: the file size limit (RLIMIT_FSIZE) below the checkpoint's size."""
    path = str(tmp_path / "a.ckpt")
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError) as info:
            save_checkpoint(_items(100_000), path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert info.value.errno == errno.EFBIG and info.value.filename == path
    assert isinstance(info.value.__cause__, OSError)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- temp files
_SAVER = """
import sys, time, numpy as np
from sporax import Tensor
from sporax.train import _ckpt_format as ckf
from sporax.train.serialization import save_checkpoint
put = ckf.CkptWriter._put
def slow_put(self, data):
    if len(data) > 1 << 20:  # the tensor's bytes: write half, then wait to be killed
        put(self, data[: len(data) // 2])
        print("halfway", flush=True)
        time.sleep(120)
    put(self, data)
ckf.CkptWriter._put = slow_put
save_checkpoint([{"name": "w", "data": Tensor(np.ones((1024, 1024, 2), np.float32))}], sys.argv[1])
"""


def _start_saver(path: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SAVER), path], stdout=subprocess.PIPE, env=env, text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "halfway"
    except BaseException:
        _reap(proc)
        raise
    return proc


def _reap(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
    proc.stdout.close()


def _temps(tmp_path) -> list[str]:
    return sorted(f for f in os.listdir(tmp_path) if f.endswith(".tmp"))


def test_killed_savers_leave_no_accumulating_temp_files(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_checkpoint(_items(), path)
    for _ in range(3):
        proc = _start_saver(path)  # its own save first removes the temp file of the last kill
        _reap(proc)
        assert len(_temps(tmp_path)) == 1
        assert all(stale for _, _, stale in cio.temp_files(path))
    save_checkpoint(_items(), path)
    assert _temps(tmp_path) == []
    np.testing.assert_array_equal(load_checkpoint(path)["w"].asnumpy(), np.arange(10, dtype=np.float32))


def test_live_writers_temp_file_is_kept(tmp_path):
    path = str(tmp_path / "model.ckpt")
    proc = _start_saver(path)
    try:
        (live,) = _temps(tmp_path)
        assert [stale for _, _, stale in cio.temp_files(path)] == [False]
        save_checkpoint(_items(), path)  # a concurrent save: must not touch the live temp file
        assert _temps(tmp_path) == [live]
        # another checkpoint whose name extends this one's is not confused with it
        save_checkpoint(_items(), str(tmp_path / "model.ckpt.1.ckpt"))
        assert _temps(tmp_path) == [live]
    finally:
        _reap(proc)
    save_checkpoint(_items(), path)
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("ext", [".ckpt", ".safetensors"])
def test_lone_surrogate_name_is_refused_at_save(tmp_path, ext):
    path = str(tmp_path / ("a" + ext))
    with pytest.raises(ValueError, match="lone surrogate"):
        save_checkpoint({"\ud800": Tensor(np.ones(2, np.float32))}, path)
    assert os.listdir(tmp_path) == []
