"""Where Keras keeps the data sets it downloads, and finding a local copy there (fastfit never downloads)."""
from __future__ import annotations

import os


def keras_cache_dirs(subdir: str = "datasets") -> list[str]:
    """Keras's cache folders for `subdir`, in the order they are searched: `$KERAS_HOME/<subdir>` (tf.keras's
    variable, when set), then `~/.keras/<subdir>` (Keras 2's and tf.keras's default)."""
    folders = []
    if os.environ.get("KERAS_HOME"):
        folders.append(os.path.join(os.environ["KERAS_HOME"], subdir))
    folders.append(os.path.join(os.path.expanduser("~"), ".keras", subdir))
    return folders


def find_local(name: str | os.PathLike, subdir: str, loader: str, url: str) -> str:
    """The path of `name` as given or in Keras's cache folders for `subdir`.

    Raises:
        FileNotFoundError: in none of them; the message names every place looked and where to get the file.
    """
    name = os.fspath(name)
    candidates = [name] + [os.path.join(folder, name) for folder in keras_cache_dirs(subdir)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    places = " or ".join(repr(c) for c in candidates[1:])
    raise FileNotFoundError(f"{loader}: no file {name!r} here or at {places}. fastfit does not download data; "
                            f"fetch {url} (e.g. with curl -O) and put it in {candidates[-1].rsplit(os.sep, 1)[0]!r} "
                            "or pass its path")
