"""``ModelTrainer``: a ``train_fn`` that trains the client's Cell with ``sporax.train.Model`` on a dataset."""

from __future__ import annotations

from collections.abc import Callable

from sporax.fl.client import proximal_term
from sporax.nn.cell import Cell

__all__ = ["ModelTrainer"]


class _ProximalLoss(Cell):
    """``loss_fn(net(data), label) + proximal_term(net)``: FedProx's local objective."""

    def __init__(self, net, loss_fn) -> None:
        super().__init__(auto_prefix=False)  # the parameters keep their names
        self._net = net
        self._loss_fn = loss_fn

    def construct(self, data, label):
        return self._loss_fn(self._net(data), label) + proximal_term(self._net)


class _Counted:
    """A re-iterable view of a dataset that counts the examples of its first full pass."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.examples = None

    def __len__(self) -> int:
        for attr in ("get_dataset_size", "__len__"):
            fn = getattr(self.dataset, attr, None)
            if fn is not None:
                return int(fn())
        raise TypeError("dataset without a size")

    def __iter__(self):
        if hasattr(self.dataset, "create_tuple_iterator"):
            batches = self.dataset.create_tuple_iterator(num_epochs=1)
        else:
            batches = iter(self.dataset)
        count = 0
        for batch in batches:
            first = batch[0] if isinstance(batch, (tuple, list)) else next(iter(batch.values()), None) \
                if isinstance(batch, dict) else batch
            count += int(first.shape[0]) if getattr(first, "shape", ()) else 1
            yield batch
        if self.examples is None:
            self.examples = count


class ModelTrainer:
    """Local training with ``Model(net, loss_fn, optimizer_fn(net.trainable_params()))``.

    ``trainer(net, dataset, server_round)`` trains ``epochs`` epochs over ``dataset`` (any
    dataset ``Model.train`` takes: batches of ``(data, label)``) and returns the number of
    examples of one epoch. Under FedProx the loss gets the proximal term. A fresh optimizer
    is built each round (its state is local to the round, as usual in federated learning).

    >>> train_fn = ModelTrainer(nn.MSELoss(), lambda params: nn.SGD(params, 0.1))   # doctest: +SKIP
    >>> sporax.fl.simulate(make_net, train_fn, [ds0, ds1], num_rounds=3)           # doctest: +SKIP
    """

    def __init__(self, loss_fn, optimizer_fn: Callable, epochs: int = 1, callbacks=None) -> None:
        from sporax.common._validation import check_positive_int

        if not callable(loss_fn):
            raise TypeError(f"For 'ModelTrainer', the 'loss_fn' should be a loss Cell or function, but got {loss_fn!r}.")
        if not callable(optimizer_fn):
            raise TypeError("For 'ModelTrainer', the 'optimizer_fn' should be a callable params -> optimizer, "
                            f"but got {optimizer_fn!r}.")
        self.loss_fn = loss_fn
        self.optimizer_fn = optimizer_fn
        self.epochs = check_positive_int(epochs, "epochs", "ModelTrainer")
        self.callbacks = callbacks

    def __call__(self, net, dataset, server_round: int) -> int:
        from sporax.train.model import Model

        optimizer = self.optimizer_fn(net.trainable_params())
        data = _Counted(dataset)
        model = Model(_ProximalLoss(net, self.loss_fn), optimizer=optimizer)
        model.train(self.epochs, data, callbacks=self.callbacks)
        return int(data.examples or 0)
