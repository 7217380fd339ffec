"""RFC 9457 problem details: every error of the app as ``application/problem+json``.

`problem(status, detail, type_=..., **extensions)` builds the response; `ApiProblem` is an
exception carrying one (raise it from a view); `register(app)` turns every HTTPException
(unknown routes, 405, 401, ...) and every unhandled exception (500) into a problem body. A 500
says only "Internal Server Error": the exception is logged, never sent (no stack trace, no
message that could carry a secret).

Every request has a trace id (`trace_id()`): the caller's ``X-Request-ID`` when it is a short
plain token (letters, digits, ``.``, ``_``, ``-``; at most 64), else a new random UUID
(`new_trace_id`). It is in
every problem body (``trace_id``), in the ``X-Request-ID`` header of every response, and in the
one log line per request (logger ``web.request``: method, path without the query string,
status, duration, trace id; never a header, a token or a query value). That line is INFO for an
error (status 400 or more) or a request slower than `SLOW_REQUEST_MS`, DEBUG otherwise: at
hundreds of requests a second, an INFO line per served page was a tenth of the request's work
and buried the lines that matter (``--log-level DEBUG`` shows them all).
"""
from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from http import HTTPStatus

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
request_log = logging.getLogger("web.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

SLOW_REQUEST_MS = 1000.0

PROBLEM_JSON = "application/problem+json"
ABOUT_BLANK = "about:blank"
# Problem types more specific than their status (relative URIs, resolved against the server).
INVALID_PARAMETER = "/problems/invalid-parameter"
RATE_LIMITED = "/problems/rate-limited"
CSRF_FAILED = "/problems/csrf-failed"
HOST_NOT_ALLOWED = "/problems/host-not-allowed"


def trace_id() -> str:
    """This request's trace id (see the module docstring), chosen on first use."""
    current = g.get("trace_id")
    if current is None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        current = g.trace_id = sent if _REQUEST_ID.fullmatch(sent) else new_trace_id()
    return current


def new_trace_id() -> str:
    """A random version-4 UUID from the process's pseudo-random generator. A trace id names a
    request in logs, it guards nothing, so it need not come from the OS: `uuid.uuid4` reads
    ``os.urandom``, a system call that gives up the interpreter lock, and under load each
    request then waited for the lock to come back (milliseconds) just to name itself."""
    return str(uuid.UUID(int=_random_bits(128), version=4))


_random_bits = random.getrandbits  # thread-safe (one C call under the GIL); reseeded in a forked child


def problem(status: int, detail: str | None = None, type_: str = ABOUT_BLANK, title: str | None = None,
            headers: dict | None = None, **extensions) -> Response:
    phrase = HTTPStatus(status).phrase
    body = {"type": type_, "title": title or phrase, "status": status,
            "detail": detail or phrase, "instance": request.path if request else None}
    body.update(extensions)
    body["trace_id"] = trace_id()
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class ApiProblem(Exception):
    """Raise from a view to answer with a problem body."""

    def __init__(self, status: int, detail: str, type_: str = ABOUT_BLANK, title: str | None = None,
                 headers: dict | None = None, **extensions):
        super().__init__(detail)
        self.status, self.detail, self.type, self.title = status, detail, type_, title
        self.headers, self.extensions = headers or {}, extensions

    def response(self) -> Response:
        return problem(self.status, self.detail, self.type, self.title, self.headers, **self.extensions)


def bad_parameter(name: str, detail: str) -> ApiProblem:
    """400 for one bad query parameter (named in ``invalid_params``, RFC 9457 §3.2's example)."""
    return ApiProblem(400, detail, INVALID_PARAMETER, "Invalid parameter",
                      invalid_params=[{"name": name, "reason": detail}])


_DETAILS = {
    404: "No such resource.",
    405: "This method is not allowed on this resource.",
    401: "A valid token is required.",
}


def _start() -> None:
    g.started = time.perf_counter()
    trace_id()


def _finish(response: Response) -> Response:
    trace = trace_id()
    response.headers[REQUEST_ID_HEADER] = trace
    if response.mimetype == PROBLEM_JSON and not response.direct_passthrough:
        _stamp(response, trace)
    started = g.get("started")
    millis = 0.0 if started is None else (time.perf_counter() - started) * 1000
    level = logging.INFO if response.status_code >= 400 or millis >= SLOW_REQUEST_MS else logging.DEBUG
    if request_log.isEnabledFor(level):
        request_log.log(level, "%s %s %d %.1fms trace_id=%s", request.method, request.path, response.status_code,
                        millis, trace)
    return response


def _stamp(response: Response, trace: str) -> None:
    """Add ``trace_id`` to a problem body built elsewhere (`bot.app.ops` serves the monitor too)."""
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return
    if isinstance(body, dict) and "trace_id" not in body:
        body["trace_id"] = trace
        response.set_data(json.dumps(body))


def register(app: Flask) -> None:
    """Problem bodies for every error, and the trace id's hooks. Call it before registering
    other before_request hooks, so that a problem they raise already has its trace id."""
    app.before_request(_start)
    app.after_request(_finish)

    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem):
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        if status >= 500:
            return problem(status, headers=headers)
        return problem(status, _DETAILS.get(status, HTTPStatus(status).description), headers=headers)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        log.error("unhandled %s in %s %s trace_id=%s", type(exc).__name__, request.method, request.path,
                  trace_id(), exc_info=exc)
        return problem(500)
