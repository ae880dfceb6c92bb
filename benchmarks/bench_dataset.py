"""mindspore.dataset pipeline throughput against the same pipeline in Grain directly and in plain numpy,
and the share of a ``Model.train`` epoch spent waiting for data. One run, side by side.

Pipeline: a random-access source of 28x28x1 uint8 images -> Rescale(1/255) -> Normalize(0.1307,
0.3081) -> HWC2CHW -> batch 128, read for one epoch as numpy batches:

* sporax      ``GeneratorDataset(...).map([...], num_parallel_workers=W).batch(128)``
* grain       ``grain.MapDataset.source(...).map(f).batch(128)`` with the same numpy ops; W=1:
              ``to_iter_dataset`` with one read thread, W=2: ``mp_prefetch`` with 2 worker processes
              (what sporax builds for ``num_parallel_workers=2, python_multiprocessing=True``)
* numpy       a Python loop over the rows, ops in numpy, ``np.stack`` per batch (one process)

Throughput is timed from the first batch (worker start-up is reported separately), best of
``--repeat`` epochs. The Model.train figure trains a 784-128-10 MLP (GRAPH_MODE) on the same
pipeline (+ TypeCast of the labels) and reports, for the second epoch, the time between one
step's end and the next step's start (waiting for the next batch) over the epoch time. Usage::

    python benchmarks/bench_dataset.py [--n 8192] [--repeat 3] [--skip-workers]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grain  # noqa: E402
import numpy as np  # noqa: E402

import sporax as ms  # noqa: E402
import sporax.dataset as ds  # noqa: E402
import sporax.dataset.transforms as T  # noqa: E402
import sporax.dataset.vision as vision  # noqa: E402

BATCH = 128
MEAN, STD = 0.1307, 0.3081


class Images:
    """A random-access source of (28x28x1 uint8 image, int64 label)."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        self.y = rng.integers(0, 10, n)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.x)


def numpy_row(row):
    img, label = row
    x = img.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)), np.asarray(label)


def stack(rows):
    return tuple(np.stack(c) for c in zip(*rows))


def time_epoch(make_iter):
    """(start-up seconds, images/s after the first batch) of one epoch."""
    t0 = time.perf_counter()
    it = make_iter()
    first = next(it)
    t1 = time.perf_counter()
    n = len(first[0])
    for b in it:
        n += len(b[0])
    t2 = time.perf_counter()
    if hasattr(it, "close"):
        it.close()
    if hasattr(it, "stop"):
        it.stop()
    return t1 - t0, (n - len(first[0])) / (t2 - t1)


def sporax_iter(src, workers):
    def make():
        d = ds.GeneratorDataset(src, ["image", "label"], shuffle=False)
        d = d.map([vision.Rescale(1 / 255, 0.0), vision.Normalize([MEAN], [STD]), vision.HWC2CHW()], "image",
                  num_parallel_workers=workers, python_multiprocessing=workers > 1)
        return iter(d.batch(BATCH).create_tuple_iterator(num_epochs=1, output_numpy=True))
    return make


def grain_iter(src, workers):
    def make():
        g = grain.MapDataset.source(src).map(numpy_row).batch(BATCH, batch_fn=stack)
        if workers > 1:
            from absl import flags

            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            it_ds = g.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=16)).mp_prefetch(
                grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2))
        else:
            it_ds = g.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=16))
        return iter(it_ds)
    return make


def numpy_iter(src):
    def make():
        def gen():
            for s in range(0, len(src), BATCH):
                yield stack([numpy_row(src[i]) for i in range(s, min(s + BATCH, len(src)))])
        return gen()
    return make


def best(make, repeat):
    runs = [time_epoch(make) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def model_wait_share(src) -> tuple[float, float, int]:
    from sporax import nn
    from sporax.train import Callback, Model

    class MLP(nn.Cell):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.fc1 = nn.Dense(784, 128)
            self.relu = nn.ReLU()
            self.fc2 = nn.Dense(128, 10)

        def construct(self, x):
            return self.fc2(self.relu(self.fc1(self.flatten(x))))

    class Wait(Callback):
        def __init__(self):
            self.wait, self.last_end, self.epoch_t = 0.0, None, 0.0

        def on_train_epoch_begin(self, rc):
            self.wait, self.t0 = 0.0, time.perf_counter()
            self.last_end = self.t0

        def on_train_step_begin(self, rc):
            self.wait += time.perf_counter() - self.last_end

        def on_train_step_end(self, rc):
            self.last_end = time.perf_counter()

        def on_train_epoch_end(self, rc):
            self.epoch_t = time.perf_counter() - self.t0

    ms.set_context(mode=ms.GRAPH_MODE)
    d = ds.GeneratorDataset(src, ["image", "label"], shuffle=True)
    d = d.map([vision.Rescale(1 / 255, 0.0), vision.Normalize([MEAN], [STD]), vision.HWC2CHW()], "image")
    d = d.map(T.TypeCast(ms.int32), "label").batch(BATCH, drop_remainder=True)
    net = MLP()
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                  nn.Momentum(net.trainable_params(), 0.01, 0.9))
    w = Wait()
    model.train(2, d, callbacks=[w])
    return w.wait, w.epoch_t, d.get_dataset_size()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-workers", action="store_true")
    args = ap.parse_args()
    src = Images(args.n)
    print(f"pipeline: {args.n} images 28x28x1 -> Rescale -> Normalize -> HWC2CHW -> batch {BATCH} "
          f"(machine shared with other jobs: figures are noisy)")
    print(f"{'workers':>7} {'sporax img/s':>13} {'grain img/s':>12} {'numpy img/s':>12} {'sporax/grain':>13} "
          f"{'sporax/numpy':>13} {'start-up s (sporax/grain)':>27}")
    np_rate = best(numpy_iter(src), args.repeat)[1]
    for workers in (1, 2):
        if workers > 1 and args.skip_workers:
            continue
        rep = args.repeat if workers == 1 else max(1, args.repeat // 2)
        runs = {"sporax": [], "grain": []}
        for _ in range(rep):  # interleaved, so that load from other jobs hits both alike
            runs["sporax"].append(time_epoch(sporax_iter(src, workers)))
            runs["grain"].append(time_epoch(grain_iter(src, workers)))
        (s_up, s_rate), (g_up, g_rate) = ((min(r[0] for r in v), max(r[1] for r in v)) for v in runs.values())
        print(f"{workers:>7} {s_rate:>13.0f} {g_rate:>12.0f} {np_rate:>12.0f} {s_rate / g_rate:>12.2f}x "
              f"{s_rate / np_rate:>12.2f}x {s_up:>13.2f} / {g_up:<11.2f}")
    wait, epoch_t, steps = model_wait_share(src)
    print(f"Model.train (MLP 784-128-10, GRAPH_MODE, {steps} steps of {BATCH}): epoch {epoch_t * 1000:.0f} ms, "
          f"waiting for data {wait * 1000:.0f} ms = {100 * wait / epoch_t:.1f}% of the epoch")


if __name__ == "__main__":
    main()
