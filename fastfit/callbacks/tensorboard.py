"""`TensorBoard`: scalars (and optional weight histograms) as TensorBoard event files, without TensorFlow.

Uses the `tensorboard` package's own event-file writer and protobuf messages (`pip install
'fastfit[tensorboard]'`).
"""
from __future__ import annotations

import numbers
import os
import time
from typing import Any

import numpy as np

from fastfit.callbacks.base import Callback, check_hook_mode, overrides

_INSTALL_HINT = ("the TensorBoard callback needs the `tensorboard` package; install it with "
                 "pip install 'fastfit[tensorboard]'")


def _tensorboard_modules():
    """Import the writer and protos lazily, with an install hint when the package is missing."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return EventFileWriter, Event, Summary, HistogramProto


def _histogram(values, HistogramProto, bins=30):
    values = np.asarray(values, dtype=np.float64).ravel()
    counts, edges = np.histogram(values, bins=bins)
    return HistogramProto(min=float(values.min()), max=float(values.max()), num=float(values.size),
                          sum=float(values.sum()), sum_squares=float(np.dot(values, values)),
                          bucket_limit=edges[1:].tolist(), bucket=counts.astype(np.float64).tolist())


class TensorBoard(Callback):
    """Writes TensorBoard event files (`events.out.tfevents.*`) directly in `log_dir`.

    Every epoch end writes one scalar per logs key (tags `loss`, `acc`, `val_loss`, `lr`, ...) at step =
    epoch index. With a batch `update_freq`, batch values are written under `batch_<key>` at step = samples
    seen so far. With `histogram_freq > 0`, every `histogram_freq` epochs a histogram of every weight array
    (tag `<layer name>/<weight name>`).

    Arguments:
        log_dir: folder of the event files (created if missing).
        histogram_freq: epochs between weight histograms (0: none).
        batch_size, write_graph: Keras 2.2 arguments, accepted (there is no TensorFlow graph to write).
        write_grads, write_images, embeddings_freq: only their defaults (False, False, 0): fastfit cannot write
            gradients, weight images or embeddings, so asking for them raises ValueError.
        embeddings_layer_names, embeddings_metadata, embeddings_data: accepted (used only with embeddings_freq).
        update_freq: 'epoch', 'batch', or an int N: write batch values every N samples.

    Raises:
        ImportError: `tensorboard` is not installed (names the `fastfit[tensorboard]` extra).
        ValueError: bad `update_freq` or `histogram_freq`.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, log_dir: str | os.PathLike = "./logs", histogram_freq: int = 0, batch_size: int = 32,
                 write_graph: bool = True, write_grads: bool = False, write_images: bool = False,
                 embeddings_freq: int = 0, embeddings_layer_names: Any = None, embeddings_metadata: Any = None,
                 embeddings_data: Any = None, update_freq: str | int = "epoch") -> None:
        super().__init__()
        self._writer_class, self._Event, self._Summary, self._HistogramProto = _tensorboard_modules()
        self.log_dir = os.fspath(log_dir)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"TensorBoard: `histogram_freq` must be an int >= 0, got {histogram_freq!r}")
        self.histogram_freq = histogram_freq
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, int)
                                       or update_freq < 1):
            raise ValueError(f"TensorBoard: `update_freq` must be 'epoch', 'batch' or an int >= 1 (samples), got "
                             f"{update_freq!r}")
        self.update_freq: Any = update_freq  # "epoch", or an int: samples between two writes
        self.batch_size = batch_size
        self.write_graph = write_graph
        self.write_grads = write_grads
        self.write_images = write_images
        self.embeddings_freq = embeddings_freq
        self.embeddings_layer_names = embeddings_layer_names
        self.embeddings_metadata = embeddings_metadata
        self.embeddings_data = embeddings_data
        asked = [name for name, wanted in (("write_grads", write_grads), ("write_images", write_images),
                                           ("embeddings_freq", embeddings_freq)) if wanted]
        if asked:
            raise ValueError(f"TensorBoard: {', '.join(asked)} need TensorFlow and are not supported by fastfit, "
                             "which writes scalars and weight histograms (histogram_freq); remove them")
        self.writer: Any = None  # the event file writer, from train begin
        self.samples_seen = 0
        self._samples_at_last_write = 0

    def batch_hooks_needed(self, mode: str) -> tuple[bool, bool]:
        begin, end = super().batch_hooks_needed(check_hook_mode(mode))
        own = not (overrides(self, "on_batch_end", TensorBoard)
                   or overrides(self, "on_train_batch_end", TensorBoard))
        if mode == "train" and own:
            end = self.update_freq != "epoch"
        return begin, end

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        os.makedirs(self.log_dir, exist_ok=True)
        if self.writer is None:
            self.writer = self._writer_class(self.log_dir)
        self.samples_seen = 0
        self._samples_at_last_write = 0

    def _write(self, step, values, histograms=()):
        if self.writer is None:
            self.on_train_begin()
        summary = self._Summary(value=[self._Summary.Value(tag=tag, simple_value=value) for tag, value in values])
        for tag, proto in histograms:
            summary.value.add(tag=tag, histo=proto)
        self.writer.add_event(self._Event(wall_time=time.time(), step=int(step), summary=summary))

    @staticmethod
    def _scalars(logs, prefix=""):
        for key, value in logs.items():
            if key in ("batch", "size"):
                continue
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.item()
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                yield prefix + key, float(value)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.update_freq == "epoch":
            return
        logs = logs or {}
        self.samples_seen += logs.get("size", 0)
        if self.samples_seen - self._samples_at_last_write >= self.update_freq:
            self._samples_at_last_write = self.samples_seen
            self._write(self.samples_seen, list(self._scalars(logs, "batch_")))

    def _weight_histograms(self):
        histograms = []
        for layer in getattr(self.model, "layers", ()):
            arrays = layer.get_weights()
            for index, array in enumerate(arrays):
                if np.size(array) == 0:
                    continue
                kind = ("kernel" if index == 0 else "bias") if len(arrays) <= 2 else "weight"
                tag = f"{layer.name}/{kind}_{index if len(arrays) > 2 else 0}"
                histograms.append((tag, _histogram(array, self._HistogramProto)))
        return histograms

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        histograms = ()
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            histograms = self._weight_histograms()
        self._write(epoch, list(self._scalars(logs or {})), histograms)
        self.writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
