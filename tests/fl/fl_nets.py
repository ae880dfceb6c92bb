"""Small networks and training functions shared by the federated tests."""

import numpy as np

from sporax import Parameter, Tensor, nn


class Flags(nn.Cell):
    """One parameter per (push, pull, requires_aggr) combination asked for, plus a shared one."""

    def __init__(self, combos=(), extra=None):
        super().__init__()
        self.shared = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="shared")
        self.shared.set_param_fl(push_to_server=True, pull_from_server=True)
        self.names = []
        for push, pull, aggr in combos:
            name = f"p_{int(push)}{int(pull)}{int(aggr)}"
            p = Parameter(Tensor(np.zeros((4,), np.float32)), name=name)
            p.set_param_fl(push_to_server=push, pull_from_server=pull, requires_aggr=aggr)
            setattr(self, name, p)
            self.names.append(name)
        for name, (value, flags) in (extra or {}).items():
            p = Parameter(Tensor(value), name=name, requires_grad=False)
            p.set_param_fl(**flags)
            setattr(self, name, p)

    def construct(self, x):
        return x


def add_train(net, data, server_round):
    """Every float parameter += the client's step; returns the client's example count."""
    step, count = data
    for _, p in net.parameters_and_names():
        if p.dtype in (Tensor(np.float32(0)).dtype,):
            p.set_data(Tensor(p.asnumpy() + np.float32(step)))
    return count
