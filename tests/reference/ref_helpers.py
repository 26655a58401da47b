"""Helpers of the reference-engine tests: a stand-in optimizer object, a recording hook, finite differences
and a plain-Python splitmix64."""
import numpy as np

SLOT_COUNTS = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 2, "adamax": 2, "nadam": 2}


class StubOptimizer:
    """The attributes the engines read (docs/architecture.md), with Keras 2.2 defaults and zero slots."""

    def __init__(self, kind, params, **hyper):
        self.kind = kind
        self.lr, self.decay, self.epsilon = 0.01, 0.0, 1e-7
        self.momentum, self.nesterov, self.rho = 0.0, False, 0.9
        self.beta_1, self.beta_2, self.amsgrad, self.schedule_decay = 0.9, 0.999, False, 0.004
        self.iterations, self.m_schedule = 0, 1.0
        for key, value in hyper.items():
            setattr(self, key, value)
        count = 3 if kind == "adam" and self.amsgrad else SLOT_COUNTS[kind]
        self.slots = [[np.zeros_like(p) for _ in range(count)] for p in params]


class RecordingHook:
    """Records (phase, batch, size, stats copy, optimizer iterations) and the ids of the stats arrays;
    `action(phase, batch)` may return True to stop, or raise."""

    def __init__(self, begin=True, end=True, interval=0.0, optimizer=None, action=None):
        self.batch_begin, self.batch_end, self.end_interval = begin, end, interval
        self.optimizer, self.action, self.calls, self.stats_ids = optimizer, action, [], set()

    def __call__(self, phase, batch, size, stats):
        self.stats_ids.add(id(stats))
        its = None if self.optimizer is None else self.optimizer.iterations
        self.calls.append((phase, batch, size, stats.copy(), its))
        return self.action(phase, batch) if self.action else None


def central_diff(f, x, h=1e-6):
    """Central finite-difference gradient of the scalar function f at the float64 array x."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f(x)
        flat[i] = old - h
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


M64 = (1 << 64) - 1


def splitmix64_py(z):
    """splitmix64 of one Python int, written out with explicit mod-2**64 arithmetic."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def keep_py(seed, step, e, rate):
    """Whether element e of a dropout op with `seed` is kept at optimizer step `step`."""
    z = splitmix64_py((seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + e) & M64)
    return (z >> 11) * 2.0 ** -53 >= rate
