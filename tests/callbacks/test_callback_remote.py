"""RemoteMonitor against a local http.server on 127.0.0.1: form and JSON bodies, headers, failures."""
import http.server
import json
import socket
import threading
import time
import urllib.parse

import numpy as np
import pytest

from fastfit.callbacks import RemoteMonitor

from callback_helpers import FakeModel, run_epochs


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        if self.server.delay:
            time.sleep(self.server.delay)
        try:
            self.send_response(self.server.status)
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.received, httpd.status, httpd.delay = [], 200, 0
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.root = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_form_encoded_post(server):
    monitor = RemoteMonitor(root=server.root, headers={"X-Run": "7"})
    run_epochs([monitor], FakeModel(), [0.5, 0.25], extra={"acc": np.float32(0.75), "vec": np.arange(2)})
    assert len(server.received) == 2
    path, headers, body = server.received[1]
    assert path == "/publish/epoch/end/"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded" and headers["X-Run"] == "7"
    payload = json.loads(urllib.parse.parse_qs(body.decode())["data"][0])
    assert payload == {"epoch": 1, "loss": 1.0, "val_loss": 0.25, "acc": 0.75, "vec": [0, 1]}


def test_json_post_ignores_field(server):
    monitor = RemoteMonitor(root=server.root, path="/p", field="ignored", send_as_json=True)
    run_epochs([monitor], FakeModel(), [0.5])
    path, headers, body = server.received[0]
    assert path == "/p" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"epoch": 0, "loss": 1.0, "val_loss": 0.5}


def test_http_error_status_warns_and_training_continues(server):
    server.status = 500
    with pytest.warns(UserWarning, match=f"{server.root}.*500"):
        assert run_epochs([RemoteMonitor(root=server.root)], FakeModel(), [0.5, 0.4]) == 2


def test_slow_server_costs_at_most_the_timeout(server):
    server.delay = 2.0
    with pytest.warns(UserWarning, match=f"could not reach RemoteMonitor root server at {server.root}"):
        assert run_epochs([RemoteMonitor(root=server.root, timeout=0.2)], FakeModel(), [0.5]) == 1


def test_dead_server_warns_naming_the_root():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = f"http://127.0.0.1:{port}"
    with pytest.warns(UserWarning, match=f"could not reach RemoteMonitor root server at {root}"):
        assert run_epochs([RemoteMonitor(root=root, timeout=1)], FakeModel(), [0.5, 0.4]) == 2
    with pytest.warns(UserWarning, match="not-a-url"):
        run_epochs([RemoteMonitor(root="not-a-url")], FakeModel(), [0.5])


@pytest.mark.parametrize("kwargs, error", [
    (dict(root=5), TypeError), (dict(headers=[("a", "b")]), TypeError), (dict(timeout=0), ValueError),
    (dict(timeout=float("inf")), ValueError), (dict(timeout=None), ValueError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        RemoteMonitor(**kwargs)
