"""`TensorBoard`: scalars (and optional weight histograms) as TensorBoard event files, without TensorFlow.

Uses the `tensorboard` package's own event-file writer and protobuf messages (`pip install
'fastfit[tensorboard]'`).
"""
import numbers
import os
import time
import warnings

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
        batch_size, write_graph, write_grads, write_images: Keras 2.2 arguments, accepted. There is no
            TensorFlow graph, so graphs, gradients and weight images are not written (one warning when requested).
        embeddings_freq, embeddings_layer_names, embeddings_metadata, embeddings_data: accepted; fastfit has no
            embedding layers, so nothing is written.
        update_freq: 'epoch', 'batch', or an int N: write batch values every N samples.

    Raises:
        ImportError: `tensorboard` is not installed (names the `fastfit[tensorboard]` extra).
        ValueError: bad `update_freq` or `histogram_freq`.
    """

    _runs_no_user_code = True  # no hook runs user code: checkpoints may be written behind (checkpoint_writer)

    def __init__(self, log_dir="./logs", histogram_freq=0, batch_size=32, write_graph=True, write_grads=False,
                 write_images=False, embeddings_freq=0, embeddings_layer_names=None, embeddings_metadata=None,
                 embeddings_data=None, update_freq="epoch"):
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
        self.update_freq = update_freq
        self.batch_size = batch_size
        self.write_graph = write_graph
        self.write_grads = write_grads
        self.write_images = write_images
        self.embeddings_freq = embeddings_freq
        self.embeddings_layer_names = embeddings_layer_names
        self.embeddings_metadata = embeddings_metadata
        self.embeddings_data = embeddings_data
        skipped = [name for name, wanted in (("write_grads", write_grads), ("write_images", write_images),
                                             ("embeddings_freq", embeddings_freq)) if wanted]
        if skipped:
            warnings.warn(f"TensorBoard: {', '.join(skipped)} need TensorFlow and are ignored by fastfit; only "
                          f"scalars and weight histograms are written", UserWarning, stacklevel=2)
        self.writer = None
        self.samples_seen = 0
        self._samples_at_last_write = 0

    def batch_hooks_needed(self, mode):
        begin, end = super().batch_hooks_needed(check_hook_mode(mode))
        own = not (overrides(self, "on_batch_end", TensorBoard)
                   or overrides(self, "on_train_batch_end", TensorBoard))
        if mode == "train" and own:
            end = self.update_freq != "epoch"
        return begin, end

    def on_train_begin(self, logs=None):
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

    def on_batch_end(self, batch, logs=None):
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

    def on_epoch_end(self, epoch, logs=None):
        histograms = ()
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            histograms = self._weight_histograms()
        self._write(epoch, list(self._scalars(logs or {})), histograms)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
