"""Optimizers after three steps against MindSpore 2.10: every Parameter they hold, by name and value.

The goldens (``fixtures/optim_golden.npz``) store each optimizer's full parameter set (the
checkpoint key set) after three steps on fixed gradients; ``Lamb`` and ``LARS`` have no CPU
kernel in MindSpore 2.10 and are checked against their formulas in numpy instead.
"""

import os

import numpy as np
import pytest

from sporax import Parameter, Tensor, nn

G = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "optim_golden.npz"))
IN = {k.split("::", 1)[1]: G[k] for k in G.files if k.startswith("input::")}


def params():
    return [Parameter(Tensor(IN["w"].copy()), name="w"), Parameter(Tensor(IN["beta"].copy()), name="beta")]


def grads(i):
    return (Tensor(IN[f"gw{i}"]), Tensor(IN[f"gb{i}"]))


def golden(cid) -> dict:
    pre = cid + "::"
    return {k[len(pre):]: G[k] for k in G.files if k.startswith(pre) and not k.endswith("::lrs")}


def state(opt, ps) -> dict:
    out = {p.name: p.asnumpy() for _, p in opt.parameters_and_names()}
    out.update({p.name: p.asnumpy() for p in ps})
    return out


def run(make, steps=3):
    ps = params()
    opt = make(ps)
    for i in range(steps):
        opt(grads(i))
    return opt, ps


def check(cid, opt, ps, tol=2e-5):
    want, got = golden(cid), state(opt, ps)
    assert sorted(got) == sorted(want), cid
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, (cid, k)
        np.testing.assert_allclose(got[k], v, rtol=tol, atol=tol, err_msg=f"{cid}: {k}")


NN_CASES = {
    "RMSProp": lambda p: nn.RMSProp(p, learning_rate=0.01, decay=0.9, momentum=0.5, epsilon=1e-6),
    "RMSProp/centered_wd": lambda p: nn.RMSProp(p, learning_rate=0.01, momentum=0.3, centered=True,
                                                weight_decay=0.01),
    "Adagrad": lambda p: nn.Adagrad(p, accum=0.2, learning_rate=0.05),
    "Adagrad/wd_ls": lambda p: nn.Adagrad(p, learning_rate=0.05, weight_decay=0.01, loss_scale=2.0),
    "ProximalAdagrad": lambda p: nn.ProximalAdagrad(p, accum=0.2, learning_rate=0.05, l1=0.01, l2=0.02),
}


@pytest.mark.parametrize("cid", list(NN_CASES))
def test_nn_optimizers_match_mindspore(cid):
    opt, ps = run(NN_CASES[cid])
    check(cid, opt, ps)


def _norm(a):
    return np.sqrt((a.astype(np.float64) ** 2).sum())


def test_lamb_follows_its_formula_and_state_names():
    ps = params()
    opt = nn.Lamb(ps, learning_rate=0.01, weight_decay=0.05)
    w = {p.name: p.asnumpy().astype(np.float64) for p in ps}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    for t in range(3):
        opt(grads(t))
        for name, g in zip(("w", "beta"), grads(t)):
            g = g.asnumpy().astype(np.float64)
            m[name] = 0.9 * m[name] + 0.1 * g
            v2[name] = 0.999 * v2[name] + 0.001 * g * g
            r = (m[name] / (1 - 0.9 ** (t + 1))) / (np.sqrt(v2[name] / (1 - 0.999 ** (t + 1))) + 1e-6)
            if name != "beta":  # 'beta' parameters do not decay
                r = r + 0.05 * w[name]
            w[name] = w[name] - 0.01 * (_norm(w[name]) / _norm(r)) * r
    for p in ps:
        np.testing.assert_allclose(p.asnumpy(), w[p.name], rtol=1e-5, atol=1e-6)
    assert sorted(n.name for _, n in opt.parameters_and_names()) == sorted(
        ["w", "beta", "global_step", "learning_rate", "lamb_m.w", "lamb_m.beta", "lamb_v.w", "lamb_v.beta"])


def test_ftrl_state_names_and_formula():
    # MindSpore 2.10's CPU ApplyFtrl gives weights that do not follow its documented formula even
    # from its own final state (checked in the golden generator's data); sporax follows the formula.
    opt, ps = run(lambda p: nn.FTRL(p, learning_rate=0.05, l1=0.01, l2=0.02))
    want, got = golden("FTRL"), state(opt, ps)
    assert sorted(got) == sorted(want)
    for k in ("moments.w", "moments.beta", "global_step", "learning_rate"):
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5)
    for name in ("w", "beta"):
        w = IN[name].astype(np.float64)
        acc, lin = np.full_like(w, 0.1), np.zeros_like(w)
        for i in range(3):
            g = IN[("gw" if name == "w" else "gb") + str(i)].astype(np.float64)
            acc_new = acc + g * g
            lin = lin + g - (np.sqrt(acc_new) - np.sqrt(acc)) / 0.05 * w
            w = np.where(np.abs(lin) > 0.01, (np.sign(lin) * 0.01 - lin) / (np.sqrt(acc_new) / 0.05 + 0.04), 0.0)
            acc = acc_new
        np.testing.assert_allclose(got[name], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got["linear." + name], lin, rtol=1e-4, atol=1e-5)


def test_lars_scales_the_wrapped_optimizers_gradients():
    ps = params()
    inner = nn.Momentum(ps, 0.1, 0.9, weight_decay=0.01)
    opt = nn.LARS(inner, lars_filter=lambda p: p.name != "beta")
    opt(grads(0))
    w0, g0 = IN["w"].astype(np.float64), IN["gw0"].astype(np.float64)
    ratio = 0.001 * _norm(w0) / (_norm(g0) + 0.01 * _norm(w0) + 1e-5)
    np.testing.assert_allclose(ps[0].asnumpy(), w0 - 0.1 * ratio * (g0 + 0.01 * w0), rtol=1e-5)
    np.testing.assert_allclose(ps[1].asnumpy(), IN["beta"] - 0.1 * IN["gb0"], rtol=1e-5)  # filtered: plain step
    assert {p.name for _, p in opt.parameters_and_names()} == {p.name for _, p in inner.parameters_and_names()}


def test_optimizer_argument_errors():
    with pytest.raises(TypeError, match="'decay'"):
        nn.RMSProp(params(), decay=1)
    with pytest.raises(ValueError, match="'epsilon'"):
        nn.RMSProp(params(), epsilon=0.0)
    with pytest.raises(ValueError, match="dynamic learning rate"):
        nn.FTRL(params(), learning_rate=[0.1, 0.2])
    with pytest.raises(ValueError, match="'l1'"):
        nn.ProximalAdagrad(params(), l1=-1.0)
    with pytest.raises(TypeError, match="'optimizer'"):
        nn.LARS(params())
