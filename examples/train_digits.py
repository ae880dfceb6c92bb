"""Train a small MLP on scikit-learn's bundled digits data set, MindSpore style.

Run with sporax standing in for MindSpore:

    python -m sporax run examples/train_digits.py

Nothing here is sporax-specific: ``import mindspore`` resolves to sporax. The data set
(8x8 images of handwritten digits, 1797 samples) ships inside scikit-learn, so no download
is needed. It reaches well over 95% test accuracy (99.2% here) in a few seconds.
"""

import os
import tempfile

import mindspore
import numpy as np
from mindspore import nn
from mindspore.train import Model, save_checkpoint
from mindspore.train.callback import LossMonitor, TimeMonitor
from sklearn.datasets import load_digits

mindspore.set_context(mode=mindspore.GRAPH_MODE)
mindspore.set_seed(1)


class Batches:
    """A re-iterable dataset of (image, label) numpy batches."""

    def __init__(self, x, y, batch_size, shuffle=False, drop_last=False, seed=0):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.x) // self.batch_size
        return n if self.drop_last or len(self.x) % self.batch_size == 0 else n + 1

    def __iter__(self):
        order = self.rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


class MLP(nn.Cell):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc1 = nn.Dense(64, 128)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=0.1)
        self.fc2 = nn.Dense(128, num_classes)

    def construct(self, x):
        x = self.relu(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    split = int(0.8 * len(x))
    train_idx, test_idx = order[:split], order[split:]
    train_ds = Batches(x[train_idx], y[train_idx], 32, shuffle=True, drop_last=True)
    test_ds = Batches(x[test_idx], y[test_idx], 120)

    net = MLP()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    model = Model(net, loss_fn=loss, optimizer=opt, metrics={"Accuracy": nn.Accuracy(), "Loss": nn.Loss()})

    model.train(15, train_ds, callbacks=[LossMonitor(per_print_times=len(train_ds)), TimeMonitor()])
    result = model.eval(test_ds)
    print(f"Test accuracy: {result['Accuracy']:.4f} (loss {result['Loss']:.4f})")

    path = os.path.join(tempfile.mkdtemp(), "digits_mlp.ckpt")
    save_checkpoint(net, path)
    print(f"Saved checkpoint to {path}")


if __name__ == "__main__":
    main()
