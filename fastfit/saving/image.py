"""The bytes of an HDF5 model file, built without copying its arrays and reused from one save to the next.

HDF5 writes only the metadata, into an anonymous memory map whose untouched pages cost nothing: numeric
datasets get their space allocated but not written (`FILL_TIME_NEVER`), and the file is then the metadata
pieces interleaved with the arrays' own buffers (`Layout.segments`), so writing it reads each array once.
The bytes are those HDF5 would write: a contiguous dataset of the array's own (native) dtype stores the
array's C-order bytes.

The metadata depends only on the file's structure (attributes, names, shapes, dtypes), not on the array
values, so a checkpoint of the same model reuses the layout built for the previous one: the HDF5 work of a
save happens once per model structure and process (what it costs: docs/performance.md). A checkpoint
callback goes one step further: its `FileImage` holds the whole file in one buffer, metadata in place, and
each save only copies the arrays into their slots.
"""
import collections
import mmap
import threading

import h5py
import numpy as np
from h5py import h5d, h5p

from fastfit.saving import snapshot

try:  # the arrays' copy into their slots (where the extension is built)
    from fastfit._ext import _filewrite
except ImportError:
    _filewrite = None

_CACHED_LAYOUTS = 8
_cache = collections.OrderedDict()   # structure key -> Layout
_cache_lock = threading.Lock()


class Layout:
    """Where a file's arrays go: `pieces` of metadata bytes around the array `slots` (offset, bytes), in file
    order; `order[i]` is the index, among the datasets in creation order, of the array in slot i.

    `reusable` is False when some dataset's bytes are inside the pieces (a dtype HDF5 had to write itself).
    """

    def __init__(self, pieces, slots, order, size, reusable):
        self.pieces, self.slots, self.order, self.size, self.reusable = pieces, slots, order, size, reusable

    def segments(self, arrays, start=0):
        """The file's bytes from `start` on, as buffers in order (no copies); `arrays` in creation order."""
        position = 0
        for piece, (offset, nbytes), index in zip(self.pieces, self.slots + [(self.size, 0)], self.order + [None]):
            if position + len(piece) > start:
                yield memoryview(piece)[max(0, start - position):]
            position += len(piece)
            if index is not None and nbytes:
                data = memoryview(arrays[index].reshape(-1).view(np.uint8))
                if position + nbytes > start:
                    yield data[max(0, start - position):]
                position += nbytes


class FileImage:
    """A whole file in one buffer: a layout's metadata in place, and the arrays copied into their slots.

    Refilled by `fill` for every checkpoint of a model of the same structure, so a save copies each array
    once and allocates nothing; the file is then the one buffer (`segments`).
    """

    def __init__(self, layout, arrays):
        """`arrays`: the datasets in creation order (their dtypes and shapes define the slots).

        Raises:
            ValueError: `arrays` do not fit the layout.
        """
        self.size = layout.size
        self.buffer = bytearray(layout.size)
        self._count = len(arrays)
        # The datasets with bytes in the file: their index in `arrays`, offset, and an array viewing the slot.
        self._indices, self._offsets, self._targets = [], [], []
        position = 0
        for piece, (offset, nbytes), index in zip(layout.pieces, layout.slots + [(layout.size, 0)],
                                                   layout.order + [None]):
            self.buffer[position:position + len(piece)] = piece
            position += len(piece)
            if index is not None and nbytes:
                like = arrays[index]
                self._indices.append(index)
                self._offsets.append(offset)
                self._targets.append(np.ndarray(like.shape, like.dtype, buffer=self.buffer, offset=offset))
                position += nbytes
        if not self.fill(arrays):
            raise ValueError("FileImage: the arrays do not match the layout's slots")

    def fill(self, arrays):
        """Copy `arrays` (creation order) into their slots. False when their count, dtypes or shapes are not
        the constructor's: the image then holds a mix and must not be written."""
        if len(arrays) != self._count:
            return False
        slot_arrays = [arrays[i] for i in self._indices]
        if _filewrite is not None and _filewrite.copy_slots(self.buffer, self._offsets, self._targets, slot_arrays):
            return True
        for target, array in zip(self._targets, slot_arrays):  # views, scalars, other byte orders...
            array = np.asarray(array)
            if array.shape != target.shape or array.dtype != target.dtype:
                return False
            target[...] = array
        return True

    def segments(self, start=0):
        """The file's bytes from `start` on (one buffer, not copied)."""
        yield memoryview(self.buffer)[start:]


def cached_layout(content, userblock):
    """The cached `Layout` of `content`'s structure, or None (then `layout_for` would have to build it)."""
    with _cache_lock:
        return _cache.get((userblock, content.structure()))


