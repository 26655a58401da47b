"""Opening HDF5 files for fastfit: atomic writing, and reading with clear errors for bad files.

Reading never executes code: configs are JSON, classes come from fastfit's registries or `custom_objects`,
and only numeric datasets are accepted (nothing is unpickled).
"""
import contextlib
import os

import h5py

from fastfit.utils import io_utils

_ZIP_MAGIC = b"PK\x03\x04"


@contextlib.contextmanager
def writing(filepath, overwrite, what):
    """Yield an `h5py.File` open for writing a temporary file that replaces `filepath` when the block ends.

    Raises:
        FileExistsError, FileNotFoundError, PermissionError, OSError: see `io_utils.atomic_path`; the previous
            file is unchanged whenever an error is raised.
    """
    with io_utils.atomic_path(filepath, overwrite=overwrite, what=what) as tmp:
        try:
            # track_order=False and the default (earliest) format keep the file readable by every HDF5 1.8+.
            with h5py.File(tmp, "w") as h5file:
                yield h5file
        except (RuntimeError, ValueError) as error:
            if "No space" in str(error) or "errno = 28" in str(error):
                raise OSError(28, f"No space left on device ({error})", filepath) from error
            raise


@contextlib.contextmanager
def reading(filepath, what):
    """Yield an `h5py.File` open read-only; turn every failure of a bad file into a clear error.

    Raises:
        TypeError: `filepath` is not a path.
        FileNotFoundError / IsADirectoryError / PermissionError: naming the path.
        ValueError: not an HDF5 file, or corrupted or truncated (the message names the file).
    """
    try:
        path = os.fspath(filepath)
    except TypeError:
        raise TypeError(f"{what}: `filepath` must be a str or path-like, got {type(filepath).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"{what}: no such file '{path}'", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"{what}: '{path}' is a folder, expected an HDF5 file", path)
    with open(path, "rb") as probe:  # PermissionError here already names the path
        head = probe.read(8)
    if head[:4] == _ZIP_MAGIC:
        raise ValueError(f"{what}: '{path}' is a zip archive (a Keras 3 '.keras' file?), not HDF5; save it from "
                         "Keras with model.save('model.h5') to get a file fastfit reads")
    try:
        if not h5py.is_hdf5(path):
            raise ValueError(f"{what}: '{path}' is not an HDF5 file (no HDF5 signature)")
        h5file = h5py.File(path, "r")
    except (OSError, RuntimeError) as error:
        raise ValueError(f"{what}: cannot open '{path}': the file is corrupted or truncated ({error})") from None
    try:
        with h5file:
            yield h5file
    except (OSError, RuntimeError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"{what}: cannot read '{path}': the file is corrupted or truncated, or not a model "
                         f"file ({type(error).__name__}: {error})") from None
