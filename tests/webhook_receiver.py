"""A loopback webhook receiver for the alert tests: a real HTTP server on 127.0.0.1.

``WebhookReceiver(mode)``: "ok" answers 204 and records each JSON body; "error" answers 500;
"hang" holds every request open until `release()` (or stop), like a receiver that stopped
answering. `wait_for(predicate, timeout)` polls the recorded bodies with a deadline.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self._lock = threading.Lock()  # guards `bodies`, `arrivals`, `attempts`
        self.bodies: list = []
        self.arrivals: list[float] = []   # time.monotonic() of each recorded body
        self.attempts = 0
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._lock:
                    receiver.attempts += 1
                if receiver.mode == "hang":
                    receiver._released.wait(30)
                    return
                if receiver.mode == "error":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.arrivals.append(time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook/secret-token"

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        self._released.set()

    def received(self) -> list:
        with self._lock:
            return list(self.bodies)

    def wait_for(self, predicate, timeout: float = 10.0) -> list:
        """The bodies once ``predicate(bodies)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            bodies = self.received()
            if predicate(bodies):
                return bodies
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver never saw the expected bodies; got {bodies!r}")
            time.sleep(0.01)


def refused_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