def layout_for(content, userblock):
    """The `Layout` of the file holding `content` (a `snapshot.Snapshot`), from the cache when it can be."""
    key = (userblock, content.structure())
    with _cache_lock:
        layout = _cache.get(key)
        if layout is not None:
            _cache.move_to_end(key)
            return layout
    layout = _build(content, userblock)
    if layout.reusable:
        with _cache_lock:
            _cache[key] = layout
            while len(_cache) > _CACHED_LAYOUTS:
                _cache.popitem(last=False)
    return layout


def clear_cache():
    """Forget the cached layouts (the next save of each model builds its layout again)."""
    with _cache_lock:
        _cache.clear()


def _build(content, userblock):
    image = _Image(content.nbytes + userblock + (1 << 20))
    try:
        # The default (earliest) file format keeps the file readable by every HDF5 1.8+ (old Keras too).
        with h5py.File(image, "w", userblock_size=userblock) as h5file:
            snapshot.replay(content, h5file, image.create_dataset)
        return image.layout()
    finally:
        image.close()


class _Image:
    """A file object for h5py's `fileobj` driver; `create_dataset` leaves the arrays' bytes out."""

    def __init__(self, capacity):
        self._map = mmap.mmap(-1, max(int(capacity), mmap.PAGESIZE))
        self._pos = 0
        self.size = 0
        self._slots = []   # (offset, nbytes) of each dataset, in creation order

    # -- file object protocol (what h5py's fileobj driver calls) ----------------------------------------------
    def seek(self, pos, whence=0):
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1 else self.size + pos)
        return self._pos

    def tell(self):
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        count = max(0, min(len(view), self.size - self._pos))
        view[:count] = self._map[self._pos:self._pos + count]
        self._pos += count
        return count

    def read(self, size=-1):
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        data = self._map[self._pos:max(self._pos, end)]
        self._pos += len(data)
        return data

    def write(self, data):
        data = memoryview(data).cast("B")
        end = self._pos + len(data)
        self._reserve(end)
        self._map[self._pos:end] = data
        self._pos = end
        self.size = max(self.size, end)
        return len(data)

    def truncate(self, size=None):
        size = self._pos if size is None else size
        self._reserve(size)
        if size < self.size:
            self._map[size:self.size] = bytes(self.size - size)
        self.size = size
        return size

    def flush(self):
        pass

    # -- building --------------------------------------------------------------------------------------------
    def create_dataset(self, group, name, array):
        """Create dataset `name` for `array` (C-contiguous, from the snapshot) and note where its bytes go."""
        if array.dtype.kind not in "biuf" or not array.dtype.isnative:
            group.create_dataset(name, data=array)
            self._slots.append(None)  # its bytes are inside the metadata: this layout cannot be reused
            return
        plist = h5p.create(h5p.DATASET_CREATE)
        plist.set_alloc_time(h5d.ALLOC_TIME_EARLY)   # the space (and its address) exists right away
        plist.set_fill_time(h5d.FILL_TIME_NEVER)     # ... and HDF5 does not write zeros into it
        dataset = group.create_dataset(name, shape=array.shape, dtype=array.dtype, dcpl=plist)
        if array.nbytes and dataset.id.get_storage_size() != array.nbytes:
            dataset[...] = array  # not allocated early (scalars): HDF5 allocates the space when writing
        offset = dataset.id.get_offset() if array.nbytes else None
        if array.nbytes and (offset is None or dataset.id.get_storage_size() != array.nbytes):
            self._slots.append(None)  # a layout this module does not know: HDF5 wrote the bytes
        else:
            self._slots.append((offset, array.nbytes))

    def layout(self):
        """The `Layout` of the finished file (copies the metadata bytes; the memory map can then go)."""
        reusable = None not in self._slots
        placed = sorted((slot, index) for index, slot in enumerate(self._slots) if slot and slot[1])
        pieces, slots, order, position = [], [], [], 0
        for (offset, nbytes), index in placed:
            pieces.append(self._map[position:offset])
            slots.append((offset, nbytes))
            order.append(index)
            position = offset + nbytes
        size = max(self.size, position)
        pieces.append(self._map[position:size])
        return Layout(pieces, slots, order, size, reusable)

    def close(self):
        self._map.close()

    def _reserve(self, end):
        if end <= len(self._map):
            return
        # A new map, not mmap.resize: growing a shared anonymous map leaves the new pages unbacked (SIGBUS).
        grown = mmap.mmap(-1, max(end, 2 * len(self._map)))
        grown[:self.size] = self._map[:self.size]
        self._map.close()
        self._map = grown
