"""Model.train / Model.eval over mindspore.dataset pipelines, and a custom loop over create_tuple_iterator."""

import numpy as np

import sporax as ms
import sporax.dataset as ds
import sporax.dataset.transforms as T
from sporax import nn
from sporax.train import Callback, LossMonitor, Model


class Points:
    """y = x @ w + 0.5 for 4-d inputs; items are (x float64, y float64) as a user's source returns them."""

    def __init__(self, n=48):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n, 4))
        self.y = self.x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.5

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.x)


class Record(Callback):
    def __init__(self):
        self.steps, self.epochs, self.batch_nums, self.first_rows = [], [], [], []

    def on_train_step_end(self, rc):
        p = rc.original_args()
        self.steps.append((p.cur_epoch_num, p.cur_step_num))
        self.batch_nums.append(p.batch_num)

    def on_train_step_begin(self, rc):
        x = rc.original_args().train_dataset_element[0].asnumpy()
        self.first_rows.append(x[0].tobytes())

    def on_train_epoch_end(self, rc):
        self.epochs.append(rc.original_args().cur_step_num)


def pipeline(shuffle=True):
    d = ds.GeneratorDataset(Points(), ["x", "y"], shuffle=shuffle)
    d = d.map(T.TypeCast(ms.float32), "x").map(T.TypeCast(ms.float32), "y")
    return d.batch(8, drop_remainder=True)


def test_model_train_over_generator_dataset_map_batch(capsys):
    net = nn.Dense(4, 1)
    model = Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.05), metrics={"loss": nn.Loss()})
    train = pipeline()
    before = model.eval(pipeline(False))["loss"]
    rec = Record()
    model.train(3, train, callbacks=[rec, LossMonitor(per_print_times=6)])
    assert rec.steps[-1] == (3, 18) and rec.epochs == [6, 12, 18] and set(rec.batch_nums) == {6}
    out = capsys.readouterr().out
    assert "epoch: 1 step: 6, loss is" in out and "epoch: 3 step: 6, loss is" in out
    # each epoch reshuffles: first batches of the epochs differ
    assert len({rec.first_rows[0], rec.first_rows[6], rec.first_rows[12]}) == 3
    after = model.eval(pipeline(False))["loss"]
    assert after < before * 0.5


def test_sink_size_steps_per_epoch():
    net = nn.Dense(4, 1)
    model = Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.01))
    rec = Record()
    model.train(2, pipeline(), callbacks=[rec], dataset_sink_mode=True, sink_size=4)
    assert rec.epochs == [4, 8] and set(rec.batch_nums) == {4}


def test_custom_loop_over_tuple_iterator():
    net = nn.Dense(4, 1)
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    step = nn.TrainOneStepCell(loss_net, nn.SGD(net.trainable_params(), 0.05))
    data = pipeline()
    it = data.create_tuple_iterator(num_epochs=2)
    losses = []
    for _ in range(2):
        for x, y in it:
            assert x.dtype == ms.float32 and x.shape == (8, 4)
            losses.append(float(step(x, y).asnumpy()))
    assert len(losses) == 12 and losses[-1] < losses[0]


def test_progress_bar_counts_the_dataset_size(capsys):
    from sporax.train.callback import ProgressBar

    net = nn.Dense(4, 1)
    model = Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.01))
    model.train(1, pipeline(), callbacks=[ProgressBar(leave=True)])
    err = capsys.readouterr().err
    assert "6/6" in err and "epoch 1/1" in err  # total = get_dataset_size() of the pipeline: 48 rows / 8
