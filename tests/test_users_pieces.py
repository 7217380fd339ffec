"""The cached ``/api/users`` body serialized in pieces (`web.payloads.dumps_in_pieces`) is byte for
byte ``json.dumps``, and the ``/users`` gzip stream with a remembered page head
(`web.serving.EmbeddedJson.before`) stays one valid gzip member for every head and tail, through
the real app too (two requests of one session, and a new session)."""
from __future__ import annotations

import gzip
import json
import re
import zlib
from decimal import Decimal

import pytest

from tests.test_users_cache import TOKEN, app, context_of, write_config  # noqa: F401  (fixtures)
from web.payloads import dumps_in_pieces, scoped
from web.serving import EmbeddedJson, spliced_gzip


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@pytest.mark.parametrize("body", [
    {},
    {"users": []},
    {"a": 1, "users": [{"x": "é\u2028<script>", "n": None, "f": 0.1}, {"y": [1, 2, {"z": True}]}], "s": "\"q\""},
    {"timestamp": "2026-01-01T00:00:00Z", "users": [{"k": float("inf")}], "nested": {"users": [1, 2]}},
    {1: "an int key", "b": [1]},  # not every key a string: json.dumps's own conversion
])
def test_dumps_in_pieces_is_json_dumps(body):
    assert dumps_in_pieces(body) == compact(body)


def test_the_real_payload_in_pieces(app):  # noqa: F811
    payload = context_of(app).users_payload
    model = payload.model()
    for role in ("admin", "u00"):
        body = scoped(model, role)
        assert len(body["users"]) == (6 if role == "admin" else 1)
        assert dumps_in_pieces(body) == compact(body)
        assert payload.entry(role).raw == compact(body)


def test_a_remembered_head_still_makes_valid_members():
    middle = EmbeddedJson(json.dumps({"users": ["x" * 50] * 2000}).encode())
    heads = [b"<html><head><meta csrf=%d>" % i * 30 for i in range(3)]
    for round_ in range(2):  # the second time, every head is remembered
        for head in heads:
            for tail in (b"", b"</script></html>", b"</script>" * 300 + bytes([round_])):
                member = spliced_gzip(head, middle, tail)
                assert gzip.decompress(member) == head + middle.text + tail
                inflater = zlib.decompressobj(wbits=31)
                assert inflater.decompress(member) == head + middle.text + tail and inflater.eof
    assert len(middle._heads) == 3
    for i in range(EmbeddedJson.HEADS + 5):  # beyond the bound: forgotten, still right
        head = b"<h%d>" % i
        assert gzip.decompress(spliced_gzip(head, middle, b"t")) == head + middle.text + b"t"
    assert len(middle._heads) <= EmbeddedJson.HEADS


def test_pages_of_one_session_and_of_a_new_one(app):  # noqa: F811
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip"}
    pages = []
    for _ in range(2):
        response = client.get("/users", headers=headers)
        assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
        pages.append(gzip.decompress(response.get_data()))
    other = app.test_client().get("/users", headers=headers)
    pages.append(gzip.decompress(other.get_data()))
    for page in pages:
        data = re.search(rb'<script type="application/json" id="initial-data">(.*?)</script>', page, re.S).group(1)
        users = json.loads(data)["users"]
        assert [u["user_id"] for u in users][:1] and all(isinstance(u["total"], (int, float)) for u in users)
        assert sum(Decimal(str(u["total"])) for u in users) > 0
    assert pages[0] == pages[1]  # one session: the same shell, the same data
