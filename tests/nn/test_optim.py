"""Optimizers: MindSpore 2.10 state names, update formulas (3 steps against numpy), schedules.

Gradients are given by hand (``opt(grads)``), so these tests do not depend on autodiff.
"""

import jax
import numpy as np
import pytest

from sporax import Parameter, Tensor, nn
from sporax.common import _binding

RNG = np.random.default_rng(0)
W0 = RNG.standard_normal((3, 2)).astype(np.float32)
B0 = RNG.standard_normal(3).astype(np.float32)
GRADS = [(RNG.standard_normal((3, 2)).astype(np.float32), RNG.standard_normal(3).astype(np.float32)) for _ in range(3)]


def _params():
    # 'gamma' in the name: MindSpore's default decay filter skips it
    return [Parameter(Tensor(W0), name="w"), Parameter(Tensor(B0), name="gamma")]


def _run(opt, params, steps=3):
    for gw, gb in GRADS[:steps]:
        assert opt((Tensor(gw), Tensor(gb))) is True
    return [p.asnumpy() for p in params]


def _check(got, want, rtol=1e-5, atol=1e-6):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------- numpy references
def _grad(i, g, p, wd, ls, decay):
    g = g.astype(np.float64)
    if decay:
        g = g + wd * ls * p
    return g / ls


def ref_sgd(lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, ls=1.0):
    out = []
    for i, p0 in enumerate((W0, B0)):
        p, acc, first = p0.astype(np.float64), np.zeros(p0.shape), True
        for g in GRADS:
            g = _grad(i, g[i], p, wd, ls, i == 0)
            if momentum > 0:
                acc = g if first else momentum * acc + (1 - dampening) * g
                first = False
                d = g + momentum * acc if nesterov else acc
            else:
                d = g
            p = p - lr * d
        out.append(p)
    return out


def ref_momentum(lrs, momentum, wd=0.0, nesterov=False, ls=1.0):
    out = []
    for i, p0 in enumerate((W0, B0)):
        p, acc = p0.astype(np.float64), np.zeros(p0.shape)
        for t, g in enumerate(GRADS):
            g = _grad(i, g[i], p, wd, ls, i == 0)
            acc = momentum * acc + g
            p = p - lrs[t] * (g + momentum * acc if nesterov else acc)
        out.append(p)
    return out


def ref_adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, nesterov=False, ls=1.0):
    out, states = [], []
    for i, p0 in enumerate((W0, B0)):
        p, m, v = p0.astype(np.float64), np.zeros(p0.shape), np.zeros(p0.shape)
        for t, g in enumerate(GRADS, 1):
            g = _grad(i, g[i], p, wd, ls, i == 0)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            p = p - lr_t * (b1 * m + (1 - b1) * g if nesterov else m) / (np.sqrt(v) + eps)
        out.append(p)
        states.append((m, v))
    return out, states


def ref_adamw(lrs, b1=0.9, b2=0.999, eps=1e-6, wd=0.0, decays=(True, False)):
    out = []
    for i, p0 in enumerate((W0, B0)):
        p, m, v = p0.astype(np.float64), np.zeros(p0.shape), np.zeros(p0.shape)
        for t, g in enumerate(GRADS):
            g = g[i].astype(np.float64)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            update = m / (np.sqrt(v) + eps) + (wd * p if decays[i] else 0)
            p = p - lrs[t] * update
        out.append(p)
    return out


# ---------------------------------------------------------------------------------- state names
class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(2, 3)
        self.bn = nn.BatchNorm1d(3)


def _state_names(opt):
    return [p.name for p in opt.get_parameters()]


def test_state_names_match_mindspore():
    net = _Net()
    user = ["fc.weight", "fc.bias", "bn.gamma", "bn.beta"]
    assert _state_names(nn.Momentum(net.trainable_params(), 0.1, 0.9)) == [
        "global_step", "learning_rate", *user, "momentum", *("moments." + n for n in user)]
    assert _state_names(nn.SGD(net.trainable_params())) == [
        "global_step", "learning_rate", *user, "momentum", *("accum." + n for n in user), *("stat." + n for n in user)]
    assert _state_names(nn.Adam(net.trainable_params())) == [
        "global_step", "learning_rate", *user, "beta1_power", "beta2_power",
        *("moment1." + n for n in user), *("moment2." + n for n in user)]
    assert _state_names(nn.AdamWeightDecay(net.trainable_params())) == [
        "global_step", "learning_rate", *user, *("adam_m." + n for n in user), *("adam_v." + n for n in user)]
    opt = nn.Adam(net.trainable_params())
    assert opt.global_step.shape == (1,) and str(opt.global_step.dtype) == "Int32"
    assert opt.beta1_power.shape == () and float(opt.beta1_power.asnumpy()) == 1.0
    assert opt.moment1[0].shape == (3, 2) and not opt.moment1[0].asnumpy().any()
    sgd = nn.SGD(net.trainable_params())
    np.testing.assert_array_equal(sgd.stat[0].asnumpy(), 1)  # stat starts at ones


