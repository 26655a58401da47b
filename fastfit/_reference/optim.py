"""Optimizer update rules of the reference engine (Keras 2.2, docs/architecture.md).

`fastfit.contract.optimizer.Hyper` reads the optimizer object once per call (and `lr` again after every hook
call); `prepare` computes the float64 scalars of one step (decayed lr, bias corrections, Nadam's momentum
schedule); `update` applies them in place to one parameter array and its slots, in the array's dtype.
"""
import numpy as np

class Step:
    """The float64 scalars of one update (see `prepare`)."""

    def __init__(self, lr, mu_t=0.0, mu_t1=0.0, g_div=1.0, m_div=1.0, v_div=1.0):
        self.lr, self.mu_t, self.mu_t1 = lr, mu_t, mu_t1
        self.g_div, self.m_div, self.v_div = g_div, m_div, v_div


def prepare(h, iterations, m_schedule):
    """Scalars of the update number `iterations + 1`.

    Arguments:
        h: `Hyper`; iterations: updates done so far; m_schedule: Nadam's running momentum product.

    Returns:
        (`Step`, the new m_schedule (unchanged unless Nadam)).
    """
    t = float(iterations + 1)
    lr = h.lr
    if h.decay > 0 and h.kind != "nadam":
        lr = lr / (1 + h.decay * iterations)
    if h.kind == "adam":
        return Step(lr * np.sqrt(1 - h.beta_2 ** t) / (1 - h.beta_1 ** t)), m_schedule
    if h.kind == "adamax":
        return Step(lr / (1 - h.beta_1 ** t)), m_schedule
    if h.kind == "nadam":
        mu_t = h.beta_1 * (1 - 0.5 * 0.96 ** (t * h.schedule_decay))
        mu_t1 = h.beta_1 * (1 - 0.5 * 0.96 ** ((t + 1) * h.schedule_decay))
        ms_new = m_schedule * mu_t
        step = Step(lr, mu_t, mu_t1, g_div=1 - ms_new, m_div=1 - ms_new * mu_t1, v_div=1 - h.beta_2 ** t)
        return step, ms_new
    return Step(lr), m_schedule


def update(h, s, p, g, slots, work=None):
    """Apply one update to parameter `p` in place.

    Every intermediate goes through the two scratch arrays in `work` (allocated when None), so a step
    makes no temporary allocations; the operation order follows the formulas (e.g. `(lr * g) / d`).

    Arguments:
        h: `Hyper`; s: `Step` from `prepare`.
        p: parameter array; g: its gradient (same shape and dtype).
        slots: the parameter's slot arrays (at least `h.slot_count()`), updated in place.
        work: None or two scratch arrays of p's shape and dtype.
    """
    dt = p.dtype.type
    t1, t2 = work if work is not None else (np.empty_like(p), np.empty_like(p))
    lr, eps = dt(s.lr), dt(h.epsilon)
    if h.kind == "sgd":
        np.multiply(g, lr, out=t1)  # lr * g
        if h.momentum == 0:
            p -= t1
            return
        v, mom = slots[0], dt(h.momentum)
        v *= mom
        v -= t1
        if h.nesterov:
            np.multiply(v, mom, out=t2)
            t2 -= t1
            p += t2
        else:
            p += v
    elif h.kind in ("rmsprop", "adagrad"):
        a = slots[0]
        if h.kind == "rmsprop":
            a *= dt(h.rho)
            np.multiply(g, dt(1 - h.rho), out=t1)
        else:
            np.copyto(t1, g)
        t1 *= g
        a += t1
        _step(p, g, lr, a, eps, t1, t2, root=True)
    elif h.kind == "adadelta":
        a, d = slots[0], slots[1]
        rho, rho1 = dt(h.rho), dt(1 - h.rho)
        a *= rho
        np.multiply(g, rho1, out=t1)
        t1 *= g
        a += t1
        # u = g * sqrt(d + eps) / sqrt(a + eps), kept in t1
        np.add(d, eps, out=t1)
        np.sqrt(t1, out=t1)
        t1 *= g
        np.add(a, eps, out=t2)
        np.sqrt(t2, out=t2)
        t1 /= t2
        np.multiply(t1, lr, out=t2)
        p -= t2
        d *= rho
        np.multiply(t1, rho1, out=t2)
        t2 *= t1
        d += t2
    elif h.kind == "adam":
        m, v = _moments(h, dt, g, slots, t1)
        if h.amsgrad:
            np.maximum(slots[2], v, out=slots[2])
            v = slots[2]
        _step(p, m, lr, v, eps, t1, t2, root=True)
    elif h.kind == "adamax":
        m, u = slots[0], slots[1]
        m *= dt(h.beta_1)
        np.multiply(g, dt(1 - h.beta_1), out=t1)
        m += t1
        u *= dt(h.beta_2)
        np.abs(g, out=t1)
        np.maximum(u, t1, out=u)
        _step(p, m, lr, u, eps, t1, t2, root=False)
    else:  # nadam
        m, v = _moments(h, dt, g, slots, t1)
        # mbar = (1 - mu_t) * g / (1 - ms_new) + mu_t1 * m / (1 - ms_next), kept in t1
        np.divide(g, dt(s.g_div), out=t1)
        t1 *= dt(1 - s.mu_t)
        np.divide(m, dt(s.m_div), out=t2)
        t2 *= dt(s.mu_t1)
        t1 += t2
        np.divide(v, dt(s.v_div), out=t2)
        t1 *= lr
        np.sqrt(t2, out=t2)
        t2 += eps
        t1 /= t2
        p -= t1


def _step(p, num, lr, den, eps, t1, t2, root):
    """p -= (lr * num) / (sqrt(den) + eps), or / (den + eps) without `root`."""
    if root:
        np.sqrt(den, out=t1)
        t1 += eps
    else:
        np.add(den, eps, out=t1)
    np.multiply(num, lr, out=t2)
    t2 /= t1
    p -= t2


def _moments(h, dt, g, slots, tmp):
    """Adam/Nadam moments in place: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2 (tmp: scratch array)."""
    m, v = slots[0], slots[1]
    m *= dt(h.beta_1)
    np.multiply(g, dt(1 - h.beta_1), out=tmp)
    m += tmp
    v *= dt(h.beta_2)
    np.multiply(g, dt(1 - h.beta_2), out=tmp)
    tmp *= g
    v += tmp
    return m, v
