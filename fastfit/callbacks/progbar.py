"""`ProgbarLogger`: prints `Epoch i/E` and a progress bar during `fit`."""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastfit.callbacks.base import Callback, check_hook_mode, overrides
from fastfit.engine.logs import spellings
from fastfit.utils.progbar import Progbar


class ProgbarLogger(Callback):
    """Callback that prints metrics to stdout.

    The verbosity is `params['verbose']` (fit's `verbose`): 1 draws a bar updated during the epoch, 2 prints
    one line per epoch, 0 prints nothing. The final line of each epoch shows exactly the epoch logs values
    (what History and CSVLogger record). During the epoch the bar shows running sample-weighted means.

    Arguments:
        count_mode: 'samples' (the bar counts samples) or 'steps' (counts batches).
        stateful_metrics: names shown as their latest batch value instead of averaged.

    Raises:
        ValueError: unknown `count_mode`.
    """

    _INTERVAL = 0.05

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, count_mode: str = "samples", stateful_metrics: Iterable[str] | None = None) -> None:
        super().__init__()
        if count_mode not in ("samples", "steps"):
            raise ValueError(f"Unknown `count_mode`: {count_mode!r}; expected 'samples' or 'steps'")
        self.use_steps = count_mode == "steps"
        self.count_mode = count_mode
        self.stateful_metrics = spellings(stateful_metrics or ())  # every alias of each name
        self.verbose = 0
        self.epochs: int | None = 0
        self.progbar: Progbar | None = None

    def _own_batch_end(self):
        """True unless a subclass or the instance replaced the batch-end hooks."""
        return not (overrides(self, "on_batch_end", ProgbarLogger)
                    or overrides(self, "on_train_batch_end", ProgbarLogger))

    @property
    def batch_end_interval(self) -> float:
        """Throttle declaration (see fastfit.callbacks.hooks): running means every 50 ms are enough for the
        bar. 0 (no throttle) when the batch-end hooks were replaced, since those may need every batch."""
        return self._INTERVAL if self._own_batch_end() else 0

    def batch_hooks_needed(self, mode: str) -> tuple[bool, bool]:
        begin, end = super().batch_hooks_needed(check_hook_mode(mode))
        if mode == "train" and self._own_batch_end():
            end = self._verbose() == 1  # the bar only draws during the epoch with verbose == 1
        return begin, end

    def _verbose(self):
        return getattr(self, "params", {}).get("verbose", 0)

    def _target(self):
        params = getattr(self, "params", {})
        return params.get("steps") if self.use_steps else params.get("samples")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.verbose = self._verbose()
        self.epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seen = 0
        self._sums: dict[str, Any] = {}
        self._last_draw = 0.0
        if not self.verbose:
            return
        print(f"Epoch {epoch + 1}/{self.epochs}")
        self.target = self._target()
        metric_keys = list(self.params.get("metrics") or [])
        # The logger computes the means itself, so the bar shows every value as given.
        self.progbar = Progbar(target=self.target, verbose=self.verbose,
                               stateful_metrics=metric_keys + sorted(self.stateful_metrics))

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Per-batch values: accumulate sample-weighted sums; redraw at most every 50 ms."""
        if self.verbose != 1 or self.progbar is None:
            return
        logs = logs or {}
        size = logs.get("size", 0)
        self.seen += 1 if self.use_steps else size
        for key in self.params.get("metrics") or ():
            if key in logs:
                if key in self.stateful_metrics:
                    self._sums[key] = [logs[key], 1]
                else:
                    total = self._sums.setdefault(key, [0.0, 0])
                    total[0] += logs[key] * size
                    total[1] += size
        now = time.time()
        if now - self._last_draw >= self._INTERVAL and (self.target is None or self.seen < self.target):
            self._last_draw = now
            values = [(key, total / max(count, 1)) for key, (total, count) in self._sums.items()]
            self.progbar.update(self.seen, values)

    def on_train_batch_means(self, batch: int, logs: dict[str, Any]) -> None:
        """Throttled call with running epoch means (`logs['seen']` = samples so far)."""
        if self.verbose != 1 or self.progbar is None:
            return
        self.seen = batch + 1 if self.use_steps else logs.get("seen", 0)
        if self.target is not None and self.seen >= self.target:
            return  # the epoch end draws the final line
        now = time.time()
        if now - self._last_draw < self._INTERVAL:
            return  # called more often than asked (another callback needs every batch)
        self._last_draw = now
        metric_keys = self.params.get("metrics") or ()
        self.progbar.update(self.seen, [(key, logs[key]) for key in metric_keys if key in logs], force=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.verbose or self.progbar is None:
            return
        logs = logs or {}
        values = [(key, logs[key]) for key in self.params.get("metrics") or () if key in logs]
        current = self.target if self.target is not None else self.seen
        self.progbar.update(current, values, force=True, finalize=True)
        self.progbar = None


class PredictProgbar(Callback):
    """The bar of `predict(verbose=1)` (Keras 2.2: updated after every batch, counting samples; verbose=2:
    one line at the end). `predict` adds it to its callbacks; it is not meant for `fit`."""

    def __init__(self, samples, verbose):
        super().__init__()
        self._bar = Progbar(target=samples, verbose=verbose)
        self._seen = 0

    def on_predict_batch_end(self, batch, logs=None):
        self._seen += int((logs or {}).get("size", 0))
        self._bar.update(self._seen)
