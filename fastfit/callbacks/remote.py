"""`RemoteMonitor`: POST each epoch's logs to an HTTP server (standard library only)."""
from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from fastfit.callbacks.base import Callback


def _plain(value):
    """Numpy scalars/arrays as Python numbers/lists, so the payload is JSON."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


class RemoteMonitor(Callback):
    """Sends `{'epoch': epoch, **logs}` to `root + path` with an HTTP POST at every epoch end.

    A server that is down, slow (longer than `timeout`) or answers with an HTTP error costs one
    `UserWarning` naming `root` for that epoch; training never stops or hangs because of it.

    Arguments:
        root: server root URL, e.g. 'http://localhost:9000'.
        path: path appended to `root`.
        field: form field holding the JSON text (form-encoded body; ignored with `send_as_json`).
        headers: dict of extra HTTP headers.
        send_as_json: send the JSON object itself as the body (`Content-Type: application/json`).
        timeout: seconds to wait for the server (finite, > 0; fastfit addition, default 5).

    Raises:
        TypeError: `root`, `path` or `field` not strings, `headers` not a dict. ValueError: bad `timeout`.
    """

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/", field: str = "data",
                 headers: dict[str, str] | None = None, send_as_json: bool = False, timeout: float = 5.0) -> None:
        super().__init__()
        for name, value in (("root", root), ("path", path), ("field", field)):
            if not isinstance(value, str):
                raise TypeError(f"RemoteMonitor: `{name}` must be a str, got {type(value).__name__} {value!r}")
        if headers is not None and not isinstance(headers, dict):
            raise TypeError(f"RemoteMonitor: `headers` must be a dict or None, got {type(headers).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ValueError(f"RemoteMonitor: `timeout` must be a finite number of seconds > 0, got {timeout!r}")
        self.root = root
        self.path = path
        self.field = field
        self.headers = dict(headers or {})
        self.send_as_json = bool(send_as_json)
        self.timeout = float(timeout)
        self._pending: threading.Thread | None = None  # the thread of the last POST

    def _request(self, epoch, logs):
        send = {"epoch": epoch}
        send.update((key, _plain(value)) for key, value in logs.items())
        headers = dict(self.headers)
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("utf-8")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return urllib.request.Request(self.root + self.path, data=body, headers=headers, method="POST")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # The POST runs in a daemon thread joined for at most `timeout`: socket timeouts bound each read, not a
        # server that drips its answer, and training must never wait on the network longer than `timeout`.
        if self._pending is not None and self._pending.is_alive():
            warnings.warn(f"Warning: RemoteMonitor root server at {self.root} has not answered the previous "
                          f"epoch yet; epoch {epoch} is not sent", UserWarning, stacklevel=2)
            return
        try:
            request = self._request(epoch, logs or {})
        except ValueError as exc:  # a malformed URL
            warnings.warn(f"Warning: could not reach RemoteMonitor root server at {self.root} ({exc})",
                          UserWarning, stacklevel=2)
            return
        outcome: list[Any] = []
        self._pending = threading.Thread(target=self._post, args=(request, outcome), daemon=True,
                                         name="fastfit-RemoteMonitor")
        self._pending.start()
        self._pending.join(self.timeout)
        if self._pending.is_alive():
            outcome.append(f"Warning: could not reach RemoteMonitor root server at {self.root} (no answer "
                           f"within {self.timeout:g} s)")
        if outcome:
            warnings.warn(outcome[0], UserWarning, stacklevel=2)

    def _post(self, request, outcome):
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            outcome.append(f"Warning: RemoteMonitor root server at {self.root} answered HTTP {exc.code} "
                           f"({exc.reason})")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError, refused connections and timeouts are OSErrors.
            outcome.append(f"Warning: could not reach RemoteMonitor root server at {self.root} ({exc})")
