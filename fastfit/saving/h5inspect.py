"""Checking and reading an HDF5 model file that may be crafted: the part of loading that touches libhdf5.

`describe` lists what a model file holds (the JSON attributes as text, the weights groups' layer and weight
names, every weight's shape and dtype) without reading any array, and checks the structure while doing so:

- every object that must be a group (`model_weights`, each listed layer, `optimizer_weights`, the
  intermediate groups of a weight name) is a group, reached through hard links only (no soft or external
  links, which could point into other files);
- every weight is a dataset inside this file: compact, contiguous or chunked layout, not virtual, no external
  raw storage, no HDF5 filter but gzip, shuffle and fletcher32 (built into libhdf5: no plugin is loaded);
  an integer or float type; a dataset without filters stores all its bytes in the file (a dataset declaring
  2**40 elements in a 6 KB file is refused before anything is read);
- attributes read as text or names are strings of bounded size.

`read_array` reads one dataset the caller asked for, after checking it again and that its shape and dtype
are the ones the caller expects (the caller checked them against the model).

This module imports only h5py, NumPy and the standard library: run as a script it is the reader child of
`fastfit.saving.isolation` (`main`), which starts without importing fastfit. Run in-process it reads files
this process wrote itself (isolation's fast path).
"""
import json
import os
import struct
import sys

import h5py
import numpy as np

# The root attributes a model file may hold as JSON text.
JSON_ATTRS = ("model_config", "training_config", "fastfit_state", "fastfit_backup")
MAX_TEXT_BYTES = 64 << 20        # one JSON attribute (a 20,000-layer config is ~10 MB)
MAX_NAMES = 1 << 20              # entries in one name list (layer_names, weight_names)
MAX_NAME_LIST_BYTES = 64 << 20
MAX_RANK = 32
# Filters libhdf5 implements itself (no plugin): deflate (gzip), shuffle, fletcher32.
ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32"}
MAX_DEFLATE_RATIO = 1100         # deflate cannot expand data more than ~1032-fold
DTYPES = frozenset(np.dtype(f"<{kind}{size}").str for kind in "fiu" for size in (1, 2, 4, 8)
                   if not (kind == "f" and size == 1))


class BadFile(ValueError):
    """The file is not a well-formed model file (the message says what is wrong, without the file name)."""


# -- structure -----------------------------------------------------------------------------------------------
def describe(h5file):
    """What the file holds, as plain JSON-able data (see module docstring); raises BadFile."""
    manifest = {"attrs": {}, "groups": {}, "optimizer": None}
    for name in JSON_ATTRS:
        if name in h5file.attrs:
            manifest["attrs"][name] = _text_attr(h5file, name)
    if _has_name_list(h5file.attrs, "layer_names"):
        manifest["groups"]["/"] = _weights_group(h5file, [])
    if "model_weights" in h5file:
        group = _member(h5file, ["model_weights"], h5py.Group)
        manifest["groups"]["model_weights"] = _weights_group(group, ["model_weights"])
    if "optimizer_weights" in h5file:
        group = _member(h5file, ["optimizer_weights"], h5py.Group)
        manifest["optimizer"] = [_weight(h5file, ["optimizer_weights"], name)
                                 for name in _name_list(group, "weight_names")]
    return manifest


def _weights_group(group, path):
    layers = []
    for layer_name in _name_list(group, "layer_names"):
        sub = _member(group, [layer_name], h5py.Group, f"layer '{layer_name}'")
        layers.append([layer_name, [_weight(group.file, path + [layer_name], name)
                                    for name in _name_list(sub, "weight_names")]])
    return {"listed": _has_name_list(group.attrs, "layer_names"), "layers": layers}


def _weight(h5file, group_path, name):
    """[name, path components, shape, dtype] of the weight dataset `name` under `group_path`."""
    parts = group_path + _split(name)
    dataset = _member(h5file, parts, h5py.Dataset, f"weight '{name}'")
    shape, dtype = _check_dataset(dataset, f"weight '{name}'")
    return [name, parts, list(shape), dtype]


