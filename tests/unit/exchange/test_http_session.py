"""The binance driver's HTTP session: failures reach ccxt as the classes `requests` gave,
so an exchange error is classified as it was (a refused connection is not a timeout);
a kept-alive connection is reused while it can be, replaced when the server closed it,
dropped after a failure; no request goes out twice, no redirect is followed."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import http.client
import io
import random
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from ccxt.base.errors import NetworkError, RequestTimeout

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.drivers.http_session import (
    MEMBER_PIECE_BYTES,
    AnswerTooLarge,
    KeptAliveSession,
    LeanResponse,
    as_requests_error,
    decoded,
)
from tests.helpers import free_port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    closing.set()
    listener.close()
    for conn in accepted:
        conn.close()


def client_at(url: str) -> Any:
    return build_binance(DriverSettings("key", "secret", api_url=url, timeout_ms=200))


def test_the_driver_uses_the_kept_alive_session() -> None:
    assert isinstance(client_at("http://127.0.0.1:1").session, KeptAliveSession)


def test_a_refused_connection_is_a_network_error_not_a_timeout() -> None:
    client = client_at(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NetworkError) as raised:
        client.fetch_time()
    assert not isinstance(raised.value, RequestTimeout)


def test_an_answer_that_never_comes_is_a_timeout(silent_server: str) -> None:
    with pytest.raises(RequestTimeout):
        client_at(silent_server).fetch_time()


class ScriptedServer(ThreadingHTTPServer):
    """An HTTP/1.1 server answering `{"serverTime": 1}`, the nth request as `plan[n]` says
    (default "answer"); it counts the requests it read, the connections it accepted and
    those it closed."""

    daemon_threads = True

    def __init__(self, plan: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.plan = plan
        self.received: list[str] = []
        self.accepted = 0
        self.closed = 0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.changed:
            self.closed += 1
            self.changed.notify_all()

    def wait_closed(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.closed >= count, timeout=5)


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ScriptedServer

    def setup(self) -> None:
        super().setup()
        with self.server.changed:
            self.server.accepted += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.serve()

    def do_POST(self) -> None:
        self.serve()

    def serve(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.changed:
            index = len(self.server.received)
            self.server.received.append(f"{self.command} {self.path}")
        plan = self.server.plan
        action = plan[index] if index < len(plan) else "answer"
        if action in ("drop", "stall"):  # no answer: at once, or after the client gave up
            if action == "stall":
                self.server.stopping.wait(10)
            self.close_connection = True
            return
        if action == "redirect":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action in ANSWERS:
            self.answer(*ANSWERS[action])
            return
        if action == "http10":
            self.protocol_version = "HTTP/1.0"
        body = b'{"serverTime": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if action == "connection_close":
            self.send_header("Connection", "close")
        if action in ("gzip", "bad_gzip"):
            body = gzip.compress(body) if action == "gzip" else b"not gzip at all"
            self.send_header("Content-Encoding", "gzip")
        if action == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:9], body[9:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        if action in ("idle_close", "http10"):  # closes once answered, having said nothing
            self.close_connection = True

    def answer(self, fields: dict[str, str], body: bytes) -> None:
        """`body` as it is, after the given fields (no Content-Length unless given)."""
        self.send_response(200)
        for name, value in fields.items():
            self.send_header(name, value)
        self.end_headers()
        if fields.get("Transfer-Encoding") == "chunked":
            for start in range(0, len(body), 1000):
                piece = body[start:start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)


BOMB = gzip.compress(b"0" * 2_000_000)
ANSWERS: dict[str, tuple[dict[str, str], bytes]] = {
    "huge_length": ({"Content-Length": str(10**14)}, b'{"serverTime": 1}'),
    "long_chunked": ({"Transfer-Encoding": "chunked"}, b"x" * 10_000),
    "long_length": ({"Content-Length": "10000"}, b"x" * 10_000),
    "gzip_bomb": ({"Content-Length": str(len(BOMB)), "Content-Encoding": "gzip"}, BOMB),
    "empty_deflate": ({"Content-Length": "0", "Content-Encoding": "deflate"}, b""),
}
"""Answers of a size the session must refuse, and an empty compressed one."""


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*plan: str) -> ScriptedServer:
        server = ScriptedServer(list(plan))
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def create(session: KeptAliveSession, url: str, timeout: float = 5) -> requests.Response:
    """A POST as ccxt sends a create."""
    return session.request("POST", url + "/api/v3/order", data=b"symbol=SOLUSD&side=BUY",
                           headers={"Content-Type": "application/x-www-form-urlencoded"},
                           timeout=timeout)


def test_a_connection_the_server_closed_while_idle_is_replaced_and_nothing_sent_twice(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted("idle_close", "idle_close", "idle_close")
    session = KeptAliveSession()
    for count in (1, 2, 3):
        answer = create(session, server.url)
        assert (answer.status_code, answer.json()) == (200, {"serverTime": 1})
        server.wait_closed(count)  # the kept-alive connection is now closed, idle
    assert server.received == ["POST /api/v3/order"] * 3
    assert server.accepted == 3


@pytest.mark.parametrize("closing", ["connection_close", "http10"])
def test_an_answer_that_closes_the_connection_leads_to_a_fresh_one(
        scripted: Callable[..., ScriptedServer], closing: str) -> None:
    server = scripted(closing, "answer", "answer")
    session = KeptAliveSession()
    for _ in range(3):
        assert create(session, server.url).json() == {"serverTime": 1}
    assert len(server.received) == 3
    assert server.accepted == 2  # one for the closing answer, one kept for the next two


def test_a_kept_alive_connection_carries_the_next_requests(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    session = KeptAliveSession()
    for _ in range(3):
        create(session, server.url)
    assert (len(server.received), server.accepted) == (3, 1)


def test_a_connection_dropped_without_an_answer_is_a_network_error_and_nothing_is_resent(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted("answer", "drop")
    client = client_at(server.url)
    client.fetch_time()
    with pytest.raises(NetworkError) as raised:
        client.fetch_time()
    assert not isinstance(raised.value, RequestTimeout)
    assert isinstance(raised.value.__cause__, requests.exceptions.ConnectionError)
    assert len(server.received) == 2
    assert client.fetch_time() == 1  # on a new connection
    assert (len(server.received), server.accepted) == (3, 2)


def test_a_read_timeout_is_a_request_timeout_and_the_connection_is_not_reused(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted("answer", "stall")
    client = client_at(server.url)
    client.fetch_time()
    with pytest.raises(RequestTimeout) as raised:
        client.fetch_time()
    assert isinstance(raised.value.__cause__, requests.exceptions.ReadTimeout)
    assert client.fetch_time() == 1
    assert (len(server.received), server.accepted) == (3, 2)


def test_a_kept_alive_connection_waits_as_long_as_the_request_says(
        scripted: Callable[..., ScriptedServer]) -> None:
    """The timeout is each request's own, also on a connection an earlier request with
    another timeout opened: a stalled answer is a ReadTimeout after it."""
    server = scripted("answer", "stall")
    session = KeptAliveSession()
    create(session, server.url, timeout=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        create(session, server.url, timeout=0.2)
    assert (len(server.received), server.accepted) == (2, 1)


def test_a_refused_connection_is_a_connection_error_before_anything_is_sent() -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        create(KeptAliveSession(), f"http://127.0.0.1:{free_port()}")
    assert not isinstance(raised.value, requests.exceptions.Timeout)


def test_a_connection_not_accepted_in_time_is_a_connect_timeout() -> None:
    """A listener whose backlog is full drops further SYNs (Linux): connecting hangs."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    held: list[socket.socket] = []
    try:
        for _ in range(10):
            probe = socket.socket()
            held.append(probe)
            probe.settimeout(0.2)
            try:
                probe.connect(listener.getsockname())
            except TimeoutError:
                break
        else:
            pytest.skip("this system does not leave a connection hanging on a full backlog")
        with pytest.raises(requests.exceptions.ConnectTimeout):
            create(KeptAliveSession(), url, timeout=0.2)
        with pytest.raises(RequestTimeout):
            client_at(url).fetch_time()
    finally:
        for sock in held:
            sock.close()
        listener.close()


