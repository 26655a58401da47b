"""On-disk arrays (`np.memmap`, `h5py.Dataset`, `fastfit.utils.HDF5Matrix`) streamed through `fit`,
`evaluate` and `predict` in buffers of rows, never loaded whole.

A reader thread fills one buffer while the engine trains on the other (the compiled engine runs without the
GIL), so at most two buffers of rows are in memory (`buffer_size` bytes each, inputs, targets, weights and the
row order counted). An `np.memmap` (or an uncompressed HDF5 dataset stored in one run of bytes of a file
opened read-only, mapped the same way) whose rows are already in the engine's form (the model's dtype,
targets and weights that need no conversion, no class weights) is not copied: the reader checks each buffer's rows
in place and the engine gathers the batches straight from the mapping, as it does from in-memory arrays; a
buffer then holds only its row order, and the same rows in the same order as a copied buffer. What stays
true:
- the epoch's rows come from the model seed and the epoch alone (a resumed run repeats them): `shuffle=True`
  visits row blocks (~4 MiB, whole HDF5 chunks) in a shuffled order and shuffles the rows inside each
  buffer; `shuffle='batch'` visits whole batches in the in-memory fit's order (Keras 2's HDF5 semantics);
  `shuffle=False` reads in row order;
- when the data fits in one buffer it is read once per fit and walked in the in-memory fit's order, so the
  result is the in-memory fit's bits; with several buffers, batches never straddle two buffers except the
  epoch's last;
- every row is checked (NaN/inf, targets, weights) as it is read, before the engine sees it: a bad row stops
  `fit` with a ValueError naming its rows;
- the reader thread is stopped and joined before the call returns or raises.
"""
import math
import queue
import sys
import threading

import numpy as np

from fastfit.callbacks.callback_list import CallbackList
from fastfit.engine import data, keras_arguments, loop_helpers, part_loops
from fastfit.utils.hdf5_matrix import HDF5Matrix
from fastfit.utils.progbar import Progbar

DEFAULT_BUFFER_SIZE = 256 * 2 ** 20  # bytes per buffer; fit holds two
_BLOCK_BYTES = 4 * 2 ** 20  # rows are read in blocks of about this size (whole HDF5 chunks)
_POLL_SECONDS = 0.1