def _split(name):
    parts = [part for part in name.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise BadFile(f"weight name {name!r} is not a valid dataset name")
    return parts


def _member(start, parts, kind, label=None):
    """The object at `parts` below `start`, reached through hard links only, checked to be a `kind`."""
    obj = start
    for index, part in enumerate(parts):
        label_here = label or "/".join(parts)
        if not isinstance(obj, h5py.Group):
            raise BadFile(f"{label_here}: '{'/'.join(parts[:index])}' is not a group")
        link = obj.get(part, getlink=True)
        if link is None:
            raise BadFile(f"{label_here} is listed but missing from the file")
        if not isinstance(link, h5py.HardLink):
            raise BadFile(f"{label_here}: '{'/'.join(parts[:index + 1])}' is a {type(link).__name__}, not an "
                          "object stored in this file (links to other objects or files are refused)")
        obj = obj[part]
    if not isinstance(obj, kind):
        found = type(obj).__name__.lower()
        raise BadFile(f"{label or '/'.join(parts)} must be a {kind.__name__.lower()}, found a {found}")
    return obj


def _check_dataset(dataset, label):
    """(shape, dtype string) of a weight dataset that passed the checks in the module docstring."""
    if dataset.is_virtual:
        raise BadFile(f"{label} is a virtual dataset (its data would come from other files)")
    dcpl = dataset.id.get_create_plist()
    if dcpl.get_external_count():
        raise BadFile(f"{label} keeps its data in external files (refused: only data inside the file is read)")
    layout = dcpl.get_layout()
    if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise BadFile(f"{label} has an unsupported storage layout ({layout})")
    filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    unknown = [code for code in filters if code not in ALLOWED_FILTERS]
    if unknown:
        raise BadFile(f"{label} uses HDF5 filter {unknown[0]} (only gzip, shuffle and fletcher32 are read)")
    if dataset.id.get_type().get_class() not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        raise BadFile(f"{label} is not a numeric array (found {dataset.dtype})")
    shape = dataset.shape
    if shape is None or len(shape) > MAX_RANK:
        raise BadFile(f"{label} has no usable shape ({shape})")
    dtype = dataset.dtype.newbyteorder("<") if dataset.dtype.byteorder == ">" else dataset.dtype
    if dtype.str not in DTYPES:
        raise BadFile(f"{label} is not a numeric array (found {dataset.dtype})")
    nbytes = int(np.prod(shape, dtype=object) if shape else 1) * dtype.itemsize
    stored = dataset.id.get_storage_size()
    if nbytes and not filters and stored < nbytes:
        raise BadFile(f"{label} declares shape {tuple(shape)} ({nbytes} bytes) but the file stores only "
                      f"{stored} bytes of it")
    if nbytes and filters and nbytes > stored * MAX_DEFLATE_RATIO:
        raise BadFile(f"{label} declares shape {tuple(shape)} ({nbytes} bytes) but its compressed data is only "
                      f"{stored} bytes")
    return shape, dtype.str


# -- attributes ----------------------------------------------------------------------------------------------
def _attr_info(obj, name):
    """(shape, type class, type size) of an attribute, read from its header only."""
    attr = h5py.h5a.open(obj.id, name.encode("utf-8"))
    kind = attr.get_type()
    return attr.shape, kind.get_class(), kind.get_size()


def _text_attr(obj, name):
    shape, type_class, _ = _attr_info(obj, name)
    if type_class != h5py.h5t.STRING or (shape and int(np.prod(shape)) != 1):
        raise BadFile(f"attribute '{name}' is not a text value")
    value = obj.attrs[name]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        if len(value) > MAX_TEXT_BYTES:
            raise BadFile(f"attribute '{name}' is larger than {MAX_TEXT_BYTES >> 20} MiB")
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BadFile(f"attribute '{name}' is not UTF-8 text") from None
    if not isinstance(value, str):
        raise BadFile(f"attribute '{name}' is not a text value")
    if len(value) > MAX_TEXT_BYTES:
        raise BadFile(f"attribute '{name}' is larger than {MAX_TEXT_BYTES >> 20} MiB")
    return value


def _has_name_list(attrs, name):
    return name in attrs or f"{name}0" in attrs


def _name_list(obj, name):
    """A name list attribute (whole, or split into name0, name1, ...); [] when absent or empty."""
    if name in obj.attrs:
        return _names(obj, name)
    names, index = [], 0
    while f"{name}{index}" in obj.attrs:
        names.extend(_names(obj, f"{name}{index}"))
        if len(names) > MAX_NAMES:
            raise BadFile(f"attribute '{name}' lists more than {MAX_NAMES} names")
        index += 1
    return names


def _names(obj, name):
    shape, type_class, itemsize = _attr_info(obj, name)
    count = int(np.prod(shape)) if shape else 1
    if count == 0:
        return []  # Keras 3 writes an empty float64 array for a weightless layer
    if type_class != h5py.h5t.STRING:
        raise BadFile(f"attribute '{name}' is not a list of names")
    if count > MAX_NAMES:
        raise BadFile(f"attribute '{name}' lists more than {MAX_NAMES} names")
    if count * itemsize > MAX_NAME_LIST_BYTES:
        raise BadFile(f"attribute '{name}' is larger than {MAX_NAME_LIST_BYTES >> 20} MiB")
    names = []
    for item in np.asarray(obj.attrs[name]).reshape(-1):
        if isinstance(item, (bytes, np.bytes_)):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                raise BadFile(f"attribute '{name}' holds a name that is not UTF-8") from None
        if not isinstance(item, str):
            raise BadFile(f"attribute '{name}' is not a list of names")
        names.append(item)
    return names


# -- data ----------------------------------------------------------------------------------------------------
def read_array(h5file, parts, shape, dtype):
    """The dataset at path `parts` as a C-ordered array, after checking it has `shape` and `dtype` (a
    little-endian dtype string from `describe`)."""
    label = f"weight '{'/'.join(parts)}'"
    dataset = _member(h5file, list(parts), h5py.Dataset, label)
    found_shape, found_dtype = _check_dataset(dataset, label)
    if tuple(found_shape) != tuple(shape) or found_dtype != dtype:
        raise BadFile(f"{label} changed while the file was read")
    out = np.empty(tuple(shape), dtype=np.dtype(dtype))
    if out.size:
        dataset.read_direct(out)
    return out


# -- the reader child ----------------------------------------------------------------------------------------
# Messages to the parent: 1 kind byte + 8-byte little-endian length + payload.
# J: the manifest (JSON), D: one array's raw bytes, E: an error message (UTF-8).
HEADER = struct.Struct("<cQ")


def _send(stream, kind, payload):
    stream.write(HEADER.pack(kind, len(payload)))
    stream.write(payload)
    stream.flush()


def _limit_memory(limit):
    try:
        import resource
    except ImportError:  # not POSIX: the parent's timeout still applies
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(argv):
    """The reader child: `h5inspect.py PATH MEMORY_LIMIT`. Sends the manifest, then the arrays asked for on
    stdin (one JSON request per line: {"read": [[parts, shape, dtype], ...], "memory": bytes}) until EOF."""
    path, memory = argv[1], int(argv[2])
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything libhdf5 or a warning prints must not mix with the messages
    _limit_memory(memory)
    while h5py.h5pl.size():  # no filter plugin can be loaded (only built-in filters are allowed anyway)
        h5py.h5pl.remove(0)
    try:
        with h5py.File(path, "r") as h5file:
            _send(channel, b"J", json.dumps(describe(h5file)).encode("utf-8"))
            for line in sys.stdin.buffer:
                request = json.loads(line)
                _limit_memory(int(request["memory"]))
                for parts, shape, dtype in request["read"]:
                    _send(channel, b"D", memoryview(read_array(h5file, parts, shape, dtype).reshape(-1).view(np.uint8)))
    except BadFile as error:
        _send(channel, b"E", str(error).encode("utf-8"))
    except MemoryError:
        _send(channel, b"E", b"reading it needs more memory than allowed (the file is corrupted or crafted)")
    except Exception as error:  # noqa: BLE001  libhdf5's own errors on a damaged file: reported, never raised in the parent
        _send(channel, b"E", f"{type(error).__name__}: {error}".encode("utf-8", "replace"))
    channel.close()


if __name__ == "__main__":
    main(sys.argv)