@pytest.mark.parametrize("coding", ["chunked", "gzip"])
def test_chunked_and_compressed_answers_are_read_whole(
        scripted: Callable[..., ScriptedServer], coding: str) -> None:
    server = scripted(coding, coding)
    client = client_at(server.url)
    assert client.fetch_time() == 1
    assert client.fetch_time() == 1
    assert server.accepted == 1


def test_an_answer_that_cannot_be_decoded_is_a_network_error_not_a_rejection(
        scripted: Callable[..., ScriptedServer]) -> None:
    """It came: the request went out, and may have done what it asked."""
    server = scripted("bad_gzip")
    with pytest.raises(NetworkError):
        client_at(server.url).fetch_time()


def test_an_answer_declaring_a_huge_length_is_a_network_error_and_is_not_read(
        scripted: Callable[..., ScriptedServer]) -> None:
    """10^14 bytes declared: refused before any buffer is made for them; the next request
    goes out on a fresh connection."""
    server = scripted("huge_length", "answer")
    client = client_at(server.url)
    with pytest.raises(NetworkError) as raised:
        client.fetch_time()
    assert isinstance(raised.value.__cause__, requests.exceptions.ConnectionError)
    assert isinstance(raised.value.__cause__.__cause__, AnswerTooLarge)
    assert client.fetch_time() == 1
    assert (len(server.received), server.accepted) == (2, 2)