def test_schedule_lr_has_no_learning_rate_parameter_and_groups_name_theirs():
    net = _Net()
    names = _state_names(nn.SGD(net.trainable_params(), learning_rate=nn.ExponentialDecayLR(0.1, 0.9, 2)))
    assert "learning_rate" not in names
    groups = [{"params": [net.fc.weight], "lr": 0.5}, {"params": [net.fc.bias]}]
    assert _state_names(nn.Momentum(groups, 0.1, 0.9))[:3] == ["global_step", "learning_rate_group_0", "learning_rate"]


def test_clones_of_frozen_parameters_stay_frozen():
    net = _Net()
    opt = nn.SGD(net.get_parameters())
    frozen = {p.name for p in opt.get_parameters() if not p.requires_grad}
    assert frozen == {n + "bn.moving_" + s for n in ("", "accum.", "stat.") for s in ("mean", "variance")}
    assert opt.decay_flags == (True, True, True, True, False, False)  # 'gamma'/'beta' do not decay


# ---------------------------------------------------------------------------------- update formulas
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(learning_rate=0.1),
        dict(learning_rate=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01, loss_scale=4.0),
        dict(learning_rate=0.1, momentum=0.9, nesterov=True),
    ],
)
def test_sgd_three_steps(kwargs):
    params = _params()
    opt = nn.SGD(params, **kwargs)
    got = _run(opt, params)
    ref = ref_sgd(kwargs["learning_rate"], kwargs.get("momentum", 0.0), kwargs.get("dampening", 0.0),
                  kwargs.get("weight_decay", 0.0), kwargs.get("nesterov", False), kwargs.get("loss_scale", 1.0))
    _check(got, ref)
    assert int(opt.global_step.asnumpy()[0]) == 3
    if kwargs.get("momentum", 0.0) > 0:
        np.testing.assert_array_equal(opt.stat[1].asnumpy(), 0)
    else:  # without momentum MindSpore leaves accum and stat alone
        np.testing.assert_array_equal(opt.stat[1].asnumpy(), 1)
        np.testing.assert_array_equal(opt.accum[1].asnumpy(), 0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_three_steps_with_weight_decay_and_loss_scale(nesterov):
    params = _params()
    opt = nn.Momentum(params, 0.1, 0.9, weight_decay=0.01, loss_scale=2.0, use_nesterov=nesterov)
    _check(_run(opt, params), ref_momentum([0.1] * 3, 0.9, 0.01, nesterov, 2.0))
    # moments after 3 steps: sum of momentum-weighted (decayed, unscaled) gradients
    acc = np.zeros(3)
    for g in GRADS:
        acc = 0.9 * acc + g[1] / 2.0
    np.testing.assert_allclose(opt.moments[1].asnumpy(), acc, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(), dict(weight_decay=0.1, loss_scale=8.0, use_nesterov=True)])
