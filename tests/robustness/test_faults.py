"""Faults: callbacks that raise, Ctrl-C during an epoch, a bad RemoteMonitor server, an unwritable folder."""
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fastfit import callbacks

from .helpers import assert_trains, data, model

X, LABELS, ONEHOT = data()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Boom(Exception):
    pass


HOOKS = ["on_train_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end", "on_epoch_end", "on_train_end",
         "on_test_begin", "on_test_batch_end"]


@pytest.mark.parametrize("hook", HOOKS)
def test_callback_exception_reaches_caller_and_model_stays_usable(core, hook):
    net = model(core)
    error = Boom("from " + hook)
    calls = []

    def fail(*args, **kwargs):
        calls.append(hook)
        if len(calls) == 2 or hook in ("on_train_begin", "on_train_end", "on_test_begin"):
            raise error

    callback = callbacks.Callback()
    setattr(callback, hook, fail)
    with pytest.raises(Boom) as caught:
        net.fit(X, ONEHOT, batch_size=4, epochs=3, verbose=0, validation_split=0.25, callbacks=[callback])
    assert caught.value is error
    assert all(np.isfinite(w).all() for w in net.get_weights())
    assert_trains(net)
    np.testing.assert_array_equal(net.predict(X).shape, (len(X), 3))


def test_evaluate_and_predict_callback_exceptions(core):
    net = model(core)

    class Fails(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            raise Boom("test")

        def on_predict_batch_end(self, batch, logs=None):
            raise Boom("predict")

    with pytest.raises(Boom, match="test"):
        net.evaluate(X, ONEHOT, batch_size=4, verbose=0, callbacks=[Fails()])
    with pytest.raises(Boom, match="predict"):
        net.predict(X, batch_size=4, callbacks=[Fails()])
    assert_trains(net)


# -- Ctrl-C ----------------------------------------------------------------------------------------------------------
SIGINT_CHILD = """
import json, sys
import numpy as np
import fastfit
from fastfit import callbacks
from fastfit.layers import Dense
from fastfit.models import Sequential

engine, batch_hook, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
fastfit.utils.set_random_seed(0)
rng = np.random.default_rng(0)
# epochs of a second or more on either engine (the Cython loop checks for signals every 0.25 s)
n, batch_size = (500000, 1) if engine == "cython" else (20000, 8)
x = rng.normal(size=(n, 16)).astype("float32")
y = np.eye(4, dtype="float32")[rng.integers(0, 4, n)]
net = Sequential([Dense(64, input_dim=16, activation="relu"), Dense(4, activation="softmax")])
net.compile("adam", "categorical_crossentropy", engine=engine)
events = {"train_end": False, "epochs_ended": 0, "batches": 0}

class Watch(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            print("ready", flush=True)
    def on_epoch_end(self, epoch, logs=None):
        events["epochs_ended"] += 1
    def on_train_end(self, logs=None):
        events["train_end"] = True

class Count(callbacks.Callback):
    def on_batch_end(self, batch, logs=None):
        events["batches"] += 1

try:
    net.fit(x, y, batch_size=batch_size, epochs=10000, verbose=0,
            callbacks=[Watch()] + ([Count()] if batch_hook else []))
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
steps = -(-len(x) // batch_size)
net.save_weights(out)
again = Sequential([Dense(64, input_dim=16, activation="relu"), Dense(4, activation="softmax")])
again.load_weights(out)
same = all(np.array_equal(a, b) for a, b in zip(net.get_weights(), again.get_weights()))
print(json.dumps(dict(events, outcome=outcome, iterations=net.optimizer.iterations, steps=steps, same=same,
                      finite=all(bool(np.isfinite(w).all()) for w in net.get_weights()))), flush=True)
"""


@pytest.mark.parametrize("batch_hook", [False, True], ids=["no-batch-hook", "batch-hook"])
def test_sigint_during_epoch_stops_cleanly(core, batch_hook, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SIGINT_CHILD)
    child = subprocess.Popen([sys.executable, str(script), core, "1" if batch_hook else "0",
                              str(tmp_path / "w.h5")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.05)  # inside epoch 0 (an epoch is thousands of batches)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "KeyboardInterrupt"
    assert result["train_end"] is True
    assert result["finite"] and result["same"]
    # Stopped inside epoch 0 (its on_epoch_end never ran), after whole batches only.
    assert result["epochs_ended"] == 0
    assert 0 <= result["iterations"] < result["steps"]
    if batch_hook:  # the interrupt may land inside the last batch's on_batch_end, after its update
        assert result["iterations"] - 1 <= result["batches"] <= result["iterations"]


# -- RemoteMonitor ---------------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "500":
            self.send_response(500)
            self.end_headers()
        elif self.mode == "slow":
            time.sleep(3)
            self.send_response(200)
            self.end_headers()
        elif self.mode == "drip":  # answers at once, then sends its body one byte at a time
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    servers = []

    def start(mode):
        handler = type("Handler", (_Handler,), {"mode": mode})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"
    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"



@pytest.mark.parametrize("mode", ["down", "500", "slow", "drip"])
def test_remote_monitor_bad_server_does_not_stop_training(core, server, mode):
    if mode == "drip" and core == "python":
        pytest.skip("engine-independent; one engine is enough for this liveness check")
    root = _closed_port_url() if mode == "down" else server(mode)
    net = model(core)
    result = {}

    def run():
        try:
            with pytest.warns(UserWarning) as record:
                result["history"] = net.fit(X, ONEHOT, epochs=2, verbose=0,
                                            callbacks=[callbacks.RemoteMonitor(root=root, timeout=0.5)])
            result["warnings"] = [str(w.message) for w in record]
        except BaseException as error:  # reported below, in the test thread
            result["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=6)  # a bound on liveness (2 epochs x timeout 0.5 s), not a timing measurement
    assert not worker.is_alive(), f"training hung on a RemoteMonitor server that is {mode}"
    assert "error" not in result, result.get("error")
    assert len(result["history"].history["loss"]) == 2
    assert any(root in text for text in result["warnings"])


# -- a folder that becomes unwritable -------------------------------------------------------------------------------
READONLY_CHILD = """
import json, os, sys
import numpy as np
import fastfit
from fastfit import callbacks
from fastfit.layers import Dense
from fastfit.models import Sequential

folder, engine = sys.argv[1], sys.argv[2]
os.makedirs(folder)
path = os.path.join(folder, "checkpoint.h5")
fastfit.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 4)).astype("float32")
y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
net = Sequential([Dense(5, input_dim=4, activation="tanh"), Dense(3, activation="softmax")])
net.compile("sgd", "categorical_crossentropy", engine=engine)
saved = {}

class LockFolder(callbacks.Callback):  # runs before the checkpoint: epoch 2's save meets a read-only folder
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os.chmod(folder, 0o555)

class Remember(callbacks.Callback):  # runs after the checkpoint: the weights that epoch 1's file holds
    def on_epoch_end(self, epoch, logs=None):
        saved.setdefault(epoch, net.get_weights())

result = {}
try:
    net.fit(x, y, epochs=3, verbose=0, callbacks=[LockFolder(), callbacks.ModelCheckpoint(path), Remember()])
    result["error"] = None
except OSError as error:
    result["error"] = type(error).__name__
    result["message"] = str(error)
os.chmod(folder, 0o755)
again = Sequential([Dense(5, input_dim=4, activation="tanh"), Dense(3, activation="softmax")])
again.load_weights(path)
result["previous_intact"] = all(np.array_equal(a, b) for a, b in zip(saved[0], again.get_weights()))
result["files"] = sorted(os.listdir(folder))
net.fit(x, y, epochs=1, verbose=0)
result["still_trains"] = all(bool(np.isfinite(w).all()) for w in net.get_weights())
print(json.dumps(result))
"""


def test_read_only_checkpoint_folder(core, tmp_path):
    """The second save fails with a clear OSError naming the path; the first checkpoint is intact."""
    command = [sys.executable, "-c", READONLY_CHILD, str(tmp_path / "ckpt"), core]
    if os.geteuid() == 0:  # root ignores permissions: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a folder read-only")
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] + command
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] == "PermissionError"
    assert "checkpoint.h5" in result["message"] or "ckpt" in result["message"]
    assert result["previous_intact"]
    assert result["files"] == ["checkpoint.h5"]  # no temporary file left behind
    assert result["still_trains"]
