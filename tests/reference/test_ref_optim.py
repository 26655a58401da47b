"""Reference optimizer rules against a direct float64 transcription of docs/architecture.md."""
import numpy as np
import pytest

from fastfit._reference import optim
from fastfit.contract.optimizer import Hyper
from ref_helpers import StubOptimizer

CASES = {
    "sgd": dict(lr=0.1),
    "sgd_decay": dict(lr=0.1, decay=0.5),
    "sgd_momentum": dict(lr=0.1, momentum=0.9),
    "sgd_nesterov": dict(lr=0.1, momentum=0.9, nesterov=True, decay=0.1),
    "rmsprop": dict(lr=0.01, rho=0.9, decay=0.2),
    "adagrad": dict(lr=0.05, epsilon=1e-6),
    "adadelta": dict(lr=1.0, rho=0.95),
    "adam": dict(lr=0.01),
    "adam_decay": dict(lr=0.01, decay=0.3, beta_1=0.8),
    "adam_amsgrad": dict(lr=0.01, amsgrad=True),
    "adamax": dict(lr=0.02, decay=0.1),
    "nadam": dict(lr=0.002, schedule_decay=0.004),
    "nadam_resumed": dict(lr=0.002, iterations=5, m_schedule=0.2),
}


def transcription(kind, h, p, grads, iterations=0, m_schedule=1.0):
    """The update rules exactly as written in docs/architecture.md, in float64; returns (p, slots, ms)."""
    p = p.astype(np.float64).copy()
    z = np.zeros_like(p)
    v, a, d, m, u, vhat = z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    eps, b1, b2 = h["epsilon"], h["beta_1"], h["beta_2"]
    for g in grads:
        g = g.astype(np.float64)
        lr_t = h["lr"] / (1 + h["decay"] * iterations) if h["decay"] > 0 else h["lr"]
        t = iterations + 1
        if kind == "sgd":
            if h["momentum"] == 0:
                p = p - lr_t * g
            else:
                v = h["momentum"] * v - lr_t * g
                p = p + (h["momentum"] * v - lr_t * g if h["nesterov"] else v)
            slots = [v]
        elif kind == "rmsprop":
            a = h["rho"] * a + (1 - h["rho"]) * g ** 2
            p = p - lr_t * g / (np.sqrt(a) + eps)
            slots = [a]
        elif kind == "adagrad":
            a = a + g ** 2
            p = p - lr_t * g / (np.sqrt(a) + eps)
            slots = [a]
        elif kind == "adadelta":
            a = h["rho"] * a + (1 - h["rho"]) * g ** 2
            upd = g * np.sqrt(d + eps) / np.sqrt(a + eps)
            p = p - lr_t * upd
            d = h["rho"] * d + (1 - h["rho"]) * upd ** 2
            slots = [a, d]
        elif kind == "adam":
            lr_a = lr_t * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            if h["amsgrad"]:
                vhat = np.maximum(vhat, v)
                p = p - lr_a * m / (np.sqrt(vhat) + eps)
                slots = [m, v, vhat]
            else:
                p = p - lr_a * m / (np.sqrt(v) + eps)
                slots = [m, v]
        elif kind == "adamax":
            lr_a = lr_t / (1 - b1 ** t)
            m = b1 * m + (1 - b1) * g
            u = np.maximum(b2 * u, np.abs(g))
            p = p - lr_a * m / (u + eps)
            slots = [m, u]
        else:
            sd = h["schedule_decay"]
            mu_t = b1 * (1 - 0.5 * 0.96 ** (t * sd))
            mu_t1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
            ms_new = m_schedule * mu_t
            ms_next = ms_new * mu_t1
            m_schedule = ms_new
            g_prime = g / (1 - ms_new)
            m = b1 * m + (1 - b1) * g
            m_prime = m / (1 - ms_next)
            v = b2 * v + (1 - b2) * g ** 2
            v_prime = v / (1 - b2 ** t)
            mbar = (1 - mu_t) * g_prime + mu_t1 * m_prime
            p = p - h["lr"] * mbar / (np.sqrt(v_prime) + eps)
            slots = [m, v]
        iterations += 1
    return p, slots, m_schedule


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_transcription(case, dtype):
    kind = case.split("_")[0]
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 2)).astype(dtype)
    grads = [rng.normal(size=(3, 2)).astype(dtype) for _ in range(4)]
    param = p0.copy()
    opt = StubOptimizer(kind, [param], **CASES[case])
    h = Hyper(opt)
    its, ms = opt.iterations, opt.m_schedule
    for g in grads:
        step, ms = optim.prepare(h, its, ms)
        optim.update(h, step, param, g, opt.slots[0])
        its += 1
    expected, slots, ms_expected = transcription(kind, vars(opt), p0, grads, opt.iterations, opt.m_schedule)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    assert param.dtype == dtype
    np.testing.assert_allclose(param, expected, **tol)
    for got, want in zip(opt.slots[0], slots):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    assert ms == pytest.approx(ms_expected, rel=1e-14)


def test_sgd_without_momentum_needs_no_slot():
    opt = StubOptimizer("sgd", [], lr=0.1)
    assert Hyper(opt).slot_count() == 0
    opt.momentum = 0.5
    assert Hyper(opt).slot_count() == 1
    assert Hyper(StubOptimizer("adam", [], amsgrad=True)).slot_count() == 3


def test_bad_hyper_parameters_are_clear_errors():
    with pytest.raises(ValueError, match=r"optimizer.kind: expected one of .* got 'lamb'"):
        opt = StubOptimizer("sgd", [])
        opt.kind = "lamb"
        Hyper(opt)
    with pytest.raises(ValueError, match="optimizer.lr: expected a number, got 'fast'"):
        Hyper(StubOptimizer("sgd", [], lr="fast"))