def test_adam_three_steps(kwargs):
    params = _params()
    opt = nn.Adam(params, 0.01, **kwargs)
    got = _run(opt, params)
    ref, states = ref_adam(0.01, wd=kwargs.get("weight_decay", 0.0), nesterov=kwargs.get("use_nesterov", False),
                           ls=kwargs.get("loss_scale", 1.0))
    _check(got, ref)
    np.testing.assert_allclose(opt.beta1_power.asnumpy(), 0.9**3, rtol=1e-6)
    np.testing.assert_allclose(opt.beta2_power.asnumpy(), 0.999**3, rtol=1e-6)
    np.testing.assert_allclose(opt.moment1[0].asnumpy(), states[0][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(opt.moment2[1].asnumpy(), states[1][1], rtol=1e-5, atol=1e-9)


def test_adam_weight_decay_three_steps_skips_gamma_and_beta():
    params = _params()
    opt = nn.AdamWeightDecay(params, 0.01, weight_decay=0.1)
    _check(_run(opt, params), ref_adamw([0.01] * 3, wd=0.1))


def test_adam_weight_decay_group_decay_and_schedule():
    params = _params()
    sched = nn.PolynomialDecayLR(0.1, 0.01, 4, 2.0)
    opt = nn.AdamWeightDecay([{"params": params, "weight_decay": 0.1}], sched)
    lrs = [(0.1 - 0.01) * (1 - t / 4) ** 2 + 0.01 for t in range(3)]
    _check(_run(opt, params), ref_adamw(lrs, wd=0.1, decays=(True, True)), rtol=2e-5)


def test_requires_grad_false_parameters_are_never_updated():
    params = _params()
    params[1].requires_grad = False
    opt = nn.Adam(params, 0.01, weight_decay=0.1)
    got = _run(opt, params)
    np.testing.assert_array_equal(got[1], B0)
    assert not opt.moment1[1].asnumpy().any() and not opt.moment2[1].asnumpy().any()
    _check(got[:1], ref_adam(0.01, wd=0.1)[0][:1])


def test_group_lr_and_weight_decay_and_order_params():
    w, b = _params()
    groups = [{"params": [b]}, {"params": [w], "lr": 0.3, "weight_decay": 0.05}, {"order_params": [w, b]}]
    opt = nn.Momentum(groups, 0.1, 0.9, weight_decay=0.2)
    assert [p.name for p in opt.parameters] == ["w", "gamma"]
    assert opt.decay_flags == (True, True)  # groups decay every member, names notwithstanding
    lrs = opt.get_lr()
    assert [float(x.asnumpy()) for x in lrs] == pytest.approx([0.3, 0.1])
    assert opt.get_lr_parameter(w).name == "learning_rate_group_1"
    got = _run(opt, [w, b])
    # w: lr 0.3, wd 0.05; gamma: lr 0.1, wd 0.2 (group decay applies to 'gamma' too)
    for i, (lr, wd) in enumerate(((0.3, 0.05), (0.1, 0.2))):
        p, acc = (W0, B0)[i].astype(np.float64), 0
        for g in GRADS:
            acc = 0.9 * acc + g[i] + wd * p
            p = p - lr * acc
        np.testing.assert_allclose(got[i], p, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- learning rates
def test_list_learning_rate_is_read_per_step_before_the_increment():
    params = _params()
    opt = nn.Momentum(params, [0.1, 0.05, 0.01], 0.9)
    assert float(opt.get_lr().asnumpy()) == pytest.approx(0.1)
    _check(_run(opt, params), ref_momentum([0.1, 0.05, 0.01], 0.9))
    with pytest.raises(RuntimeError, match="has 3 values"):
        opt((Tensor(GRADS[0][0]), Tensor(GRADS[0][1])))


def test_schedule_learning_rate():
    params = _params()
    opt = nn.Momentum(params, nn.CosineDecayLR(0.01, 0.1, 2), 0.9)
    lrs = [0.01 + 0.045 * (1 + np.cos(np.pi * min(t, 2) / 2)) for t in range(3)]
    _check(_run(opt, params), ref_momentum(lrs, 0.9))
    assert float(opt.get_lr().asnumpy()) == pytest.approx(0.01)


# Values printed by MindSpore 2.10 for global steps 0..6.
_MS_SCHEDULES = [
    (nn.ExponentialDecayLR(0.1, 0.9, 4), [0.1, 0.0974003747, 0.0948683247, 0.0924021080, 0.09, 0.0876603350, 0.0853815004]),
    (nn.ExponentialDecayLR(0.1, 0.9, 4, True), [0.1] * 4 + [0.09] * 3),
    (nn.NaturalExpDecayLR(0.1, 0.9, 4, True), [0.1] * 4 + [0.0027323728] * 3),
    (nn.InverseDecayLR(0.1, 0.9, 4), [0.1, 0.0816326514, 0.0689655170, 0.0597014986, 0.0526315831, 0.0470588245, 0.0425531939]),
    (nn.CosineDecayLR(0.01, 0.1, 4), [0.1, 0.0868198052, 0.055, 0.0231801905, 0.01, 0.01, 0.01]),
    (nn.PolynomialDecayLR(0.1, 0.01, 4, 0.5), [0.1, 0.0879422873, 0.0736396089, 0.055, 0.01, 0.01, 0.01]),
    (nn.PolynomialDecayLR(0.1, 0.01, 4, 2.0, True), [0.1, 0.060625, 0.0325, 0.015625, 0.01, 0.02265625, 0.015625]),
    (nn.WarmUpLR(0.1, 4), [0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1]),
]


@pytest.mark.parametrize("schedule,expected", _MS_SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedules_match_mindspore(schedule, expected):
    got = [float(schedule(Tensor(np.array([i], np.int32))).asnumpy().reshape(())) for i in range(7)]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_dynamic_lr_lists():
    assert nn.piecewise_constant_lr([2, 5], [0.1, 0.05]) == [0.1, 0.1, 0.05, 0.05, 0.05]
    np.testing.assert_allclose(nn.exponential_decay_lr(0.1, 0.9, 6, 2, 1), [0.1, 0.1, 0.09, 0.09, 0.081, 0.081])
    np.testing.assert_allclose(nn.cosine_decay_lr(0.01, 0.1, 6, 2, 2), [0.1, 0.1, 0.055, 0.055, 0.01, 0.01])
    np.testing.assert_allclose(nn.warmup_lr(0.1, 6, 2, 2), [0.0, 0.0, 0.05, 0.05, 0.1, 0.1])
    np.testing.assert_allclose(nn.inverse_decay_lr(0.1, 0.5, 3, 1, 1, True), [0.1, 0.1 / 1.5, 0.05])
    np.testing.assert_allclose(nn.natural_exp_decay_lr(0.1, 0.9, 4, 1, 2, True),
                               [0.1, 0.1, 0.1 * np.exp(-1.8), 0.1 * np.exp(-1.8)])
    np.testing.assert_allclose(nn.polynomial_decay_lr(0.1, 0.01, 3, 1, 2, 1.0), [0.1, 0.055, 0.01])
    with pytest.raises(ValueError, match="same length"):
        nn.piecewise_constant_lr([1], [0.1, 0.2])


# ---------------------------------------------------------------------------------- jit and custom rules
def test_update_is_captured_under_a_jit_binding():
    """Under the engine's jit the optimizer's writes are read back from the binding."""
    params = _params()
    opt = nn.Adam(params, 0.01)
    state = list(opt.get_parameters())

    def step(values, gw, gb):
        with _binding.bind(state, values):
            opt((Tensor._wrap(gw), Tensor._wrap(gb)))
            return _binding.read_values(state)

    jitted = jax.jit(step)
    values = [p._jax() for p in state]
    for gw, gb in GRADS:
        values = jitted(values, gw, gb)
    assert int(np.asarray(values[0])[0]) == 3  # global_step
    names = [p.name for p in state]
    ref, _ = ref_adam(0.01)
    np.testing.assert_allclose(np.asarray(values[names.index("w")]), ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(params[0].asnumpy(), W0)  # eager values untouched by the traced run


def test_custom_rule_compiles_once_for_all_steps():
    traces = []

    def sign_rule(p, g, state, lr, wd, hyper):
        traces.append(1)
        return p - lr * jax.numpy.sign(g), ()

    class SignSGD(nn.Optimizer):
        def construct(self, gradients):
            return self._apply_rule(gradients, sign_rule, ())

    params = _params()
    got = _run(SignSGD(0.5, params), params)
    assert len(traces) == 2  # one trace of the fused update (two parameters), reused for 3 steps
    np.testing.assert_allclose(got[0], W0 - 0.5 * sum(np.sign(g[0]) for g in GRADS), rtol=1e-6)


def test_mindspore_style_gradient_helpers():
    params = _params()
    opt = nn.SGD(params, 0.1, weight_decay=0.5, loss_scale=2.0)
    g = (Tensor(GRADS[0][0]), Tensor(GRADS[0][1]))
    decayed = opt.decay_weight(g)
    np.testing.assert_allclose(decayed[0].asnumpy(), GRADS[0][0] + 0.5 * 2.0 * W0, rtol=1e-6)
    np.testing.assert_allclose(decayed[1].asnumpy(), GRADS[0][1])  # 'gamma' skipped
    np.testing.assert_allclose(opt.scale_grad(g)[1].asnumpy(), GRADS[0][1] / 2.0, rtol=1e-6)
    assert float(opt.get_weight_decay().asnumpy()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- argument errors
def test_argument_errors():
    params = _params()
    with pytest.raises(ValueError, match="'nesterov' is true"):
        nn.SGD(params, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="'momentum'"):
        nn.Momentum(params, 0.1, -0.5)
    with pytest.raises(TypeError, match="'momentum'"):
        nn.Momentum(params, 0.1, 1)
    with pytest.raises(ValueError, match="'beta1'"):
        nn.Adam(params, beta1=1.0)
    with pytest.raises(ValueError, match="'loss_scale'"):
        nn.Adam(params, loss_scale=0.0)
    with pytest.raises(ValueError, match="'weight_decay'"):
        nn.SGD(params, weight_decay=-1.0)
    with pytest.raises(ValueError, match="must not be empty"):
        nn.SGD([])
    with pytest.raises(KeyError, match="keys of a parameter group"):
        nn.SGD([{"params": params, "momentum": 0.1}])
    with pytest.raises(RuntimeError, match="more than one group"):
        nn.SGD([{"params": params}, {"params": params[:1]}])
    opt = nn.SGD(params)
    with pytest.raises(ValueError, match="one gradient per parameter"):
        opt((Tensor(GRADS[0][0]),))
    with pytest.raises(ValueError, match="gradient of 'gamma'"):
        opt((Tensor(GRADS[0][0]), Tensor(np.zeros(4, np.float32))))


def test_group_schedule_mixed_with_fixed_lr_and_sliced_flag_kept():
    w, b = _params()
    w.sliced = True
    groups = [{"params": [w], "lr": nn.ExponentialDecayLR(0.1, 0.5, 1)}, {"params": [b], "lr": [0.2, 0.1, 0.05]}]
    opt = nn.SGD(groups, 0.3)
    assert opt.dynamic_lr and opt.is_group_lr
    names = [p.name for p in opt.get_parameters()]
    assert "learning_rate_group_1" in names and "learning_rate" not in names  # the default lr is unused
    got = _run(opt, [w, b])
    assert w.sliced is True
    np.testing.assert_allclose(got[0], W0 - sum(0.1 * 0.5**t * g[0] for t, g in enumerate(GRADS)), rtol=1e-5)
    np.testing.assert_allclose(got[1], B0 - sum(lr * g[1] for lr, g in zip([0.2, 0.1, 0.05], GRADS)), rtol=1e-5)


def test_adam_amsgrad_keeps_the_running_max_of_v():
    params = _params()
    opt = nn.Adam(params, 0.01, use_amsgrad=True)
    assert [p.name for p in opt.get_parameters()][-2:] == ["vhat.w", "vhat.gamma"]
    got = _run(opt, params)
    p, m, v, vhat = W0.astype(np.float64), 0, 0, 0
    for t, g in enumerate(GRADS, 1):
        m, v = 0.9 * m + 0.1 * g[0], 0.999 * v + 0.001 * g[0] ** 2
        vhat = np.maximum(vhat, v)
        p = p - 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(vhat) + 1e-8)
    np.testing.assert_allclose(got[0], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.vhat[0].asnumpy(), vhat, rtol=1e-5)
    lazy = nn.Adam(_params(), 0.01, use_lazy=True)  # dense gradients: the same rule
    assert "vhat.w" not in [q.name for q in lazy.get_parameters()]
    with pytest.raises(KeyError, match="use_lazy"):
        nn.Adam(_params(), use_fast=True)


# ---------------------------------------------------------------------------------- optax adapter
def test_optax_optimizer_state_names_and_values():
    optax = pytest.importorskip("optax")
    params = _params()
    params[1].requires_grad = False
    opt = nn.OptaxOptimizer(params, optax.adam(0.01))
    names = [p.name for p in opt.get_parameters()]
    assert names[:2] == ["global_step", "learning_rate"]
    assert {"optax.0.count", "optax.0.mu.w", "optax.0.nu.gamma"} <= set(names)
    got = _run(opt, params)
    tx = optax.adam(0.01)
    tree = {"w": W0, "gamma": B0}
    state = tx.init(tree)
    for gw, gb in GRADS:
        updates, state = tx.update({"w": gw, "gamma": gb}, state, tree)
        tree = {"w": tree["w"] + updates["w"], "gamma": B0}
    np.testing.assert_allclose(got[0], tree["w"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got[1], B0)  # frozen
    state_params = {p.name: p for p in opt.optax_state}
    assert int(state_params["optax.0.count"].asnumpy()) == 3
    assert not state_params["optax.0.mu.gamma"].asnumpy().any()  # a frozen parameter's state stays put


def test_optax_optimizer_learning_rate_schedule_and_jit_binding():
    optax = pytest.importorskip("optax")
    params = _params()
    # direction-only transform, negated; the step size comes from sporax's list learning rate
    opt = nn.OptaxOptimizer(params, optax.scale(-1.0), learning_rate=[0.1, 0.2, 0.3], loss_scale=2.0)
    state = list(opt.get_parameters())

    def step(values, gw, gb):
        with _binding.bind(state, values):
            opt((Tensor._wrap(gw), Tensor._wrap(gb)))
            return _binding.read_values(state)

    values, jitted = [p._jax() for p in state], jax.jit(step)
    for gw, gb in GRADS:
        values = jitted(values, gw, gb)
    w = np.asarray(values[[p.name for p in state].index("w")])
    np.testing.assert_allclose(w, W0 - sum(lr * g[0] / 2.0 for lr, g in zip([0.1, 0.2, 0.3], GRADS)), rtol=1e-5)
    with pytest.raises(TypeError, match="GradientTransformation"):
        nn.OptaxOptimizer(_params(), "adam")
