"""Metric names and their aliases: `Logs` (the logs callbacks receive, `History.history`), `MetricNames`
(`model.metrics_names`) and `lookup` (the one monitor resolver of the built-in callbacks).

Keras 2.2 logs `acc` for `metrics=['accuracy']` and `mean_squared_error` for `['mse']`; tf.keras logs the
string as given. fastfit stores each metric under one key, the tf.keras one: the string the user compiled
with (`'acc'` → `acc`, `'accuracy'` → `accuracy`), a function's `__name__`, a metric object's `name`; `val_`
prefixes the validation values. Every spelling Keras accepts for the same metric (`ALIAS_GROUPS`) answers a
lookup: `logs['val_acc']` finds `val_accuracy`. Iteration, `keys()`, `items()` and `len()` show the stored
keys only, once each, so CSV columns, progress bars and `history.history.keys()` show the user's spelling.
"""
from collections.abc import Iterable, Mapping
from typing import Any

from fastfit.losses import ALIASES as _LOSS_ALIASES

_VALIDATION = "val_"


def _alias_groups():
    groups = [("acc", "accuracy"), ("ce", "crossentropy")]
    spellings = {}
    for alias, canonical in _LOSS_ALIASES.items():
        spellings.setdefault(canonical, [canonical]).append(alias)
    groups.extend(tuple(dict.fromkeys(names)) for names in spellings.values())
    return tuple(groups)


ALIAS_GROUPS = _alias_groups()
"""Tuples of names that denote one metric (Keras 2.2 and tf.keras spellings, e.g. `('acc', 'accuracy')`)."""

_OTHERS = {name: tuple(other for other in group if other != name) for group in ALIAS_GROUPS for name in group}


def aliases(key: str) -> tuple:
    """The other spellings of a logs key: `aliases('val_acc') == ('val_accuracy',)`; `()` when it has none."""
    if not isinstance(key, str):
        return ()
    others = _OTHERS.get(key)
    if others is not None:
        return others
    if key.startswith(_VALIDATION):
        return tuple(_VALIDATION + other for other in _OTHERS.get(key[len(_VALIDATION):], ()))
    return ()


def spellings(names: Iterable[str]) -> set:
    """The set of `names` and all their aliases (for arguments that list metric names, such as
    `stateful_metrics`)."""
    return {spelling for name in names for spelling in (name,) + aliases(name)}


def stored_key(mapping: Mapping, key: str) -> "str | None":
    """The key under which `mapping` holds `key` or one of its aliases, or None."""
    if dict.__contains__(mapping, key) if isinstance(mapping, dict) else key in mapping:
        return key
    for other in aliases(key):
        if dict.__contains__(mapping, other) if isinstance(mapping, dict) else other in mapping:
            return other
    return None


def lookup(logs: "Mapping | None", key: str, default: Any = None) -> Any:
    """`logs[key]`, trying the aliases of `key` too (any mapping, e.g. logs a user passes by hand);
    `default` when none is there. Every built-in callback reads its `monitor` through this."""
    if logs is None:
        return default
    found = stored_key(logs, key)
    return default if found is None else logs[found]


class Logs(dict):
    """A dict of logs that stores one key per metric and answers every alias of it.

    `logs['val_acc']`, `'val_acc' in logs`, `logs.get('val_acc')`, `'{val_acc:.2f}'.format_map(logs)` find a
    value stored as `val_accuracy`; assigning or deleting through an alias acts on the stored key. `**logs`
    unpacks the stored keys only (Python builds that dict from `keys()`): format with `format_map(logs)` to
    accept every spelling.
    """

    __slots__ = ()

    def __missing__(self, key):
        for other in aliases(key):
            if dict.__contains__(self, other):
                return dict.__getitem__(self, other)
        raise KeyError(key)

    def __contains__(self, key):
        return dict.__contains__(self, key) or any(dict.__contains__(self, other) for other in aliases(key))

    def get(self, key, default=None):
        found = stored_key(self, key)
        return default if found is None else dict.__getitem__(self, found)

    def __setitem__(self, key, value):
        dict.__setitem__(self, stored_key(self, key) or key, value)

    def __delitem__(self, key):
        dict.__delitem__(self, stored_key(self, key) or key)

    def pop(self, key, *default):
        return dict.pop(self, stored_key(self, key) or key, *default)

    def setdefault(self, key, default=None):
        return dict.setdefault(self, stored_key(self, key) or key, default)

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def copy(self):
        return Logs(self)

    def __reduce__(self):  # pickles as a Logs holding the stored keys
        return Logs, (dict(self),)


class MetricNames(list):
    """`model.metrics_names`: a list of the stored keys (`['loss', 'accuracy']`) whose `index`, `in` and
    `count` also accept aliases (`metrics_names.index('acc')` finds `'accuracy'`)."""

    def __contains__(self, name):
        return list.__contains__(self, name) or any(list.__contains__(self, other) for other in aliases(name))

    def index(self, name, *args):
        if list.__contains__(self, name):
            return list.index(self, name, *args)
        for other in aliases(name):
            if list.__contains__(self, other):
                return list.index(self, other, *args)
        return list.index(self, name, *args)  # raises ValueError naming `name`

    def count(self, name):
        return sum(list.count(self, other) for other in (name,) + aliases(name))

    def __reduce__(self):
        return MetricNames, (list(self),)
