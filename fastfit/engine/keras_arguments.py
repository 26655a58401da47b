"""Keras arguments that fastfit accepts only with the values that change nothing here.

One table, checked in one place: each entry names the values that are a no-op for fastfit (Keras's default
among them) and what to do instead when another value is given. A feature that lands deletes its line.
"""
_GENERATORS = ("it applies to generator or `Sequence` input, which fastfit does not take yet; pass NumPy arrays "
               "(fastfit runs the whole epoch in one compiled loop)")

NEUTRAL_VALUES = {
    "compile": {
        "weighted_metrics": ((None, [], (), {}),
                             ("fastfit has no weighted metrics; `metrics` are computed without sample weights, "
                              "as Keras 2 computes `metrics`")),
        "run_eagerly": ((None, False),
                        ("fastfit always runs its compiled engine; for the NumPy reference engine "
                         "(step-by-step Python) use compile(engine='python')")),
        "steps_per_execution": ((None, 1),
                                "fastfit runs one batch per step and calls batch callbacks after every batch"),
        "jit_compile": ((None, False, True, "auto"), "fastfit's engine is always compiled"),
    },
    "fit": {
        "workers": ((0, 1), _GENERATORS),
        "use_multiprocessing": ((False,), _GENERATORS),
        "max_queue_size": ((10,), _GENERATORS),
    },
}
NEUTRAL_VALUES["evaluate"] = NEUTRAL_VALUES["predict"] = NEUTRAL_VALUES["fit"]


def pop_neutral(method: str, kwargs: dict) -> None:
    """Remove from `kwargs` the arguments of `NEUTRAL_VALUES[method]`, after checking their values.

    Raises:
        ValueError: a value that fastfit cannot carry out (names the argument, the value and what to do).
    """
    for name, (allowed, advice) in NEUTRAL_VALUES.get(method, {}).items():
        if name not in kwargs:
            continue
        value = kwargs.pop(name)
        if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
            accepted = " or ".join(repr(a) for a in allowed if not isinstance(a, (tuple, dict)))
            raise ValueError(f"{method}: `{name}={value!r}` is not supported by fastfit ({advice}); "
                             f"accepted: {accepted}")
