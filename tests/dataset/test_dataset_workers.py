"""Determinism across processes (ms.set_seed seeds the pipeline) and transforms in worker processes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import sporax.dataset as ds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import numpy as np
import pytest
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


# ------------------------------------------------------------------ iterable sources in workers
def stream():
    for i in range(23):
        yield np.full((4, 4, 1), i, np.uint8), np.int64(i)


def tag_image(x):
    return np.array([x[0, 0, 0], os.getpid()], np.int64)


def fail_on_7(x):
    if x[0, 0, 0] == 7:
        raise ValueError("bad row")
    return x


def _children():
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())}


def test_iterable_source_rows_in_worker_processes_keep_source_order():
    before = _children()
    d = ds.GeneratorDataset(stream, ["image", "label"], num_parallel_workers=2).map(tag_image, "image").batch(5)
    it = d.create_tuple_iterator(num_epochs=1, output_numpy=True)
    try:
        out = [b for b, _ in it]
    finally:
        it.stop()
    assert [b[:, 0].tolist() for b in out] == [list(range(s, min(s + 5, 23))) for s in range(0, 23, 5)]
    pids = {int(p) for b in out for p in b[:, 1]}
    assert len(pids) == 2 and os.getpid() not in pids
    assert _children() <= before  # the workers are gone


def test_iterable_source_in_threads_and_random_maps_do_not_depend_on_workers():
    d = ds.GeneratorDataset(stream, ["image", "label"], num_parallel_workers=3, python_multiprocessing=False)
    out = list(d.map(tag_image, "image").create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [int(r[0][0]) for r in out] == list(range(23)) and {int(r[0][1]) for r in out} == {os.getpid()}

    def run(workers):
        import sporax as ms
        import sporax.dataset.vision as vision

        ms.set_seed(3)
        d = ds.GeneratorDataset(stream, ["image", "label"], num_parallel_workers=workers, python_multiprocessing=False)
        d = d.map([vision.RandomCrop(2), vision.RandomHorizontalFlip()], "image")
        return np.stack([r[0] for r in d.create_tuple_iterator(num_epochs=1, output_numpy=True)])

    one, three = run(1), run(3)
    assert np.array_equal(one, three) and len({one[i].tobytes() for i in range(23)}) > 1


def test_iterable_source_worker_error_names_the_row_and_one_shot_iterators_stay_here():
    d = ds.GeneratorDataset(stream, ["image", "label"], num_parallel_workers=2, python_multiprocessing=False)
    with pytest.raises(RuntimeError, match=r"fail_on_7.*\['image'\] at row 7"):
        list(d.map(fail_on_7, "image").create_tuple_iterator(num_epochs=1, output_numpy=True))
    with pytest.warns(UserWarning, match="one-shot iterator"):
        rows = list(ds.GeneratorDataset(stream(), ["image", "label"], num_parallel_workers=2)
                    .create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [int(r[1]) for r in rows] == list(range(23))
