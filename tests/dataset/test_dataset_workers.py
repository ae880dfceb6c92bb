"""Determinism across processes (ms.set_seed seeds the pipeline) and transforms in worker processes."""

import os
import subprocess
import sys

import numpy as np

import sporax.dataset as ds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import numpy as np
import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.vision as vision

ms.set_seed(11)
class Src:
    def __getitem__(self, i):
        return np.full((6, 6), i, np.uint8), np.int32(i)
    def __len__(self):
        return 20
d = ds.GeneratorDataset(Src(), ["image", "label"], shuffle=True)
d = d.map([vision.RandomCrop(4), vision.RandomHorizontalFlip()], "image").shuffle(8).batch(5)
it = d.create_tuple_iterator(num_epochs=2, output_numpy=True)
for _ in range(2):
    print([int(v) for _, lab in it for v in lab])
print(int(sum(int(img.sum()) for img, _ in d.create_tuple_iterator(num_epochs=1, output_numpy=True))))
"""


def test_same_seed_same_order_in_two_processes(tmp_path):
    path = tmp_path / "det.py"
    path.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-m", "sporax", "run", str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(2)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-2000:]
            outs.append(out.splitlines())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    a, b = outs
    assert a == b
    e1, e2 = eval(a[0]), eval(a[1])
    assert sorted(e1) == sorted(e2) == list(range(20)) and e1 != e2


class PidSource:
    def __getitem__(self, i):
        return np.array([i], np.int64)

    def __len__(self):
        return 16


def tag_pid(x):
    return np.array([x[0], os.getpid()], np.int64)


def test_python_transforms_run_in_worker_processes():
    d = ds.GeneratorDataset(PidSource(), ["x"], shuffle=True)
    d = d.map(tag_pid, "x", num_parallel_workers=2, python_multiprocessing=True).batch(4)
    it = d.create_tuple_iterator(num_epochs=2, output_numpy=True)
    try:
        epochs = [[r[0] for r in it] for _ in range(2)]
    finally:
        it.stop()
    pids = {int(p) for e in epochs for b in e for p in b[:, 1]}
    assert len(pids) == 2 and os.getpid() not in pids
    single = ds.GeneratorDataset(PidSource(), ["x"], shuffle=True).batch(4).create_tuple_iterator(
        num_epochs=2, output_numpy=True)
    ref = [[r[0] for r in single] for _ in range(2)]
    got = [[b[:, 0].tolist() for b in e] for e in epochs]
    assert got == [[b[:, 0].tolist() for b in e] for e in ref]  # same order as in one process
    assert sorted(v for b in got[0] for v in b) == list(range(16))
