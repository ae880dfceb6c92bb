"""``experimental.optim`` optimizers and schedulers after three steps against MindSpore 2.10."""

import numpy as np
import pytest
from test_optim_golden import IN, G, golden, grads, params

import sporax as ms
from sporax.experimental import optim
from sporax.experimental.optim import lr_scheduler

X_CASES = {
    "x.Adam": lambda p: optim.Adam(p, lr=0.01),
    "x.Adam/amsgrad_wd": lambda p: optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True),
    "x.AdamW": lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "x.AdamW/amsgrad": lambda p: optim.AdamW(p, lr=0.01, amsgrad=True),
    "x.SGD": lambda p: optim.SGD(p, lr=0.1),
    "x.SGD/momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "x.SGD/nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "x.Adagrad": lambda p: optim.Adagrad(p, lr=0.05),
    "x.Adagrad/decay_wd_init": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.1, weight_decay=0.01,
                                                       initial_accumulator_value=0.2, eps=1e-6),
    "x.Adagrad/maximize": lambda p: optim.Adagrad(p, lr=0.05, maximize=True),
    "x.RMSprop": lambda p: optim.RMSprop(p, lr=0.01),
    "x.RMSprop/momentum_wd": lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01),
    "x.RMSprop/centered": lambda p: optim.RMSprop(p, lr=0.01, centered=True, eps=1e-6),
    "x.RMSprop/centered_momentum_max": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.3, centered=True,
                                                               maximize=True),
    "x.Adadelta": lambda p: optim.Adadelta(p, lr=0.5, weight_decay=0.01),
    "x.Adamax": lambda p: optim.Adamax(p, lr=0.01, weight_decay=0.01),
    "x.NAdam": lambda p: optim.NAdam(p, lr=0.01, weight_decay=0.01),
    "x.RAdam": lambda p: optim.RAdam(p, lr=0.01),
    "x.RAdam/rectified": lambda p: optim.RAdam(p, lr=0.01, betas=(0.9, 0.5)),
    "x.Rprop": lambda p: optim.Rprop(p, lr=0.01),
    "x.Rprop/max_clip": lambda p: optim.Rprop(p, lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-3, 0.012), maximize=True),
    "x.ASGD": lambda p: optim.ASGD(p, lr=0.05, lambd=0.01, t0=1.0, weight_decay=0.01),
}
SCHED = {
    "sched.StepLR": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "sched.ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8),
    "sched.CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.001),
    "sched.LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lr_lambda=lambda epoch: 1.0 / (epoch + 1)),
}


# MindSpore keeps these in plain Python lists, outside the Cell's parameters (so outside its checkpoints);
# sporax registers them so compiled steps carry them (a sporax checkpoint has these extra keys).
_UNREGISTERED_IN_MINDSPORE = ("learning_rate_group", "mu_product_", "mu_", "eta_")


def _state(opt, ps):
    out = {p.name: p.asnumpy() for _, p in opt.parameters_and_names() if not p.name.startswith(_UNREGISTERED_IN_MINDSPORE)}
    out.update({p.name: p.asnumpy() for p in ps})
    return out


def _check(cid, opt, ps):
    want, got = golden(cid), _state(opt, ps)
    assert sorted(got) == sorted(want), cid
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, (cid, k)
        np.testing.assert_allclose(got[k], v, rtol=2e-5, atol=2e-6, err_msg=f"{cid}: {k}")


@pytest.mark.parametrize("cid", list(X_CASES))
def test_experimental_optimizers_match_mindspore(cid):
    ps = params()
    opt = X_CASES[cid](ps)
    for i in range(3):
        opt(grads(i))
    _check(cid, opt, ps)


@pytest.mark.parametrize("cid", list(SCHED))
def test_schedulers_match_mindspore(cid):
    ps = params()
    opt = optim.SGD(ps, lr=0.1)
    sched = SCHED[cid](opt)
    lrs = []
    for i in range(3):
        opt(grads(i))
        sched.step()
        lrs.append(sched.get_last_lr())
    np.testing.assert_allclose(np.array(lrs), G[f"{cid}::lrs"], rtol=1e-6)
    _check(cid, opt, ps)


