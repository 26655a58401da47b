"""An HDF5 file built in memory without copying its large arrays into the image.

Building a 20 MB model file in memory used to copy every array into HDF5's image (and fault in 20 MB of
fresh pages) before the image was copied again into the file. Here HDF5 writes only the metadata, into an
anonymous memory map whose untouched pages cost nothing; large numeric datasets get their space allocated
but not written (`FILL_TIME_NEVER`), and `segments` gives the file as memory-map slices interleaved with
the arrays' own buffers, so writing the file reads each array once. The bytes are those HDF5 would have
written: a contiguous dataset of the array's own (native) dtype stores the array's C-order bytes.
"""
import mmap

import h5py
import numpy as np
from h5py import h5d, h5p

# Smaller arrays go through HDF5 as usual: the saving is per byte, the bookkeeping per array.
_DIRECT_BYTES = 1 << 16


class Image:
    """A file object for h5py's `fileobj` driver that leaves the space of large arrays to `segments`."""

    def __init__(self, capacity):
        self._map = mmap.mmap(-1, max(int(capacity), mmap.PAGESIZE))
        self._pos = 0
        self.size = 0
        self._direct = []   # (file offset, contiguous array), written from the array itself

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

    # -- building and reading out ------------------------------------------------------------------------------
    def create_dataset(self, group, name, value):
        """`group.create_dataset(name, data=value)`, leaving a large numeric array's bytes out of the image."""
        array = np.asarray(value, order="C")
        if array.nbytes < _DIRECT_BYTES or array.dtype.kind not in "biuf" or not array.dtype.isnative:
            group.create_dataset(name, data=array)
            return
        plist = h5p.create(h5p.DATASET_CREATE)
        plist.set_alloc_time(h5d.ALLOC_TIME_EARLY)   # the space (and its address) exists right away
        plist.set_fill_time(h5d.FILL_TIME_NEVER)     # ... and HDF5 does not write zeros into it
        dataset = group.create_dataset(name, shape=array.shape, dtype=array.dtype, dcpl=plist)
        offset = dataset.id.get_offset()
        if offset is None or dataset.id.get_storage_size() != array.nbytes:
            dataset[...] = array  # a layout this module does not know: let HDF5 write it
        else:
            self._direct.append((offset, array))

    def segments(self, start=0):
        """The file's bytes from `start` to the end, as buffers in order (no copies)."""
        view = memoryview(self._map)
        position = start
        for offset, array in sorted(self._direct, key=lambda item: item[0]):
            end = offset + array.nbytes
            if end <= position:
                continue
            if offset > position:
                yield view[position:offset]
            yield memoryview(array.reshape(-1).view(np.uint8))[max(0, position - offset):]
            position = end
        if position < self.size:
            yield view[position:self.size]

    def close(self):
        self._direct = []
        try:
            self._map.close()
        except BufferError:  # a segment view is still alive (an error mid-write): the collector unmaps it
            pass

    def _reserve(self, end):
        if end <= len(self._map):
            return
        # A new map, not mmap.resize: growing a shared anonymous map leaves the new pages unbacked (SIGBUS).
        grown = mmap.mmap(-1, max(end, 2 * len(self._map)))
        grown[:self.size] = self._map[:self.size]
        self._map.close()
        self._map = grown


def build(fill, capacity, userblock):
    """Run `fill(h5file, image)` on a new in-memory HDF5 file; return the closed `Image`.

    Arguments:
        fill: writes the content (through `image.create_dataset` for arrays).
        capacity: expected file size in bytes (the memory map grows if it is too small).
        userblock: bytes reserved at the start of the file (HDF5 leaves them zero).
    """
    image = Image(capacity + userblock + (1 << 20))
    try:
        # The default (earliest) file format keeps the file readable by every HDF5 1.8+ (old Keras too).
        with h5py.File(image, "w", userblock_size=userblock) as h5file:
            fill(h5file, image)
        image.size = max(image.size, userblock, *(o + a.nbytes for o, a in image._direct))
    except BaseException:
        image.close()
        raise
    return image
