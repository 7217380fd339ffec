"""Slow and oversized answers: the transport faults ``trickle``, ``hang`` and ``huge_body``.

They are injected like the other faults (``fake.inject("trickle", api_key)`` for private calls,
``fake.inject_public("hang")`` for public ones). The request goes through the usual checks and
handler (so nonces are consumed and records written as for a normal answer); then, instead of
one ``send``, the request handler thread writes:

  trickle    the normal answer: status line and headers at once (exact Content-Length), then the
             body one byte every ``fake.trickle_interval`` seconds (default 0.1).
  hang       nothing: the connection stays open, unanswered, until the client closes it or the
             fake stops (then it is closed without an answer).
  huge_body  HTTP 200, ``Content-Length: fake.huge_body_size`` (default 20 MiB), a valid JSON
             object (``{"pad":"xxxx..."}``) streamed in 64 KiB chunks as fast as the client reads.

Each one ends in a ``TransportEvent`` (``fake.transport_events``): ``start``/``end`` are
``time.monotonic()`` (like ``CallRecord``), ``bytes_sent`` the body bytes written, ``outcome``
"complete", "client_closed" (the client hung up: its total deadline or body cap worked) or
"stopped" (``fake.stop()``). These writes are not "in flight" for the overlap rule: the request's
``CallRecord`` ends when the slow write begins.

Locking: the writer holds no lock while it writes or waits; it takes ``fake.lock`` only to append
its event. ``_stopping.wait`` interrupts every wait when the fake stops.
"""
from __future__ import annotations

import select
import socket
import time
from typing import NamedTuple, Optional

__all__ = ["TRANSPORT_FAULTS", "TransportEvent", "write_transport"]

TRANSPORT_FAULTS = ("trickle", "hang", "huge_body")
_CHUNK = 64 * 1024
_POLL = 0.02


class TransportEvent(NamedTuple):
    fault: str
    path: str
    ip: str
    start: float
    end: float
    bytes_sent: int
    outcome: str


def _client_closed(sock) -> bool:
    """True if the peer has closed (EOF or reset); pending request bytes are not a close."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _head(handler, status: int, content_type: str, length: int, headers: Optional[dict]) -> bytes:
    head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            % (status, handler.responses.get(status, ("",))[0], content_type, length))
    if headers:
        head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    return head.encode("latin-1") + b"Connection: close\r\n\r\n"


def write_transport(handler, fake, req, resp) -> None:
    """Write ``resp`` the slow or huge way its ``transport`` says; record the event."""
    sock = handler.connection
    start = time.monotonic()
    sent, outcome = 0, "complete"
    handler.close_connection = True
    try:
        if resp.transport == "hang":
            outcome = "stopped"
            while not fake._stopping.wait(_POLL):
                if _client_closed(sock):
                    outcome = "client_closed"
                    break
        elif resp.transport == "trickle":
            handler.wfile.write(_head(handler, resp.status, resp.content_type, len(resp.body),
                                      resp.headers))
            for i in range(len(resp.body)):
                if fake._stopping.wait(fake.trickle_interval):
                    outcome = "stopped"
                    break
                if _client_closed(sock):
                    outcome = "client_closed"
                    break
                handler.wfile.write(resp.body[i:i + 1])
                sent += 1
        else:  # huge_body
            size = int(fake.huge_body_size)
            handler.wfile.write(_head(handler, 200, "application/json", size, resp.headers))
            prefix, suffix = b'{"pad":"', b'"}'
            pad = size - len(prefix) - len(suffix)
            handler.wfile.write(prefix)
            sent = len(prefix)
            block = b"x" * _CHUNK
            while pad > 0:
                if fake._stopping.is_set():
                    outcome = "stopped"
                    break
                n = min(pad, _CHUNK)
                handler.wfile.write(block[:n])
                sent += n
                pad -= n
            else:
                handler.wfile.write(suffix)
                sent += len(suffix)
    except OSError:              # BrokenPipe / ConnectionReset: the client gave up
        outcome = "client_closed"
    event = TransportEvent(resp.transport, req.path, req.client_ip, start, time.monotonic(),
                           sent, outcome)
    with fake.lock:
        fake._transport_events.append(event)
