"""``Model``: the high-level train/eval/predict loop over a network, a loss and an optimizer.

``Model(network, loss_fn=None, optimizer=None, metrics=None, eval_network=None,
amp_level='O0')`` builds, as MindSpore does:

- the train network: ``amp.build_train_network(network, optimizer, loss_fn, amp_level,
  loss_scale_manager=..., keep_batchnorm_fp32=...)``, i.e. ``TrainOneStepCell(WithLossCell(network,
  loss_fn), optimizer)`` at O0; at O1/O2/O3 the network computes in float16 (see
  :mod:`sporax.train.amp`), and a loss scale manager that drops overflowing steps (O2's default
  ``DynamicLossScaleManager``) makes it a ``TrainOneStepWithLossScaleCell`` returning
  ``(loss, overflow, scale)``; with no ``loss_fn`` the network returns its loss; with no
  optimizer, ``network`` itself is the train step;
- the eval network: ``eval_network``, or ``WithEvalCell(network, loss_fn)`` whose
  ``(loss, outputs, label)`` feed the metrics (``Loss`` gets the loss, the others
  ``(outputs, label)``).

Datasets are ``mindspore.dataset`` datasets or any re-iterable of batches: ``(data, label)``
tuples/lists of numpy arrays or Tensors. A dataset with ``create_tuple_iterator`` is read through
ONE iterator over all epochs (``num_epochs=epoch``: its workers start once, each epoch reshuffles),
its ``get_dataset_size()`` is ``cb_params.batch_num``; with ``dataset_sink_mode=True`` and
``sink_size > 0`` each epoch is ``sink_size`` steps of an endless stream, as in MindSpore. Each step's
call goes through ``Cell.__call__``, so GRAPH_MODE compiles the whole step once and reuses it.
"""

from __future__ import annotations

import warnings

import numpy as np

from sporax.common._validation import check_bool, check_positive_int, check_str_in, msg
from sporax.common.tensor import Tensor
from sporax.train.callback import CallbackManager, InternalCallbackParam, RunContext
from sporax.train.metrics import Loss, get_metrics

__all__ = ["Model"]

# sporax's own callbacks, left out of the eval hooks inside fit (as MindSpore does for its own)
# (TimeMonitor is kept, as in MindSpore).
_BUILTIN_CALLBACKS = ("ModelCheckpoint", "EarlyStopping", "ReduceLROnPlateau", "History", "LambdaCallback",
                      "LossMonitor", "ProgressBar", "SummaryCollector")


def _to_tensor(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, np.generic, list, int, float)):
        return Tensor(x)
    return x


def _as_step_args(batch) -> tuple:
    if isinstance(batch, dict):
        batch = tuple(batch.values())
    elif not isinstance(batch, (tuple, list)):
        batch = (batch,)
    return tuple(_to_tensor(x) for x in batch)


def _batches(dataset):
    """Iterate one epoch of ``dataset`` as tuples of Tensors."""
    if hasattr(dataset, "create_tuple_iterator"):
        it = dataset.create_tuple_iterator(num_epochs=1)
    else:
        it = iter(dataset)
    for batch in it:
        yield _as_step_args(batch)


class _Feed:
    """The batches of ``epochs`` training epochs, one epoch per :meth:`epoch` call.

    A dataset with ``create_tuple_iterator`` is read through one iterator for all epochs (each
    ``for`` over it is one epoch); with ``sink_size > 0`` every epoch takes the next ``sink_size``
    batches of an endless stream instead. Other iterables are re-iterated each epoch.
    """

    def __init__(self, dataset, epochs: int, sink_size: int = -1) -> None:
        self._dataset, self._sink = dataset, sink_size
        self._it = None
        if hasattr(dataset, "create_tuple_iterator"):
            self._it = dataset.create_tuple_iterator(num_epochs=-1 if sink_size > 0 else epochs)
        self._stream = None

    def _endless(self):
        while True:
            empty = True
            for batch in (self._it if self._it is not None else iter(self._dataset)):
                empty = False
                yield batch
            if empty:
                return

    def epoch(self):
        if self._sink > 0:
            if self._stream is None:
                self._stream = self._endless()
            for _ in range(self._sink):
                batch = next(self._stream, None)
                if batch is None:
                    return
                yield _as_step_args(batch)
            return
        for batch in (self._it if self._it is not None else iter(self._dataset)):
            yield _as_step_args(batch)

    def close(self) -> None:
        stop = getattr(self._it, "stop", None)
        if stop is not None:
            stop()


def _batch_num(dataset) -> int:
    for attr in ("get_dataset_size", "__len__"):
        fn = getattr(dataset, attr, None)
        if fn is not None:
            try:
                return int(fn())
            except TypeError:
                continue
    return 0


