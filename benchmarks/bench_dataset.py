"""mindspore.dataset pipeline throughput against the same pipeline in Grain directly and in plain numpy,
and the share of a ``Model.train`` epoch spent waiting for data. One run, side by side.

Pipeline: a random-access source of 28x28x1 uint8 images -> Rescale(1/255) -> Normalize(0.1307,
0.3081) -> HWC2CHW -> batch 128, read for one epoch as numpy batches:

* sporax      ``GeneratorDataset(...).map([...], num_parallel_workers=W).batch(128)`` (the maps run
              inside the batch, vectorized: see ``sporax.dataset._graph.FusedBatch``)
* sporax/row  the same with a Python identity callable added to the map: transforms row by row
* grain       ``grain.MapDataset.source(...).map(f).batch(128)`` with the same numpy ops per row, as
              the Grain docs write a pipeline; W=1: ``to_iter_dataset`` with one read thread, W=2:
              ``mp_prefetch`` with 2 worker processes (what sporax builds for
              ``num_parallel_workers=2, python_multiprocessing=True``)
* grain/batch ``grain.MapDataset.source(...).batch(128).map(g)``: the same ops once per batch, the
              fastest way to write it in Grain (a fair upper reference for sporax's vectorized path)
  (the grain rows read through ``MapDataset.source``, which accounts each read's bytes with a pytree
  walk; sporax's leaf source does not: part of sporax's lead, see ``sporax.dataset.sources.RowSource``)
* numpy       a Python loop over the rows, ops in numpy, ``np.stack`` per batch (one process)

Throughput is that of a second epoch read by the same iterator (worker processes started and
warm; start-up, to the end of the first epoch, is reported separately), best of ``--repeat``, the variants interleaved so that load from other jobs hits all alike. The
Model.train figure trains a 784-128-10 MLP (GRAPH_MODE) on the same pipeline (shuffled, +
TypeCast of the labels) and reports, for the second epoch, the time between one step's end and
the next step's start (waiting for the next batch; each step's result awaited at its end, as
JAX dispatches it asynchronously) over the epoch time, next to the time the
pipeline alone takes for an epoch and the time of the steps alone. Usage::

    python benchmarks/bench_dataset.py [--n 8192] [--repeat 3] [--skip-workers]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grain  # noqa: E402
import jax  # noqa: E402
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


def numpy_batch(batch):
    img, label = batch
    x = img.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), label


def time_epoch(make_iter, warm: int):
    """(start-up seconds, images/s) of an epoch read after ``warm`` batches of an earlier one (so
    that worker processes are all up and running)."""
    t0 = time.perf_counter()
    it = make_iter()
    for _ in range(warm):
        next(it)
    t1 = time.perf_counter()
    n = 0
    for b in it:
        n += len(b[0])
    t2 = time.perf_counter()
    for stop in ("close", "stop"):
        if hasattr(it, stop):
            getattr(it, stop)()
    return t1 - t0, n / (t2 - t1)


class _Epochs2:
    """Both epochs of one sporax iterator (each ``for`` over it is one epoch), as one stream."""

    def __init__(self, it) -> None:
        self.it = it
        self._gen = (b for _ in range(2) for b in it)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def stop(self) -> None:
        self.it.stop()


def identity(x):
    return x


def sporax_iter(src, workers, per_row=False):
    def make():
        d = ds.GeneratorDataset(src, ["image", "label"], shuffle=False)
        ops = [vision.Rescale(1 / 255, 0.0), vision.Normalize([MEAN], [STD]), vision.HWC2CHW()]
        d = d.map(ops + [identity] if per_row else ops, "image", num_parallel_workers=workers,
                  python_multiprocessing=workers > 1)
        it = d.batch(BATCH).create_tuple_iterator(num_epochs=2, output_numpy=True)
        return _Epochs2(it)
    return make


def grain_iter(src, workers, per_batch=False):
    def make():
        if per_batch:
            g = grain.MapDataset.source(src).batch(BATCH, batch_fn=stack).map(numpy_batch)
        else:
            g = grain.MapDataset.source(src).map(numpy_row).batch(BATCH, batch_fn=stack)
        g = g.repeat(2)  # two epochs: the first warms up
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
            for _ in range(2):
                for s in range(0, len(src), BATCH):
                    yield stack([numpy_row(src[i]) for i in range(s, min(s + BATCH, len(src)))])
        return gen()
    return make


def best(make, repeat):
    runs = [time_epoch(make) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def model_wait_share(src, repeat: int) -> dict:
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
            # JAX dispatches the step asynchronously: wait for its result, so that the gap to the
            # next step's start is time spent getting data, not the step still computing.
            jax.block_until_ready(rc.original_args().net_outputs)
            self.last_end = time.perf_counter()

        def on_train_epoch_end(self, rc):
            self.epoch_t = time.perf_counter() - self.t0

    def pipeline():
        d = ds.GeneratorDataset(src, ["image", "label"], shuffle=True)
        d = d.map([vision.Rescale(1 / 255, 0.0), vision.Normalize([MEAN], [STD]), vision.HWC2CHW()], "image")
        return d.map(T.TypeCast(ms.int32), "label").batch(BATCH, drop_remainder=True)

    ms.set_context(mode=ms.GRAPH_MODE)
    net = MLP()
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                  nn.Momentum(net.trainable_params(), 0.01, 0.9))
    out = {"wait": [], "epoch": [], "data": [], "steps": []}
    batches = [(ms.Tensor(x), ms.Tensor(y)) for x, y in pipeline().create_tuple_iterator(num_epochs=1)]
    train_step = model._train_network if hasattr(model, "_train_network") else None
    for _ in range(repeat):  # interleaved: the epoch, the pipeline alone, the steps alone
        d, w = pipeline(), Wait()
        model.train(2, d, callbacks=[w])
        out["wait"].append(w.wait)
        out["epoch"].append(w.epoch_t)
        t0 = time.perf_counter()
        for _ in d.create_tuple_iterator(num_epochs=1):
            pass
        out["data"].append(time.perf_counter() - t0)
        if train_step is not None:
            t0 = time.perf_counter()
            for x, y in batches:
                loss = train_step(x, y)
            loss.asnumpy()
            out["steps"].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in out.items() if v}
    i = out["epoch"].index(best["epoch"])
    best["share"] = out["wait"][i] / out["epoch"][i]
    best["wait"], best["n"] = out["wait"][i], len(batches)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-workers", action="store_true")
    args = ap.parse_args()
    src = Images(args.n)
    print(f"pipeline: {args.n} images 28x28x1 -> Rescale -> Normalize -> HWC2CHW -> batch {BATCH} "
          f"(machine shared with other jobs: figures are noisy; ratios are of interleaved runs)")
    print(f"{'workers':>7} {'sporax':>8} {'sporax/row':>10} {'grain':>8} {'grain/batch':>11} {'numpy':>8}  "
          f"{'sporax/grain':>12} {'row/grain':>9} {'sporax/grain-batch':>18}  first epoch s (sporax/grain)")
    for workers in (1, 2):
        if workers > 1 and args.skip_workers:
            continue
        rep = args.repeat if workers == 1 else max(1, args.repeat // 2)
        makers = {"sporax": sporax_iter(src, workers), "row": sporax_iter(src, workers, per_row=True),
                  "grain": grain_iter(src, workers), "gbatch": grain_iter(src, workers, per_batch=True)}
        if workers == 1:
            makers["numpy"] = numpy_iter(src)
        runs = {k: [] for k in makers}
        for _ in range(rep):  # interleaved, so that load from other jobs hits all alike
            for k, make in makers.items():
                runs[k].append(time_epoch(make, -(-args.n // BATCH)))
        up = {k: min(r[0] for r in v) for k, v in runs.items()}
        rate = {k: max(r[1] for r in v) for k, v in runs.items()}
        np_rate = f"{rate['numpy']:>8.0f}" if "numpy" in rate else f"{'-':>8}"
        print(f"{workers:>7} {rate['sporax']:>8.0f} {rate['row']:>10.0f} {rate['grain']:>8.0f} {rate['gbatch']:>11.0f} "
              f"{np_rate}  {rate['sporax'] / rate['grain']:>11.2f}x {rate['row'] / rate['grain']:>8.2f}x "
              f"{rate['sporax'] / rate['gbatch']:>17.2f}x  {up['sporax']:.2f} / {up['grain']:.2f}")
    r = model_wait_share(src, args.repeat)
    steps = f", the {r['n']} steps alone {r['steps'] * 1000:.0f} ms" if "steps" in r else ""
    print(f"Model.train (MLP 784-128-10, GRAPH_MODE, {r['n']} steps of {BATCH}): epoch {r['epoch'] * 1000:.0f} ms, "
          f"waiting for data {r['wait'] * 1000:.0f} ms = {100 * r['share']:.1f}% of the epoch; the pipeline alone "
          f"{r['data'] * 1000:.0f} ms{steps}")


if __name__ == "__main__":
    main()