def test_scheduler_reaches_a_compiled_step():
    ps = params()
    opt = optim.SGD(ps, lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @ms.jit
    def step(gw, gb):
        return opt((gw, gb))

    w0 = ps[0].asnumpy()
    step(*grads(0))
    np.testing.assert_allclose(ps[0].asnumpy(), w0 - 0.1 * IN["gw0"], rtol=1e-6)
    sched.step()
    w1 = ps[0].asnumpy()
    step(*grads(1))
    np.testing.assert_allclose(ps[0].asnumpy(), w1 - 0.05 * IN["gw1"], rtol=1e-6)


def test_param_groups_and_errors():
    ps = params()
    opt = optim.Adam([{"params": [ps[0]], "lr": 0.5}, {"params": [ps[1]]}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01]
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam(params(), lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta"):
        optim.AdamW(params(), betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params(), lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="'optimizer'"):
        lr_scheduler.StepLR(object(), 2)


def test_mindspore_import_path():
    from sporax import compat

    compat.install()
    try:
        from mindspore.experimental import optim as xo
        from mindspore.experimental.optim.lr_scheduler import StepLR

        assert xo.AdamW is optim.AdamW and StepLR is lr_scheduler.StepLR
    finally:
        compat.uninstall()


def test_adagrad_rmsprop_errors_as_mindspore():
    # MindSpore 2.10: ValueError "For Adagrad, the lr must be greater than 0.0, but got 0.0." etc.
    with pytest.raises(ValueError, match="For Adagrad, the lr must be greater than 0.0, but got 0.0"):
        optim.Adagrad(params(), lr=0.0)
    with pytest.raises(ValueError, match="the initial_accumulator_value must be greater than or equal to 0.0"):
        optim.Adagrad(params(), initial_accumulator_value=-0.1)
    with pytest.raises(ValueError, match="For RMSprop, the momentum must be greater than or equal to 0.0"):
        optim.RMSprop(params(), momentum=-1.0)
    with pytest.raises(ValueError, match="For RMSprop, the eps must be greater than 0.0"):
        optim.RMSprop(params(), eps=0.0)
    optim.RMSprop(params(), centered=1)  # MindSpore 2.10 does not check it either


def test_adagrad_rmsprop_compiled_and_grouped():
    ps = params()
    opt = optim.RMSprop([{"params": [ps[0]], "lr": 0.02}, {"params": [ps[1]], "momentum": 0.5}], lr=0.01)
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[0]["momentum"] == 0.0

    @ms.jit
    def step(gw, gb):
        return opt((gw, gb))

    step(*grads(0))
    g = IN["gw0"]
    ms_ = 0.01 * g * g
    np.testing.assert_allclose(ps[0].asnumpy(), IN["w"] - 0.02 * g / (np.sqrt(ms_) + 1e-8), rtol=1e-5)
    ada = optim.Adagrad(params(), lr=0.05, lr_decay=0.5)
    ada(grads(0))
    ada(grads(1))
    assert int(ada.step_t.asnumpy()) == 2


def test_scalar_state_optimizers_compiled_match_eager():
    for make in (lambda p: optim.NAdam(p, lr=0.01), lambda p: optim.ASGD(p, lr=0.05, t0=1.0)):
        eager_ps, jit_ps = params(), params()
        eager, compiled = make(eager_ps), make(jit_ps)

        @ms.jit
        def step(gw, gb, opt=compiled):
            return opt((gw, gb))

        for i in range(3):
            eager(grads(i))
            step(*grads(i))
        for a, b in zip(eager_ps, jit_ps):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)


def test_more_optimizer_errors_as_mindspore():
    with pytest.raises(ValueError, match="rho"):
        optim.Adadelta(params(), rho=1.5)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        optim.Adamax(params(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"etas\[1\] must be greater than 1.0"):
        optim.Rprop(params(), etas=(0.5, 1.0))
    with pytest.raises(TypeError, match="lambd must be float"):
        optim.ASGD(params(), lambd=1)