@pytest.mark.parametrize("action", ["long_chunked", "gzip_bomb"])
def test_an_answer_beyond_the_limit_as_sent_or_decoded_is_refused(
        scripted: Callable[..., ScriptedServer], action: str) -> None:
    """10,000 bytes in chunks of unknown total, or 2 MB inflated from 2 KB, against a
    limit of 1,000."""
    server = scripted(action, "answer")
    session = KeptAliveSession(max_answer_bytes=1000)
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        create(session, server.url)
    assert isinstance(raised.value.__cause__, AnswerTooLarge)
    assert create(session, server.url).json() == {"serverTime": 1}
    assert server.accepted == 2


@pytest.mark.parametrize("action", ["long_chunked", "long_length"])
def test_an_answer_of_the_limit_is_read_and_one_byte_more_is_refused(
        scripted: Callable[..., ScriptedServer], action: str) -> None:
    """10,000 bytes, in chunks or of a declared length: read whole under a limit of
    10,000, on one kept-alive connection; refused under a limit of 9,999."""
    server = scripted(action, action, action)
    session = KeptAliveSession(max_answer_bytes=10_000)
    for _ in range(2):
        assert create(session, server.url).content == b"x" * 10_000
    assert server.accepted == 1
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        create(KeptAliveSession(max_answer_bytes=9_999), server.url)
    assert isinstance(raised.value.__cause__, AnswerTooLarge)


def test_a_limit_below_one_byte_is_refused() -> None:
    for limit in (0, -1):
        with pytest.raises(ValueError, match="max_answer_bytes must be at least 1"):
            KeptAliveSession(max_answer_bytes=limit)