class Model:
    """Train, evaluate and predict with a network (see the module docstring)."""

    def __init__(
        self,
        network,
        loss_fn=None,
        optimizer=None,
        metrics=None,
        eval_network=None,
        eval_indexes=None,
        amp_level: str = "O0",
        boost_level: str = "O0",
        **kwargs,
    ) -> None:
        from sporax.nn.cell import Cell

        if not isinstance(network, Cell):
            raise TypeError(msg("Model", "network", "a Cell", type(network).__name__))
        self._network = network
        self._loss_fn = loss_fn
        self._optimizer = optimizer
        from sporax.train import amp

        self._amp_level = amp.check_level(amp_level, boost_level)
        self._boost_level = check_str_in(boost_level, ("O0", "O1", "O2"), "boost_level", "Model")
        if boost_level != "O0":
            warnings.warn(f"Model(boost_level={boost_level!r}): MindSpore's boost algorithms are not applied by "
                          "sporax (O0 behaviour).", stacklevel=2)
        for arg in kwargs:
            if arg not in ("loss_scale_manager", "keep_batchnorm_fp32", "boost_config_dict", "acc_level"):
                raise ValueError("The argument in 'kwargs' should be 'loss_scale_manager' or 'keep_batchnorm_fp32' or "
                                 f"'boost_config_dict' or 'acc_level', but got '{arg}'.")
        if optimizer is None and amp_level != "O0":
            raise ValueError("Auto mixed precision will not work because 'optimizer' is None.Please set amp_level='O0' "
                             "to disable auto mixed precision or set 'optimizer' not be None to use auto mixed "
                             "precision.")
        self._metric_fns = get_metrics(metrics)
        if eval_indexes is not None and (not isinstance(eval_indexes, list) or len(eval_indexes) != 3):
            raise ValueError(msg("Model", "eval_indexes", "a list of 3 ints [loss, outputs, label]", eval_indexes))
        if eval_network is not None and not isinstance(eval_network, Cell):
            raise TypeError(msg("Model", "eval_network", "a Cell", type(eval_network).__name__))
        self._kwargs = kwargs
        self._loss_scale_manager = kwargs.get("loss_scale_manager")
        if self._loss_scale_manager is not None and optimizer is None:
            raise ValueError("The argument 'optimizer' can not be None when set 'loss_scale_manager'.")
        self._train_network = self._build_train_network()
        self._eval_network = eval_network
        self._eval_indexes = eval_indexes
        if eval_network is None and loss_fn is not None:
            from sporax.nn.wrap import WithEvalCell

            self._eval_network = WithEvalCell(network, loss_fn, amp_level in ("O2", "O3", "auto"))
            self._eval_indexes = [0, 1, 2]
        self._predict_network = network

    # ------------------------------------------------------------------ networks
    def _build_train_network(self):
        """``amp.build_train_network`` with this model's level and amp arguments, as MindSpore builds it."""
        from sporax.train.amp import build_train_network

        if self._optimizer is None:
            return self._network
        amp_config = {k: self._kwargs[k] for k in ("loss_scale_manager", "keep_batchnorm_fp32") if k in self._kwargs}
        return build_train_network(self._network, self._optimizer, self._loss_fn, level=self._amp_level,
                                   boost_level=self._boost_level, **amp_config)

    @property
    def train_network(self):
        """The cell run on each training step."""
        return self._train_network

    @property
    def predict_network(self):
        return self._predict_network

    @property
    def eval_network(self):
        return self._eval_network

    # ------------------------------------------------------------------ train
    def train(
        self,
        epoch: int,
        train_dataset,
        callbacks=None,
        dataset_sink_mode: bool = False,
        sink_size: int = -1,
        initial_epoch: int = 0,
    ) -> None:
        """Train for ``epoch`` epochs over ``train_dataset`` (re-iterated each epoch).

        ``dataset_sink_mode=True`` is accepted with a warning; steps always run one batch per
        call (in GRAPH_MODE each call is the compiled step).
        """
        self._check_train_args("Model.train", epoch, dataset_sink_mode, initial_epoch)
        self._train(epoch, train_dataset, callbacks, dataset_sink_mode, sink_size, initial_epoch, None)

    def fit(
        self,
        epoch: int,
        train_dataset,
        valid_dataset=None,
        valid_frequency=1,
        callbacks=None,
        dataset_sink_mode: bool = False,
        valid_dataset_sink_mode: bool = False,
        sink_size: int = -1,
        initial_epoch: int = 0,
    ) -> None:
        """Train as :meth:`train`, evaluating on ``valid_dataset`` after every ``valid_frequency``-th epoch.

        ``valid_frequency`` is an int (every N epochs) or a list of epoch numbers. After each
        validation ``cb_params.metrics`` holds the metrics and ``cb_params.eval_results`` the
        metrics plus ``eval_loss`` (what ``EarlyStopping``/``ReduceLROnPlateau`` monitor); the
        user's callbacks (not the built-in ones other than ``TimeMonitor``) also see the eval hooks.
        """
        self._check_train_args("Model.fit", epoch, dataset_sink_mode, initial_epoch)
        check_bool(valid_dataset_sink_mode, "valid_dataset_sink_mode", "Model.fit")
        if isinstance(valid_frequency, bool) or not isinstance(valid_frequency, (int, list)):
            raise TypeError(msg("Model.fit", "valid_frequency", "an int or a list of ints", valid_frequency))
        if isinstance(valid_frequency, int) and valid_frequency <= 0:
            raise ValueError(msg("Model.fit", "valid_frequency", "a positive int", valid_frequency))
        if valid_dataset is not None and not self._metric_fns:
            raise ValueError("For 'Model.fit', if valid_dataset is not None, the model argument 'metrics' can not be "
                             "None or empty, you should set the argument 'metrics' for model.")
        if valid_dataset is not None and self._eval_network is None:
            raise ValueError("For 'Model.fit', 'loss_fn' or 'eval_network' must be given to Model to validate.")
        valid = (valid_dataset, valid_frequency) if valid_dataset is not None else None
        self._train(epoch, train_dataset, callbacks, dataset_sink_mode, sink_size, initial_epoch, valid)

    def _check_train_args(self, where: str, epoch, dataset_sink_mode, initial_epoch) -> None:
        check_positive_int(epoch, "epoch", where)
        if check_bool(dataset_sink_mode, "dataset_sink_mode", where):
            warnings.warn(f"{where}(dataset_sink_mode=True): sporax feeds one batch per step call; "
                          "each step is still one compiled call in GRAPH_MODE.", stacklevel=3)
        if not isinstance(initial_epoch, int) or isinstance(initial_epoch, bool) or not 0 <= initial_epoch < epoch:
            raise ValueError(msg(where, "initial_epoch", f"an int in [0, {epoch})", initial_epoch))
        if self._optimizer is None and self._loss_fn is not None:
            raise ValueError(f"For '{where}', 'optimizer' should be given when 'loss_fn' is given.")

    def _train(self, epoch, train_dataset, callbacks, dataset_sink_mode, sink_size, initial_epoch, valid) -> None:
        from sporax import context

        if isinstance(sink_size, bool) or not isinstance(sink_size, int) or not (sink_size == -1 or sink_size > 0):
            raise ValueError(msg("Model.train", "sink_size", "-1 (the whole dataset) or an int > 0", sink_size))

        net = self._train_network
        net.set_train(True)
        cbs = CallbackManager(callbacks)
        cb_params = InternalCallbackParam(
            train_network=net,
            network=self._network,
            optimizer=self._optimizer,
            loss_fn=self._loss_fn,
            epoch_num=epoch,
            batch_num=sink_size if dataset_sink_mode and sink_size > 0 else _batch_num(train_dataset),
            cur_epoch_num=initial_epoch,
            cur_step_num=0,
            net_outputs=None,
            train_dataset=train_dataset,
            mode="train",
            dataset_sink_mode=dataset_sink_mode,
            list_callback=cbs,
            parallel_mode=context.get_auto_parallel_context("parallel_mode"),
            device_number=context.get_auto_parallel_context("device_num"),
            sink_size=sink_size,
            loss_scale_manager=self._loss_scale_manager,
        )
        run_context = RunContext(cb_params)
        cbs.on_train_begin(run_context)
        feed = _Feed(train_dataset, epoch - initial_epoch, sink_size if dataset_sink_mode else -1)
        try:
            self._train_epochs(epoch, initial_epoch, feed, net, cbs, cb_params, run_context, valid)
        finally:
            feed.close()
        cbs.on_train_end(run_context)

    def _train_epochs(self, epoch, initial_epoch, feed, net, cbs, cb_params, run_context, valid) -> None:
        lsm = self._loss_scale_manager
        update_scale = lsm is not None and lsm.get_drop_overflow_update()
        for ep in range(initial_epoch, epoch):
            cb_params.cur_epoch_num = ep + 1
            cbs.on_train_epoch_begin(run_context)
            steps = 0
            for batch in feed.epoch():
                cb_params.train_dataset_element = batch
                cbs.on_train_step_begin(run_context)
                outputs = net(*batch)
                cb_params.net_outputs = outputs
                if update_scale:  # (loss, overflow, scale) of a loss-scale cell: keep the manager in step
                    lsm.update_loss_scale(bool(np.all(outputs[1].asnumpy())))
                steps += 1
                cb_params.cur_step_num += 1
                if not cb_params.batch_num:
                    cb_params.batch_num = 0  # unknown length: LossMonitor counts over all steps
                cbs.on_train_step_end(run_context)
                if run_context.get_stop_requested():
                    break
            if not cb_params.batch_num and steps:
                cb_params.batch_num = steps
            if valid is not None and self._should_eval(cb_params.cur_epoch_num, valid[1]):
                self._eval_in_fit(valid[0], cbs, cb_params)
                net.set_train(True)
            cbs.on_train_epoch_end(run_context)
            cb_params.pop("metrics", None)
            cb_params.pop("eval_results", None)
            if run_context.get_stop_requested():
                break

    @staticmethod
    def _should_eval(epoch: int, frequency) -> bool:
        return epoch % frequency == 0 if isinstance(frequency, int) else epoch in frequency

    def _eval_in_fit(self, valid_dataset, cbs: CallbackManager, cb_params) -> None:
        """Validate inside ``fit``, on the training ``cb_params`` (restored afterwards)."""
        eval_cbs = CallbackManager([cb for cb in cbs._callbacks if type(cb).__name__ not in _BUILTIN_CALLBACKS])
        saved = {k: cb_params[k] for k in ("cur_step_num", "batch_num", "mode", "net_outputs", "dataset_sink_mode")}
        cb_params.eval_network = self._eval_network
        cb_params.valid_dataset = valid_dataset
        cb_params.batch_num = _batch_num(valid_dataset)
        cb_params.mode = "eval"
        cb_params.cur_step_num = 0
        metrics, eval_loss = self._eval_loop(valid_dataset, eval_cbs, cb_params)
        cb_params.eval_results = dict(metrics, eval_loss=eval_loss)
        cb_params.update(saved)

    # ------------------------------------------------------------------ eval / predict
    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode: bool = False) -> dict:
        """``{metric name: value}`` over ``valid_dataset`` (one pass)."""
        if self._eval_network is None:
            raise ValueError("For 'Model.eval', 'loss_fn' or 'eval_network' must be given to Model to evaluate.")
        if not self._metric_fns:
            raise ValueError("For 'Model.eval', the model argument 'metrics' can not be None or empty.")
        cbs = CallbackManager(callbacks)
        cb_params = InternalCallbackParam(
            eval_network=self._eval_network,
            network=self._network,
            valid_dataset=valid_dataset,
            metrics=self._metric_fns,
            mode="eval",
            batch_num=_batch_num(valid_dataset),
            cur_step_num=0,
            cur_epoch_num=1,
            epoch_num=1,
            net_outputs=None,
            dataset_sink_mode=dataset_sink_mode,
            list_callback=cbs,
        )
        return self._eval_loop(valid_dataset, cbs, cb_params)[0]

    def _eval_loop(self, valid_dataset, cbs: CallbackManager, cb_params) -> tuple[dict, float | None]:
        """One pass of the eval network: (metrics, mean loss over the batches or None)."""
        net = self._eval_network
        net.set_train(False)
        for m in self._metric_fns.values():
            m.clear()
        eval_loss = Loss()
        loss_index = self._eval_indexes[0] if self._eval_indexes is not None else None
        run_context = RunContext(cb_params)
        cbs.on_eval_begin(run_context)
        cbs.on_eval_epoch_begin(run_context)
        for batch in _batches(valid_dataset):
            cb_params.eval_dataset_element = batch
            cbs.on_eval_step_begin(run_context)
            outputs = net(*batch)
            cb_params.net_outputs = outputs
            cb_params.cur_step_num += 1
            self._update_metrics(outputs)
            if loss_index is not None and isinstance(outputs, tuple):
                eval_loss.update(outputs[loss_index])
            cbs.on_eval_step_end(run_context)
            if run_context.get_stop_requested():
                break
        result = {name: m.eval() for name, m in self._metric_fns.items()}
        cb_params.metrics = result
        cbs.on_eval_epoch_end(run_context)
        cbs.on_eval_end(run_context)
        return result, (eval_loss.eval() if eval_loss._total_num else None)

    def _update_metrics(self, outputs) -> None:
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        for m in self._metric_fns.values():
            if self._eval_indexes is not None:
                li, oi, yi = self._eval_indexes
                if isinstance(m, Loss):
                    m.update(outputs[li])
                else:
                    m.update(outputs[oi], outputs[yi])
            elif m.indexes is not None:
                m.update(*(outputs[i] for i in m.indexes))
            else:
                m.update(*outputs)

    def predict(self, *predict_data):
        """The network's output on ``predict_data`` (inference mode)."""
        net = self._predict_network
        net.set_train(False)
        return net(*(_to_tensor(x) for x in predict_data))
