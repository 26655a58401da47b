"""Optimizer update rules of the reference engine (Keras 2.2, docs/architecture.md).

`Hyper` reads the optimizer object once per call (and `lr` again after every hook call); `prepare` computes
the float64 scalars of one step (decayed lr, bias corrections, Nadam's momentum schedule); `update` applies
them in place to one parameter array and its slots, in the array's dtype.
"""
import numpy as np

from fastfit._reference.names import OPTIMIZERS

# Slot arrays per parameter (sgd needs its one only with momentum, adam a third with amsgrad).
SLOT_COUNTS = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 2, "adamax": 2, "nadam": 2}


def read_number(obj, attr, default=None):
    """`obj.attr` as a Python float, or `default` when missing or None.

    Raises:
        ValueError: missing without a default, or not a number.
    """
    value = getattr(obj, attr, None)
    if value is None:
        if default is None:
            raise ValueError(f"optimizer.{attr}: expected a number, got nothing")
        return float(default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"optimizer.{attr}: expected a number, got {value!r}") from None


class Hyper:
    """The hyper-parameters of an optimizer object, read at the start of a call.

    Arguments:
        optimizer: object with `kind`, `lr`, `decay`, `epsilon` and the per-kind attributes.

    Raises:
        ValueError: unknown kind or a hyper-parameter that is not a number.
    """

    def __init__(self, optimizer):
        kind = getattr(optimizer, "kind", None)
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer.kind: expected one of {list(OPTIMIZERS)}, got {kind!r}")
        self.kind = kind
        self.lr = read_number(optimizer, "lr")
        self.decay = read_number(optimizer, "decay", 0.0)
        self.epsilon = read_number(optimizer, "epsilon", 1e-7)
        self.momentum = read_number(optimizer, "momentum", 0.0)
        self.nesterov = bool(getattr(optimizer, "nesterov", False))
        self.rho = read_number(optimizer, "rho", 0.9)
        self.beta_1 = read_number(optimizer, "beta_1", 0.9)
        self.beta_2 = read_number(optimizer, "beta_2", 0.999)
        self.amsgrad = bool(getattr(optimizer, "amsgrad", False))
        self.schedule_decay = read_number(optimizer, "schedule_decay", 0.004)

    def reread_lr(self, optimizer):
        """Pick up a learning rate changed by a callback."""
        self.lr = read_number(optimizer, "lr")

    def slot_count(self):
        """Number of slot arrays per parameter the rule reads."""
        if self.kind == "sgd" and self.momentum == 0:
            return 0
        if self.kind == "adam" and self.amsgrad:
            return 3
        return SLOT_COUNTS[self.kind]


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


def update(h, s, p, g, slots):
    """Apply one update to parameter `p` in place.

    Arguments:
        h: `Hyper`; s: `Step` from `prepare`.
        p: parameter array; g: its gradient (same shape and dtype).
        slots: the parameter's slot arrays (at least `h.slot_count()`), updated in place.
    """
    dt = p.dtype.type
    lr, eps = dt(s.lr), dt(h.epsilon)
    if h.kind == "sgd":
        if h.momentum == 0:
            p -= lr * g
            return
        v, mom = slots[0], dt(h.momentum)
        v *= mom
        v -= lr * g
        if h.nesterov:
            p += mom * v - lr * g
        else:
            p += v
    elif h.kind in ("rmsprop", "adagrad"):
        a = slots[0]
        if h.kind == "rmsprop":
            a *= dt(h.rho)
            a += dt(1 - h.rho) * g * g
        else:
            a += g * g
        p -= lr * g / (np.sqrt(a) + eps)
    elif h.kind == "adadelta":
        a, d = slots[0], slots[1]
        rho, rho1 = dt(h.rho), dt(1 - h.rho)
        a *= rho
        a += rho1 * g * g
        u = g * np.sqrt(d + eps) / np.sqrt(a + eps)
        p -= lr * u
        d *= rho
        d += rho1 * u * u
    elif h.kind == "adam":
        m, v = _moments(h, dt, g, slots)
        if h.amsgrad:
            np.maximum(slots[2], v, out=slots[2])
            v = slots[2]
        p -= lr * m / (np.sqrt(v) + eps)
    elif h.kind == "adamax":
        m, u = slots[0], slots[1]
        m *= dt(h.beta_1)
        m += dt(1 - h.beta_1) * g
        u *= dt(h.beta_2)
        np.maximum(u, np.abs(g), out=u)
        p -= lr * m / (u + eps)
    else:  # nadam
        m, v = _moments(h, dt, g, slots)
        mbar = dt(1 - s.mu_t) * (g / dt(s.g_div)) + dt(s.mu_t1) * (m / dt(s.m_div))
        p -= lr * mbar / (np.sqrt(v / dt(s.v_div)) + eps)


def _moments(h, dt, g, slots):
    """Adam/Nadam first and second moments, updated in place: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2."""
    m, v = slots[0], slots[1]
    m *= dt(h.beta_1)
    m += dt(1 - h.beta_1) * g
    v *= dt(h.beta_2)
    v += dt(1 - h.beta_2) * g * g
    return m, v
