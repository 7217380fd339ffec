"""Serving the cached ``/api/users`` bytes: ETag and ``If-None-Match`` (304), gzip, and the
``/users`` page around them.

``/api/users`` is the cached `web.payloads.PayloadBody` as it is (or its cached gzip), with a
strong ETag per encoding; a request whose ``If-None-Match`` names it gets 304 and no body.

``/users`` embeds the same data in its ``initial-data`` block. Rendering the template with the
payload (Jinja's ``tojson`` of 1,000 users) cost more than everything else in the request, so
the page is rendered with a short placeholder instead (the shell: the CSRF token, the viewer),
and the cached body, escaped once per build the way ``tojson`` escapes (``< > & '`` as
``\\u00XX``), is put in its place. For gzip the cached part is also compressed once per build,
as raw deflate blocks ending on a byte boundary (``Z_SYNC_FLUSH``): each request compresses only
its shell (before and after; the part before once per session and build, see `EmbeddedJson`),
and the three pieces are one valid deflate stream in a gzip member whose CRC-32 runs over the
pieces in order. If the template does not show the placeholder
exactly once, the page is rendered the ordinary way (slower, same content).

The ETag of a page covers its shell (which holds the session's CSRF token) and the payload's
ETag, so it changes whenever either does. Responses keep ``Cache-Control: no-store`` (the app's
default, docs/api.md): the ETag serves clients that keep it themselves.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Callable

from flask import Response, request

PLACEHOLDER = "multibalance:initial-data"
_QUOTED = b'"' + PLACEHOLDER.encode() + b'"'  # what `tojson` makes of it (nothing to escape)
_HTML_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"), (b"'", b"\\u0027"))
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, OS unknown
LEVEL = 5


class EmbeddedJson:
    """A JSON body as it goes inside ``<script type="application/json">``: escaped like
    ``tojson``, and compressed as raw deflate blocks that can sit in the middle of a stream.

    `before` remembers, per page head seen with this body, the head's deflate blocks and the
    CRC-32 of head + body, so that a session's next requests of the page compress and checksum
    only their tail (the CRC of an 800 KB body was most of a gzip page request's own work). At
    most `HEADS` heads are kept (then forgotten all at once); entries are immutable values, so
    threads that race store the same thing."""

    __slots__ = ("text", "deflated", "_heads")
    HEADS = 256

    def __init__(self, raw: bytes):
        text = raw
        for needle, replacement in _HTML_ESCAPES:
            text = text.replace(needle, replacement)
        self.text = text
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.deflated = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
        self._heads: dict[bytes, tuple[bytes, int]] = {}

    def before(self, head: bytes) -> tuple[bytes, int]:
        """(``head`` as raw deflate blocks ending on a byte boundary, CRC-32 of head + text)."""
        known = self._heads.get(head)
        if known is None:
            first = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
            known = (first.compress(head) + first.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(self.text, zlib.crc32(head)))
            if len(self._heads) >= self.HEADS:
                self._heads.clear()
            self._heads[head] = known
        return known


class ShellCache:
    """Rendered page shells (``/users`` rendered with `PLACEHOLDER`) by everything the template
    reads: the viewer, the session's CSRF token, the settings shown, the script root. Rendering
    the template was half of a page request's own work, and a session asks for the same shell
    again and again. At most `SIZE` shells (then forgotten all at once); entries are immutable
    text and each operation is one dict call, so threads that race store the same thing."""

    SIZE = 256

    def __init__(self):
        self._shells: dict[tuple, str] = {}

    def get(self, key: tuple, render: Callable[[], str]) -> str:
        html = self._shells.get(key)
        if html is None:
            html = render()
            if len(self._shells) >= self.SIZE:
                self._shells.clear()
            self._shells[key] = html
        return html


def accepts_gzip() -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


def _conditional(body: bytes | tuple[bytes, ...], etag: str, mimetype: str, gzipped: bool, vary: str) -> Response:
    """200 with ``body`` (bytes, or pieces sent one after the other: no copy of a cached part),
    or 304 when ``If-None-Match`` names ``etag``; ETag and Vary on both."""
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    elif isinstance(body, tuple):
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Length"] = str(sum(map(len, body)))
    else:
        response = Response(body, mimetype=mimetype)
    if gzipped and response.status_code == 200:
        response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.headers["Vary"] = vary
    return response


def json_response(entry) -> Response:
    """``/api/users``: the cached body (`web.payloads.PayloadBody`), gzip when accepted."""
    gzipped = accepts_gzip()
    return _conditional(entry.gzip() if gzipped else entry.raw, entry.etag + ("-gz" if gzipped else ""),
                        "application/json", gzipped, "Accept-Encoding, Authorization, Cookie")


def page_response(entry, render: Callable[[object], str], scoped_body: Callable[[], dict]) -> Response:
    """``/users``: ``render(payload)`` is the template rendered with ``payload``; the page is
    rendered with `PLACEHOLDER` and the cached body spliced in (see the module docstring), or,
    if the placeholder is not found exactly once, rendered with ``scoped_body()``."""
    html = render(PLACEHOLDER).encode()
    parts = html.split(_QUOTED)
    vary = "Accept-Encoding, Authorization, Cookie"
    gzipped = accepts_gzip()
    if len(parts) != 2:
        page = render(scoped_body()).encode()
        etag = hashlib.blake2b(page, digest_size=16).hexdigest()
        return _conditional(gzip_bytes(page) if gzipped else page, etag + ("-gz" if gzipped else ""),
                            "text/html", gzipped, vary)
    head, tail = parts
    embedded = entry.page()
    digest = hashlib.blake2b(digest_size=16)
    for piece in (head, b"\0", entry.etag.encode(), b"\0", tail):
        digest.update(piece)
    etag = digest.hexdigest() + ("-gz" if gzipped else "")
    if request.if_none_match.contains_weak(etag):
        return _conditional(b"", etag, "text/html", gzipped, vary)
    body = spliced_gzip(head, embedded, tail) if gzipped else (head, embedded.text, tail)
    return _conditional(body, etag, "text/html", gzipped, vary)


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
    return b"".join((_GZIP_HEADER, deflated, struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)))


def spliced_gzip(head: bytes, middle: EmbeddedJson, tail: bytes) -> bytes:
    """One gzip member of ``head + middle.text + tail``, compressing only ``head`` and ``tail``
    (``head`` only the first time this body is sent after it: `EmbeddedJson.before`)."""
    deflated_head, crc = middle.before(head)
    last = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    size = (len(head) + len(middle.text) + len(tail)) & 0xFFFFFFFF
    return b"".join((_GZIP_HEADER, deflated_head, middle.deflated, last.compress(tail), last.flush(zlib.Z_FINISH),
                     struct.pack("<II", zlib.crc32(tail, crc), size)))