# -- what is a stream -----------------------------------------------------------------------------------------
def is_stream(value):
    """True for an `np.memmap`, an `h5py.Dataset` or an `HDF5Matrix` (a one-item list of one too)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, (np.memmap, HDF5Matrix)):
        return True
    h5py = sys.modules.get("h5py")  # not imported: no h5py.Dataset can exist
    return h5py is not None and isinstance(value, h5py.Dataset)


def any_stream(*values):
    """True when one of `values` (or of the arrays of a `validation_data` tuple) is a stream."""
    for value in values:
        if is_stream(value):
            return True
        if isinstance(value, tuple) and any(is_stream(v) for v in value):
            return True
    return False


class RowSource:
    """Rows `[begin, end)` of an on-disk array (or of an in-memory array streamed beside one)."""

    def __init__(self, value, argument, begin=0, end=None):
        if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], (int, float)):
            value = value[0]
        if not is_stream(value):
            value = data.as_numeric_array(value, argument)
        elif value.dtype.kind not in "biuf":
            raise TypeError(f"`{argument}` must hold real numbers (float, int or bool), got dtype {value.dtype}")
        if len(value.shape) == 0:
            raise ValueError(f"`{argument}` must have a sample axis, got a scalar")
        self.value, self.argument = value, argument
        self.begin = begin
        self.end = len(value) if end is None else end
        self.row_shape = tuple(value.shape[1:])
        self.dtype = np.dtype(value.dtype)
        chunks = getattr(value, "chunks", None) or getattr(getattr(value, "data", None), "chunks", None)
        self.chunk_rows = int(chunks[0]) if chunks else 1
        self._mapped = None  # the HDF5 dataset's bytes mapped in place, when they can be (`_mapped_hdf5`)
        if isinstance(value, HDF5Matrix):
            if value.normalizer is None:
                mapped = _mapped_hdf5(value.data)
                self._mapped = None if mapped is None else mapped[value.start:value.end]
        elif not isinstance(value, np.ndarray):
            self._mapped = _mapped_hdf5(value)

    def __len__(self):
        return self.end - self.begin

    def view(self, begin, end):
        view = RowSource.__new__(RowSource)
        view.__dict__.update(self.__dict__)  # the same array, checks and mapping: no second look at the file
        view.begin, view.end = self.begin + begin, self.begin + end
        return view

    def array_view(self):
        """Rows `[begin, end)` as a view of an `np.memmap`, an in-memory array or a mapped HDF5 dataset
        (nothing read), or None for HDF5 data that must be read."""
        if isinstance(self.value, np.ndarray):
            return np.asarray(self.value)[self.begin:self.end]  # a plain ndarray view of the mapping
        if self._mapped is not None:
            return np.asarray(self._mapped)[self.begin:self.end]
        return None

    def read_into(self, begin, end, out):
        """Read rows `[begin, end)` straight into `out` (a C-contiguous `(rows, features)` array) where the
        source can without a conversion (an `h5py.Dataset` of `out`'s dtype): True; otherwise read nothing
        and return False."""
        h5py = sys.modules.get("h5py")
        if h5py is None or not isinstance(self.value, h5py.Dataset) or np.dtype(self.value.dtype) != out.dtype:
            return False
        if end > begin:
            self.value.read_direct(out.reshape((end - begin,) + self.row_shape),
                                   np.s_[self.begin + begin:self.begin + end])
        return True

    def read(self, begin, end):
        """Rows `[begin, end)` of this source: one contiguous read."""
        start, stop = self.begin + begin, self.begin + end
        if isinstance(self.value, HDF5Matrix):
            return self.value.read_rows(start, stop)
        return np.asarray(self.value[start:stop])

    def block_rows(self):
        """Rows per read block: about `_BLOCK_BYTES`, a whole number of HDF5 chunks."""
        row_bytes = max(1, int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize)
        chunk = self.chunk_rows
        return max(chunk, _BLOCK_BYTES // row_bytes // chunk * chunk)


def _mapped_hdf5(dataset):
    """The bytes of an HDF5 dataset mapped as a read-only `np.memmap`, or None.

    Only a dataset stored in one run of bytes (contiguous layout, no filters, no external files) of a file
    opened read-only through the default driver, with no user block: then its bytes at
    `Dataset.id.get_offset()` are the array (h5py's documented way to memory-map a dataset), and no writer in
    this process can change them behind HDF5's caches. The first and last rows are compared with HDF5's own
    read before the mapping is used."""
    h5py = sys.modules.get("h5py")
    if h5py is None or not isinstance(dataset, h5py.Dataset) or dataset.size == 0 or len(dataset.shape) == 0:
        return None
    try:
        file, plist = dataset.file, dataset.id.get_create_plist()
        dtype = np.dtype(dataset.dtype)
        if (file.mode != "r" or file.driver != "sec2" or file.userblock_size or getattr(file, "swmr_mode", False)
                or plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_nfilters() or plist.get_external_count()
                or dtype.kind not in "biuf" or not dtype.isnative):
            return None
        offset = dataset.id.get_offset()
        if offset is None:  # storage not allocated: the dataset was never written
            return None
        mapped = np.memmap(file.filename, dtype, "r", offset=offset, shape=dataset.shape)
        last = dataset.shape[0] - 1
        if not (np.array_equal(mapped[:1], dataset[:1]) and np.array_equal(mapped[last:], dataset[last:])):
            return None
        return mapped
    except (OSError, ValueError, TypeError):
        return None


# -- buffers ------------------------------------------------------------------------------------------------
class Buffer:
    """One buffer: inputs, targets and weights for `rows` rows in the engine's forms, and a row order.

    A buffer over sources read in place holds only the row order (indices into the sources)."""

    def __init__(self, rows, layout, in_place=False):
        features, dtype, target_shape, target_dtype, weighted = layout
        self.x = self.y = self.w = None
        if not in_place:
            self.x = np.empty((rows, features), dtype)
            self.y = None if target_shape is None else np.empty((rows,) + target_shape, target_dtype)
            self.w = np.empty(rows, dtype) if weighted else None
        self.order = np.empty(rows, np.int64)
        self.rows = 0  # rows filled
        self.span = (0, 0)  # first and last + 1 source row (unshuffled passes read one span)


def buffer_rows(buffer_size, layout, batch_size, total):
    """Rows per buffer: what `buffer_size` bytes hold, a whole number of batches (at least one), at most
    `total` (then the data fits in one buffer).

    Raises:
        ValueError: a `buffer_size` that is not a positive integer.
    """
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer)) or buffer_size <= 0:
        raise ValueError(f"`buffer_size` must be a positive number of bytes, got {buffer_size!r}")
    features, dtype, target_shape, target_dtype, weighted = layout
    row_bytes = features * np.dtype(dtype).itemsize + 8  # inputs and the row order
    if target_shape is not None:
        row_bytes += int(np.prod(target_shape, dtype=np.int64)) * np.dtype(target_dtype).itemsize
    if weighted:
        row_bytes += np.dtype(dtype).itemsize
    rows = max(batch_size, int(buffer_size) // row_bytes // batch_size * batch_size)
    return min(rows, total)


class Reader:
    """Fills buffers for the items of `plan`, in order, on a background thread, and hands them out in
    order: the buffer handed out last is refilled only once the next one is asked for (double buffering).

    `fill(buffer, item)` runs on the thread; an exception it raises re-raises in the caller with its
    traceback, and `close()` stops and joins the thread.
    """

    def __init__(self, buffers, plan, fill):
        self._free = queue.Queue()
        for buffer in buffers:
            self._free.put(buffer)
        self._full = queue.Queue()
        self._stop = threading.Event()
        self._plan, self._fill = plan, fill
        self._thread = threading.Thread(target=self._run, name="fastfit-reader", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for item in self._plan:
                buffer = self._take(self._free)
                if buffer is None:
                    return
                self._fill(buffer, item)
                self._full.put(("ready", buffer, item))
            self._full.put(("end", None, None))
        except BaseException as error:  # noqa: BLE001 - handed to the training thread
            self._full.put(("error", error, None))

    def _take(self, source):
        while not self._stop.is_set():
            try:
                return source.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def __iter__(self):
        previous = None
        while True:
            if previous is not None:
                self._free.put(previous)
            while True:
                try:
                    kind, value, item = self._full.get(timeout=_POLL_SECONDS)
                    break
                except queue.Empty:
                    if not self._thread.is_alive() and self._full.empty():
                        raise RuntimeError("the reader thread stopped without a result") from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            previous = value
            yield value, item

    def close(self):
        self._stop.set()
        self._thread.join()


# -- the feed -------------------------------------------------------------------------------------------------
class StreamFeed:
    """Parts (one per buffer) of x, y, sample_weight row sources, for `part_loops.train`/`evaluate_parts`/
    `predict_parts`.

    Arguments:
        x, y, sample_weight: RowSources of the same length (y and sample_weight may be None).
        buffers: the buffers to use, shared with another feed of the same layout (validation) or None.
    """

    def __init__(self, model, x, y, sample_weight, batch_size, buffer_size, shuffle=False, class_weight=None,
                 buffers=None):
        self.model = model
        self.x, self.y, self.sample_weight, self.class_weight = x, y, sample_weight, class_weight
        self.batch_size, self.shuffle = batch_size, shuffle
        self.n = len(x)
        for source in (y, sample_weight):
            if source is not None and len(source) != self.n:
                raise ValueError(f"`{x.argument}` and `{source.argument}` must have the same number of samples, "
                                 f"got {self.n} and {len(source)}")
        if self.n == 0:
            raise ValueError(f"`{x.argument}` has 0 samples; give at least one")
        expected = tuple(model.input_shape[1:])
        if len(x.row_shape) != len(expected) or any(e is not None and e != g for e, g in zip(expected, x.row_shape)):
            raise ValueError(f"`{x.argument}`: the model expects samples of shape {expected} (input shape "
                             f"{(None,) + expected}), got an on-disk array of shape {(self.n,) + x.row_shape}")
        self.dtype = model._dtype()
        self.features = int(np.prod(x.row_shape, dtype=np.int64))
        if y is None:
            target_shape, target_dtype = None, None
        elif model._canonical_loss in data.SPARSE_LOSSES:
            target_shape, target_dtype = (), np.int64
        else:
            target_shape, target_dtype = (model._units(),), self.dtype
        weighted = y is not None and (sample_weight is not None or class_weight is not None)
        self.layout = (self.features, self.dtype, target_shape, target_dtype, weighted)
        self.rows = buffer_rows(buffer_size, self.layout, batch_size, self.n)
        self.single = self.rows >= self.n  # the data fits in one buffer: read once, walked as in memory
        self.in_place = self._in_place_arrays()
        self._buffers = buffers
        self._loaded = False
        self.exhausted = False
        self.last_batch_size = batch_size

    @property
    def steps(self):
        return math.ceil(self.n / self.batch_size)

    def _in_place_arrays(self):
        """(x, y, sample weights) as views of the sources in the engine's forms, or None when some source
        must be read or converted (HDF5, another dtype, targets to convert, class weights)."""
        features, dtype, target_shape, target_dtype, weighted = self.layout
        x = _engine_view(self.x, (self.n, features), dtype, any_row_shape=True)  # row shape checked above
        y = w = None
        if x is not None and self.y is not None:
            y = _engine_view(self.y, (self.n,) + target_shape, target_dtype)
        if weighted and self.class_weight is None and self.sample_weight is not None:
            w = _engine_view(self.sample_weight, (self.n,), dtype)
        if x is None or (self.y is not None and y is None) or (weighted and w is None):
            return None
        return x, y, w

    def share(self, other):
        """Use `other`'s buffers (same layout, at least as many rows): never keep data in them."""
        self._buffers = other.buffers()
        self.rows = min(self.rows, other.rows)
        self.single = False

    def buffers(self):
        if self._buffers is None:
            self._buffers = [Buffer(self.rows, self.layout, self.in_place is not None)
                             for _ in range(1 if self.single else 2)]
        return self._buffers

    def close(self):
        self._buffers = None

    # -- plans: which rows go in which buffer -------------------------------------------------------------
    def _plan(self, epoch):
        """Yield (buffer index, [(begin, end) row ranges]) for one pass."""
        n, rows = self.n, self.rows
        if self.single or not self.shuffle:
            starts, lengths = np.array([0]), np.array([n])
        elif self.shuffle == "batch":
            starts = np.random.default_rng([self.model._seed, epoch]).permutation(
                np.arange(0, n, self.batch_size))  # the in-memory fit's batch order (Model._epoch_order)
            lengths = np.minimum(starts + self.batch_size, n) - starts
        else:
            block = self.x.block_rows()
            starts = np.random.default_rng([self.model._seed, epoch]).permutation(np.arange(0, n, block))
            lengths = np.minimum(starts + block, n) - starts
        ends = np.cumsum(lengths)  # stream position after each range
        for index, first in enumerate(range(0, n, rows)):
            last = min(first + rows, n)
            ranges = []
            k = int(np.searchsorted(ends, first, side="right"))
            position = first
            while position < last:
                range_begin = int(ends[k] - lengths[k])
                take_from = int(starts[k]) + position - range_begin
                take = min(last, int(ends[k])) - position
                ranges.append((take_from, take_from + take))
                position += take
                k += 1
            yield index, _merged(ranges)

    # -- filling ------------------------------------------------------------------------------------------
    def _fill(self, buffer, item, epoch=None, threads=None):
        """Read and check the rows of `item` into `buffer` (or, read in place, check them and note their
        indices); `threads` caps the threads of the NaN/inf scan."""
        _, ranges = item
        model, position = self.model, 0
        for begin, end in ranges:
            count = end - begin
            where = f"rows {self.x.begin + begin} to {self.x.begin + end - 1}"
            if self.in_place is not None:
                x_rows, y_rows, w_rows = (None if a is None else a[begin:end] for a in self.in_place)
                data.check_finite(x_rows, f"{self.x.argument} ({where})", threads)
                buffer.order[position:position + count] = np.arange(begin, end)
            else:
                x_rows = buffer.x[position:position + count]
                if self.x.read_into(begin, end, x_rows):
                    data.check_finite(x_rows, f"{self.x.argument} ({where})", threads)
                else:
                    _put_inputs(self.x.read(begin, end), x_rows, self.dtype, f"{self.x.argument} ({where})", threads)
                buffer.order[position:position + count] = np.arange(position, position + count)
                y_rows = None if self.y is None else self.y.read(begin, end)
                w_rows = None if self.sample_weight is None else self.sample_weight.read(begin, end)
            if self.y is not None:
                targets = data.prepare_targets(y_rows, model._canonical_loss, model._units(), self.dtype,
                                               f"{self.y.argument} ({where})")
                weights = None
                if self.layout[4]:  # weighted
                    weights = data.prepare_sample_weight(
                        w_rows, self.class_weight, targets, model._canonical_loss, model._units(), self.dtype,
                        "sample_weight" if self.sample_weight is None else
                        f"{self.sample_weight.argument} ({where})")
                if buffer.y is not None:  # else the checks alone: the engine reads the sources in place
                    buffer.y[position:position + count] = targets
                    if buffer.w is not None:
                        buffer.w[position:position + count] = weights
            position += count
        buffer.rows = position
        buffer.span = (ranges[0][0], ranges[-1][1])
        if epoch is not None and self.shuffle is True and not self.single:
            # the rows of the buffer in a shuffled order: the same rows in the same order whether the buffer
            # holds copies (order indexes the buffer) or is read in place (order indexes the sources)
            shuffled = np.arange(position)
            np.random.default_rng([self.model._seed, epoch, item[0] + 1]).shuffle(shuffled)
            buffer.order[:position] = buffer.order[:position][shuffled]

    def _buffered(self, epoch=None):
        """Yield filled buffers for one pass (the single buffer is read once and kept)."""
        if self.single:
            buffer = self.buffers()[0]
            if not self._loaded:
                self._fill(buffer, next(self._plan(epoch)))
                self._loaded = True
            yield buffer
            return
        # one scan thread: the engine trains on the cores meanwhile
        reader = Reader(self.buffers(), self._plan(epoch), lambda b, item: self._fill(b, item, epoch, threads=1))
        try:
            for buffer, _ in reader:
                yield buffer
        finally:
            reader.close()

    def _arrays(self, buffer):
        """x, y, weights of a filled buffer in row order (views of the sources when read in place)."""
        if self.in_place is not None:
            begin, end = buffer.span
            return tuple(None if a is None else a[begin:end] for a in self.in_place)
        rows = buffer.rows
        return buffer.x[:rows], None if buffer.y is None else buffer.y[:rows], \
            None if buffer.w is None else buffer.w[:rows]

    # -- parts --------------------------------------------------------------------------------------------
    def train_parts(self, epoch, skip):
        skip_rows = skip * self.batch_size
        for buffer in self._buffered(epoch):
            if self.single:
                x, y, w = self._arrays(buffer)
                order = self.model._epoch_order(epoch, self.n, self.batch_size, self.shuffle)
            else:
                x, y, w = self.in_place if self.in_place is not None else self._arrays(buffer)
                order = buffer.order[:buffer.rows]
            if skip_rows >= len(order):
                skip_rows -= len(order)
                continue
            if skip_rows:
                order, skip_rows = order[skip_rows:], 0
            yield x, y, w, order, self.batch_size

    def test_parts(self):
        for buffer in self._buffered():
            x, y, w = self._arrays(buffer)
            yield x, y, w, self.batch_size

    def predict_parts(self):
        for buffer in self._buffered():
            yield self._arrays(buffer)[0], self.batch_size


def _merged(ranges):
    """Adjacent row ranges joined (fewer, longer reads)."""
    merged = []
    for begin, end in ranges:
        if merged and merged[-1][1] == begin:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged


def _engine_view(source, shape, dtype, any_row_shape=False):
    """`source`'s rows as a view of `shape` and `dtype` (the engine's form), or None when that needs a read
    or a conversion.

    Targets and weights are viewed only in the shapes their checks accept as they are (`shape`, or `shape`
    with or without a last axis of length 1): any other shape is read, so its check refuses it exactly as
    for arrays. Inputs (`any_row_shape`) may have any row shape of the right size."""
    array = source.array_view()
    if array is None or array.dtype != dtype or not array.flags.c_contiguous:
        return None
    if any_row_shape:
        fits = int(np.prod(array.shape, dtype=np.int64)) == int(np.prod(shape, dtype=np.int64))
    else:
        fits = array.shape in (shape, shape + (1,)) or (shape[-1:] == (1,) and array.shape == shape[:-1])
    return array.reshape(shape) if fits else None


def _put_inputs(block, out, dtype, argument, threads=None):
    """Check a block of input rows (real numbers, no NaN/inf, not too large for `dtype`) and convert it
    into `out`."""
    if block.dtype.kind not in "biuf":
        raise TypeError(f"`{argument}` must hold real numbers (float, int or bool), got dtype {block.dtype}")
    data.check_finite(block, argument, threads)
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out, block.reshape(len(block), -1), casting="unsafe")
    if block.dtype.kind == "f" and block.dtype.itemsize > np.dtype(dtype).itemsize and not np.isfinite(out).all():
        raise ValueError(f"`{argument}` holds values too large for {np.dtype(dtype).name}; scale the data or use "
                         "float64 layers")


# -- entry points (called by fastfit.engine.streaming) --------------------------------------------------------
def _sources(x, y, sample_weight, names=("x", "y", "sample_weight")):
    return (RowSource(x, names[0]), None if y is None else RowSource(y, names[1]),
            None if sample_weight is None else RowSource(sample_weight, names[2]))


def _runs_user_code(*sources):
    """Whether reading these sources calls user code (an HDF5Matrix normalizer)."""
    return any(source is not None and getattr(source.value, "normalizer", None) is not None
               for source in sources)


def _take_buffer_size(kwargs, method):
    """`buffer_size` from `kwargs`, after checking the Keras arguments accepted at neutral values."""
    buffer_size = kwargs.pop("buffer_size", DEFAULT_BUFFER_SIZE)
    keras_arguments.pop_neutral(method, kwargs)  # workers etc. apply to generators only
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    return buffer_size


def _build(model, x_source):
    """Build a model without an input shape from the stream's row shape (no data read)."""
    if not model.outputs and model._builds_from_data():
        model.build((None,) + x_source.row_shape)


def fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
        class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_freq, kwargs):
    """`Model.fit` with an on-disk x, y or validation array (module docstring)."""
    validation_batch_size = kwargs.pop("validation_batch_size", None)
    buffer_size = _take_buffer_size(kwargs, "fit")
    if steps_per_epoch is not None or validation_steps is not None:
        raise ValueError("fit: `steps_per_epoch`/`validation_steps` are for generator input; on-disk arrays "
                         "train in batches of `batch_size`")
    xs, ys, ws = _sources(x, y, sample_weight)
    if ys is None:
        raise ValueError("fit: `y` is required with an on-disk `x`")
    _build(model, xs)
    model._require_compiled("fit")
    batch_size = model._batch_size_for(batch_size, "fit")
    validation_batch_size = batch_size if validation_batch_size is None else \
        model._batch_size_for(validation_batch_size, "fit", "validation_batch_size")
    epochs, initial_epoch, verbose, validation_epochs = loop_helpers.check_epoch_arguments(
        epochs, initial_epoch, verbose, shuffle, validation_freq)
    val_sources = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                             f"val_sample_weight), got {part_loops.short(validation_data)}")
        val_sources = _sources(validation_data[0], validation_data[1],
                               validation_data[2] if len(validation_data) == 3 else None,
                               ("validation_data[0]", "validation_data[1]", "validation_data[2]"))
    elif validation_split:
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"`validation_split` must be a number in [0, 1), got {validation_split!r}")
        n = len(xs)
        split = int(n * (1.0 - validation_split))
        if split in (0, n):
            raise ValueError(f"`validation_split`={validation_split} leaves "
                             f"{'no training' if split == 0 else 'no validation'} samples out of {n}")
        val_sources = tuple(None if s is None else s.view(split, n) for s in (xs, ys, ws))
        xs, ys, ws = (None if s is None else s.view(0, split) for s in (xs, ys, ws))
    feed = StreamFeed(model, xs, ys, ws, batch_size, buffer_size, shuffle, class_weight)
    validate = None
    if val_sources is not None:
        val_feed = StreamFeed(model, *val_sources, validation_batch_size, buffer_size)
        if not feed.single and val_feed.layout == feed.layout and validation_batch_size == batch_size \
                and (feed.in_place is None) == (val_feed.in_place is None):
            val_feed.share(feed)  # validation runs between epochs: the training buffers are free then

        def validate(cbks, _batch_size):
            return part_loops.evaluate_parts(model, val_feed.test_parts(), cbks)
    user_callbacks = CallbackList(callbacks)
    params = {"batch_size": batch_size, "steps": feed.steps, "samples": feed.n}
    if verbose and validate is not None:
        print(f"Train on {feed.n} samples, validate on {val_feed.n} samples")
    try:
        with model._exclusive("fit"):
            return part_loops.train(model, feed, validate, None, user_callbacks, epochs, verbose, initial_epoch,
                                   validation_epochs, params, "samples", runs_user_code=_runs_user_code(
                                       xs, ys, ws, *(val_sources or ())))
    finally:
        feed.close()


def evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks, kwargs, return_dict=False):
    """`Model.evaluate` with on-disk arrays."""
    buffer_size = _take_buffer_size(kwargs, "evaluate")
    if steps is not None:
        raise ValueError("evaluate: `steps` is for generator input; on-disk arrays run in batches of `batch_size`")
    xs, ys, ws = _sources(x, y, sample_weight)
    if ys is None:
        raise ValueError("evaluate: `y` is required with an on-disk `x`")
    _build(model, xs)
    model._require_compiled("evaluate")
    batch_size = model._batch_size_for(batch_size, "evaluate")
    verbose = loop_helpers.check_verbose(verbose)
    feed = StreamFeed(model, xs, ys, ws, batch_size, buffer_size)
    cbks = CallbackList(callbacks)
    with model._exclusive("evaluate"):
        cbks.set_model(model)
        cbks.set_params({"batch_size": batch_size, "steps": None, "samples": feed.n, "verbose": verbose,
                         "metrics": list(model.metrics_names)})
        results = part_loops.evaluate_parts(model, feed.test_parts(), cbks)
        names = list(model.metrics_names)
    if verbose:
        Progbar(target=feed.n, verbose=verbose).update(feed.n, list(results.items()))
    return part_loops.evaluate_result(results, names, return_dict)


def predict(model, x, batch_size, verbose, steps, callbacks, kwargs):
    """`Model.predict` with an on-disk x (the outputs are one in-memory array, as for arrays)."""
    buffer_size = _take_buffer_size(kwargs, "predict")
    if steps is not None:
        raise ValueError("predict: `steps` is for generator input; on-disk arrays run in batches of `batch_size`")
    xs = RowSource(x, "x")
    _build(model, xs)
    model._require_graph("output (predict needs a built model)")
    batch_size = model._batch_size_for(batch_size, "predict")
    loop_helpers.check_verbose(verbose)
    feed = StreamFeed(model, xs, None, None, batch_size, buffer_size)
    cbks = CallbackList(callbacks)
    with model._exclusive("predict"):
        cbks.set_model(model)
        cbks.set_params({"batch_size": batch_size, "steps": None, "samples": feed.n, "verbose": verbose})
        return part_loops.predict_parts(model, feed.predict_parts(), cbks, feed.n)
