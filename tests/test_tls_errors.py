"""TLS failures name their reason: real loopback TLS servers reached through ccxt by the manager.

Certificates are made per module with ``cryptography``: a self-signed one (trusted by nobody),
and a test CA with a certificate it issued for another host name, trusted the way the system's
bundle is (``$REQUESTS_CA_BUNDLE``, and requests' default bundle where that is unset).
"""
from __future__ import annotations

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.exchanges.reader import describe_error, tls_reason
from bot.views.report import build_report, report_json
from tests.conftest import FAST_SETTINGS, no_spacing
from tests.fakes import FakeKraken


def make_certificate(common_name: str, issuer=None, ca: bool = False, dns=("localhost",)):
    """(key, certificate) for ``common_name``, signed by ``issuer`` (key, certificate) or by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return key, builder.sign(signer_key, hashes.SHA256())


def write_pair(directory, stem: str, pair) -> tuple[str, str]:
    key, cert = pair
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = make_certificate("multibalance test CA", ca=True)
    return {
        "self_signed": write_pair(directory, "self", make_certificate("localhost")),
        "ca": write_pair(directory, "ca", ca)[0],
        "other_host": write_pair(directory, "other", make_certificate("other.example", issuer=ca,
                                                                      dns=("other.example",))),
    }


class TlsServer:
    """An HTTPS server on 127.0.0.1 presenting ``cert``; every request gets 404 (the tests never
    get that far: the client refuses the handshake)."""

    def __init__(self, cert: str, key: str):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "TlsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def read_error(config, managers, api_url: str) -> str:
    """The error of one Kraken account at ``api_url`` after a refresh (as ``--json`` shows it)."""
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
    config.user("alice", {"kraken": {"api_url": api_url, "api_key": "a2V5LWZvci10bHMtdGVzdHM=",
                                     "api_secret": "c2VjcmV0LWZvci10bHMtdGVzdHMtb25seQ=="}})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    [account] = report_json(build_report(manager))["accounts"]
    assert account["status"] == "error" and account["value"] is None
    return account["error"]


def test_an_untrusted_certificate(config, managers, certificates):
    with TlsServer(*certificates["self_signed"]) as server:
        error = read_error(config, managers, f"https://localhost:{server.port}")
    assert error.startswith("NetworkError: TLS certificate verify failed: self-signed certificate ("), error
    assert f"localhost:{server.port}" in error


def test_plain_http_behind_an_https_url(config, managers):
    with FakeKraken() as plain:
        error = read_error(config, managers, plain.url.replace("http://", "https://"))
    assert error.startswith("NetworkError: TLS wrong version number ("), error


def test_a_certificate_for_another_host(config, managers, certificates, monkeypatch):
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(variable, certificates["ca"])
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", certificates["ca"])
    with TlsServer(*certificates["other_host"]) as server:
        by_name = read_error(config, managers, f"https://localhost:{server.port}")
    assert by_name.startswith("NetworkError: TLS certificate verify failed: Hostname mismatch, certificate is "
                              "not valid for 'localhost'."), by_name


def test_errors_that_are_not_tls_are_described_as_before():
    error = ConnectionRefusedError(111, "Connection refused")
    assert tls_reason(error) is None
    assert describe_error(error) == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_the_reason_is_found_however_deep_it_is_wrapped():
    cause = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    try:
        try:
            raise OSError("connection broken") from cause
        except OSError as inner:
            raise RuntimeError(inner)  # wrapped in args, the way urllib3 and requests do
    except RuntimeError as outer:
        assert tls_reason(outer) == "wrong version number"