def test_an_empty_compressed_answer_is_empty_as_urllib3_reads_it(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted("empty_deflate", "answer")
    session = KeptAliveSession()
    answer = create(session, server.url)
    assert (answer.status_code, answer.content) == (200, b"")
    assert create(session, server.url).json() == {"serverTime": 1}
    assert server.accepted == 1


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


JSON = b'{"serverTime": 1, "pad": "%s"}' % random.Random(0).randbytes(100_000).hex().encode()
"""An answer of 200 kB, some 110 kB compressed: more than a piece inflated at once."""


@pytest.mark.parametrize(("body", "coding"), [
    (gzip.compress(JSON), "gzip"),
    (gzip.compress(JSON), "X-Gzip"),
    (gzip.compress(JSON[:7]) + b"\0" * 3 + gzip.compress(JSON[7:]) + b"\0", "gzip"),
    (gzip.compress(b"") * 3 + gzip.compress(JSON) + gzip.compress(b""), "gzip"),
    (zlib.compress(JSON), "deflate"),
    (zlib.compress(JSON) + b"trailing", "deflate"),
    (raw_deflate(JSON), "deflate"),
    (raw_deflate(JSON) + b"trailing", "deflate"),
    (zlib.compress(gzip.compress(JSON)), "gzip, deflate"),
    (gzip.compress(JSON), "identity, gzip"),
    (JSON, "identity"),
    (JSON, None),
])
def test_a_compressed_answer_is_decoded_as_gzip_and_zlib_decode_it(
        body: bytes, coding: str | None) -> None:
    """Members one after another, zeros between them skipped, as `gzip.decompress`;
    what follows a deflate stream ignored, as `zlib.decompress`; codings undone from the
    last; a body of exactly the limit read."""
    assert decoded(body, coding) == JSON
    assert decoded(body, coding, len(JSON)) == JSON
    if coding in ("identity", None):
        return  # nothing inflated: the limit on what was sent is `read_body`'s
    with pytest.raises(AnswerTooLarge):
        decoded(body, coding, len(JSON) - 1)


@pytest.mark.parametrize(("body", "coding"), [
    (gzip.compress(JSON)[:-1], "gzip"),
    (gzip.compress(JSON)[:70_000], "gzip"),
    (gzip.compress(JSON) + gzip.compress(JSON)[:-9], "gzip"),
    (zlib.compress(JSON)[:-1], "deflate"),
    (raw_deflate(JSON)[:-1], "deflate"),
    (gzip.compress(JSON) + b"\n", "gzip"),
])
def test_a_truncated_compressed_answer_is_a_connection_error(body: bytes,
                                                            coding: str) -> None:
    """Not the part of it that came, which could be taken for the whole."""
    with pytest.raises((EOFError, zlib.error)) as raised:
        decoded(body, coding)
    assert isinstance(as_requests_error(raised.value), requests.exceptions.ConnectionError)


def test_many_gzip_members_are_inflated_in_time_linear_in_the_body(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib copies what is left of its input when a member ends: handed the rest of the
    body for each member, 2 MiB of empty members took 3.5 s, and 64 MiB would take about
    an hour. Counted, not timed: what zlib is handed stays within twice the body and a
    piece a member."""
    members = 2_001
    body = gzip.compress(b"") * (members - 1) + gzip.compress(b"{}")
    handed = 0
    make = zlib.decompressobj

    class Counted:
        def __init__(self, wbits: int) -> None:
            self.inflater = make(wbits)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            nonlocal handed
            handed += len(data)
            return self.inflater.decompress(data, max_length)

        @property
        def eof(self) -> bool:
            return self.inflater.eof

        @property
        def unused_data(self) -> bytes:
            return self.inflater.unused_data

    monkeypatch.setattr(zlib, "decompressobj", Counted)
    assert decoded(body, "gzip") == b"{}"
    assert handed <= 2 * len(body) + MEMBER_PIECE_BYTES * members


def test_proxies_and_files_are_refused() -> None:
    session = KeptAliveSession()
    for extra in ({"proxies": {"https": "http://proxy:3128"}}, {"files": (("a", "b"),)}):
        with pytest.raises(requests.exceptions.InvalidURL):
            session.request("GET", "http://127.0.0.1:1/", **extra)


def test_a_redirect_is_not_followed(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted("redirect")
    answer = create(KeptAliveSession(), server.url)
    assert (answer.status_code, answer.headers["location"]) == (307, "/elsewhere")
    assert server.received == ["POST /api/v3/order"]


@pytest.fixture
def tls_server(tmp_path: Path,
               scripted: Callable[..., ScriptedServer]) -> tuple[ScriptedServer, str]:
    """A ScriptedServer speaking TLS with a certificate for `localhost` only, signed by a
    CA of its own, and that CA's file."""
    ca_file, cert_file, key_file = make_certificates(tmp_path)
    server = scripted()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server, ca_file


def test_tls_checks_the_certificate_and_keeps_the_connection(
        tls_server: tuple[ScriptedServer, str]) -> None:
    server, ca_file = tls_server
    session = KeptAliveSession(cafile=ca_file)
    for _ in range(3):
        answer = create(session, f"https://localhost:{server.server_address[1]}")
        assert answer.json() == {"serverTime": 1}
    assert (len(server.received), server.accepted) == (3, 1)


def test_a_certificate_of_an_unknown_ca_is_refused(
        tls_server: tuple[ScriptedServer, str]) -> None:
    port = tls_server[0].server_address[1]
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        create(KeptAliveSession(), f"https://localhost:{port}")  # certifi's CAs only


def test_a_certificate_for_another_host_is_refused(
        tls_server: tuple[ScriptedServer, str]) -> None:
    server, ca_file = tls_server
    port = server.server_address[1]
    with pytest.raises(requests.exceptions.SSLError, match="match"):
        create(KeptAliveSession(cafile=ca_file), f"https://127.0.0.1:{port}")


def make_certificates(folder: Path) -> tuple[str, str, str]:
    """(CA certificate, certificate for `localhost` it signed, that one's key) files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(name: str, key: Any, issuer: str, signer: Any, ca: bool,
                    extensions: list[Any]) -> Any:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                  critical=True))
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("test CA", ca_key, "test CA", ca_key, True, [
        x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                      data_encipherment=False, key_agreement=False, key_cert_sign=True,
                      crl_sign=True, encipher_only=False, decipher_only=False),
        x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())])
    leaf = certificate("localhost", key, "test CA", ca_key, False, [
        x509.SubjectAlternativeName([x509.DNSName("localhost")]),
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())])
    pem = serialization.Encoding.PEM
    files = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    files[0].write_bytes(ca.public_bytes(pem))
    files[1].write_bytes(leaf.public_bytes(pem))
    files[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(files[0]), str(files[1]), str(files[2])


def test_a_tls_failure_after_the_request_went_out_may_have_landed() -> None:
    """Only a TLS failure while connecting (nothing sent) is an SSLError, which ccxt
    takes for an exchange's refusal; one on a connection that carried the request is a
    ConnectionError, so a create is looked up rather than taken as rejected."""
    failure = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]")
    assert isinstance(as_requests_error(failure, connecting=True),
                      requests.exceptions.SSLError)
    after = as_requests_error(failure)
    assert isinstance(after, requests.exceptions.ConnectionError)
    assert not isinstance(after, requests.exceptions.SSLError)


@pytest.fixture
def answering() -> Iterator[Callable[[bytes], str]]:
    """A server that reads one request and sends the given bytes as its answer, exactly
    as written (header blocks `http.server` would not write)."""
    listeners: list[socket.socket] = []

    def start(answer: bytes) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            try:
                conn = listener.accept()[0]
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    received = conn.recv(65536)
                    if not received:
                        return  # the client went before asking
                    request += received
                with contextlib.suppress(OSError):  # the client may go while it is sent
                    conn.sendall(answer)
                    conn.recv(1)  # until the client goes

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener in listeners:
        listener.close()


def test_the_answers_header_fields_are_read_as_sent(
        answering: Callable[[bytes], str]) -> None:
    """A repeated field joined, a folded line unfolded, a line that is no field skipped
    without losing the fields after it, an interim 100 answer passed over."""
    url = answering(
        b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\n"
        b"Content-Type: application/json\r\n"
        b"x-mbx-used-weight-1m: 6001\r\n"
        b"Retry-After:  7 \r\n"
        b"X-Folded: first\r\n \t second\r\n"
        b"this line is no field\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        b"Content-Length: 2\r\n\r\n{}")
    session = KeptAliveSession()
    answer = create(session, url)
    session.close()
    assert (answer.status_code, answer.reason, answer.content) == (
        429, "Too Many Requests", b"{}")
    assert dict(answer.headers) == {
        "Content-Type": "application/json", "x-mbx-used-weight-1m": "6001",
        "Retry-After": "7", "X-Folded": "first second", "Set-Cookie": "a=1, b=2",
        "Content-Length": "2"}
    assert answer.headers["X-MBX-USED-WEIGHT-1M"] == "6001"


def fields(count: int) -> bytes:
    """`count` header fields, the answer's length among them."""
    return b"Content-Length: 2\r\n" + b"".join(b"X-Field-%d: 1\r\n" % n
                                               for n in range(count - 1))


@pytest.mark.parametrize("block", [
    b"X-Long: " + b"a" * 70_000 + b"\r\n" + fields(1),
    fields(100),  # with the empty line after them, 101 lines
])
def test_a_header_block_beyond_http_clients_limits_is_a_network_error(
        answering: Callable[[bytes], str], block: bytes) -> None:
    url = answering(b"HTTP/1.1 200 OK\r\n" + block + b"\r\n{}")
    with pytest.raises(NetworkError) as raised:
        client_at(url).fetch_time()
    assert isinstance(raised.value.__cause__, requests.exceptions.ConnectionError)


def test_a_header_block_at_http_clients_limits_is_read(
        answering: Callable[[bytes], str]) -> None:
    url = answering(b"HTTP/1.1 200 OK\r\n" + fields(99) + b"\r\n{}")
    session = KeptAliveSession()
    answer = create(session, url)
    session.close()
    assert (answer.content, len(answer.headers)) == (b"{}", 99)


class Recorded:
    """A socket that has received `data` and holds nothing more."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


WELL_FORMED = [
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
     "POST"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "GET"),
    (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}", "GET"),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", "GET"),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n{}", "GET"),
    (b"HTTP/1.1 204 No Content\r\nX-Mbx-Used-Weight-1m: 3\r\n\r\n", "DELETE"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 418 I'm a teapot\r\nRetry-After: 60\r\n"
     b"Content-Length: 2\r\n\r\n{}", "POST"),
    (b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", "GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD"),
    (b"HTTP/1.1 429 Too Many Requests\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
     b"Content-Length: 2\r\n\r\n{}", "GET"),
]


@pytest.mark.parametrize(("data", "method"), WELL_FORMED)
def test_a_well_formed_answer_is_read_as_http_client_reads_it(data: bytes,
                                                              method: str) -> None:
    """LeanResponse's `begin` is a copy of http.client's: held equal, so a later Python
    whose http.client frames answers otherwise shows here."""
    def read(kind: type[http.client.HTTPResponse]) -> tuple[Any, ...]:
        answer = kind(Recorded(data), method=method)  # type: ignore[arg-type]
        answer.begin()
        return (answer.version, answer.status, answer.reason, answer.chunked,
                answer.length, answer.will_close, answer.getheaders(), answer.read())

    assert read(LeanResponse) == read(http.client.HTTPResponse)
