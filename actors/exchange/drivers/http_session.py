"""The HTTP session under a sync ccxt client: the standard library's `http.client`, one
kept-alive connection per scheme, host and port, with neither `requests` nor urllib3 in
the way.

ccxt's sync `fetch` calls `session.request(...)` and reads a `requests.Response`; of
`requests.Session` it also touches `headers` and `cookies`. A client is used by one worker
thread at a time, so one connection per host is all a pool would ever hold, and urllib3's
pool cost CPU for nothing: a signed create against the paper venue took about a quarter
less client CPU here than through urllib3 (rounds of 2,000, alternating), and a bare GET
some 40-50 µs more than on a bare kept-alive `http.client` connection, against some 240.

What ccxt sees does not change: the same default headers, the answer as a
`requests.Response` (its body decoded as urllib3 decoded it; its header fields read as
RFC 9112 reads them, see `read_fields`), and failures raised as the
`requests` exceptions `requests` raises for them, so ccxt classifies them as before
(RequestTimeout, NetworkError, ...). What urllib3 took care of is kept: a connection the
server closed while idle is found before a request goes out on it, and replaced; nothing
is ever sent twice (a create must never go out a second time); a connection that failed
mid-request is dropped; TLS checks the certificate (certifi's CAs) and the host name.
Beyond urllib3, an answer larger than `max_answer_bytes`, as sent or once decoded, is
refused as a connection error, so an exchange or a proxy that misbehaves cannot make the
daemon allocate without bound.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import zlib
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import certifi
import requests
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The largest answer body read, before and after its content codings are undone: far
above any exchange's answer (binance's whole exchangeInfo is a few MB)."""
PIECE_BYTES = 64 * 1024
"""What a body of unknown length (chunked, or lasting until the server closes) is read by."""
GZIP_WBITS = 16 + zlib.MAX_WBITS
MEMBER_PIECE_BYTES = 256
"""The first piece of a gzip member after the first handed to zlib (see `inflated`)."""
NOT_ZERO = re.compile(rb"[^\x00]")
"""Where the next gzip member starts: zeros between members are skipped."""
MAX_LINE = 65536
MAX_LINES = 100
"""http.client's limits on an answer's header block: its longest line, and its most
lines, the empty one that ends it included (so 99 fields at most)."""
Address = tuple[str, str, int]
"""(scheme, host, port): what a connection is kept for."""


class LeanResponse(http.client.HTTPResponse):
    """http.client's answer, its header block read by `read_fields` instead of the email
    package's parser: about 7.5 µs for the venue's seven fields here against 37 to 42.
    In a sampling profile of a loop of creates against the venue, that parser held 23 %
    of the client's samples. `begin` is http.client's own (CPython 3.11) but for that one
    call, so a well-formed answer's body (length, chunks, `Connection: close`) is read
    as http.client reads it (tests/unit/exchange/test_http_session.py holds the two
    equal); a malformed block can frame the body differently (see `read_fields`)."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            read_fields(self.fp)  # an interim answer's fields mean nothing here
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = read_fields(self.fp)
        coding = self.headers.get("transfer-encoding")
        self.chunked = bool(coding) and coding.lower() == "chunked"
        self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:  # a negative length means none
                    self.length = None
        if (status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
                or 100 <= status < 200 or self._method == "HEAD"):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # the body lasts until the server closes


def read_fields(fp: BinaryIO) -> http.client.HTTPMessage:
    """An answer's header block up to its empty line (or the end of the stream), read as
    http.client's parser reads a well-formed one: `Name: value`, a repeated field kept
    each time. Where the block is malformed this follows RFC 9112 instead, so the fields
    (and the body's framing that depends on them) can differ from http.client's: blanks
    around a value are dropped, a folded line is joined to the value before it with one
    space, a bare CR is read as a space, and a line that is no field is skipped (the
    email parser ended the block there and dropped the fields after it)."""
    fields = http.client.HTTPMessage()
    name = value = ""
    for _ in range(MAX_LINES):
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        text = line.decode("iso-8859-1").rstrip("\r\n").replace("\r", " ")
        if text[:1] in (" ", "\t") and name:
            value = f"{value} {text.strip()}"
            continue
        if name:
            fields[name] = value
            name = ""
        if not text:
            return fields
        head, colon, rest = text.partition(":")
        if colon:
            name, value = head, rest.strip(" \t")
    raise http.client.HTTPException(f"got more than {MAX_LINES} header lines")


class KeptAliveSession:
    """What ccxt's sync `fetch` uses of a `requests.Session`, over kept-alive
    `http.client` connections.

    Unlike requests it follows no redirect: an exchange's API does not send one, and a
    create must never go out a second time to another address. Certificates are always
    checked (ccxt's per-request `verify` is its default, True: the driver never turns it
    off)."""

    def __init__(self, cafile: str | None = None,
                 max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        """`cafile`: the CA certificates trusted (default: certifi's, as requests);
        `max_answer_bytes`: the largest answer body read, as sent and once decoded."""
        if max_answer_bytes < 1:
            raise ValueError(f"max_answer_bytes must be at least 1, not {max_answer_bytes}")
        self.max_answer_bytes = max_answer_bytes
        self.headers: CaseInsensitiveDict[str] = default_headers()
        self.cookies = RequestsCookieJar()  # ccxt clears it before every request
        self._tls = ssl.create_default_context(cafile=cafile or certifi.where())
        self._tls.set_alpn_protocols(["http/1.1"])  # as urllib3 and http.client offer
        self._connections: dict[Address, http.client.HTTPConnection] = {}

    def request(self, method: str, url: str, data: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None,
                proxies: Any = None, verify: bool = True, files: Any = None,
                ) -> requests.Response:
        """One request: ccxt's arguments, answered as `requests` answers them."""
        if proxies or files:
            raise requests.exceptions.InvalidURL("proxies and multipart bodies are not "
                                                 "supported by this session")
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise requests.exceptions.InvalidURL(f"not an http(s) URL: {url!r}")
        address = (parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(address, timeout)
        try:
            connection.request(method, target, body=data, headers=headers or {})
            answer = connection.getresponse()
            content = decoded(read_body(answer, self.max_answer_bytes),
                              answer.headers.get("Content-Encoding"), self.max_answer_bytes)
        except Exception as exc:
            self._drop(address)  # in whatever state the failure left it
            raise as_requests_error(exc) from exc
        except BaseException:
            self._drop(address)
            raise
        response = requests.Response()
        response._content = content
        response.status_code = answer.status
        response.reason = answer.reason
        fields: dict[str, str] = {}  # a repeated field joined, named as first seen (urllib3)
        names: dict[str, str] = {}
        for name, value in answer.getheaders():
            first = names.setdefault(name.lower(), name)
            fields[first] = f"{fields[first]}, {value}" if first in fields else value
        response.headers = CaseInsensitiveDict(fields)
        response.url = url
        return response

    def close(self) -> None:
        for address in list(self._connections):
            self._drop(address)

    def _connection(self, address: Address,
                    timeout: float | None) -> http.client.HTTPConnection:
        """The kept-alive connection to `address` if it can carry a request, else a new
        one. Nothing has been sent yet: replacing a connection sends nothing twice."""
        kept = self._connections.get(address)
        # no socket: http.client closed it after an answer that ends the connection
        # (`Connection: close`, HTTP/1.0, a body that lasts until the server closes)
        if kept is not None and kept.sock is not None and not is_dropped(kept.sock):
            kept.sock.settimeout(timeout)
            return kept
        self._drop(address)
        scheme, host, port = address
        connection = (http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
                      if scheme == "https" else
                      http.client.HTTPConnection(host, port, timeout=timeout))
        connection.response_class = LeanResponse
        try:
            connection.connect()
        except Exception as exc:
            connection.close()
            raise as_requests_error(exc, connecting=True) from exc
        self._connections[address] = connection
        return connection

    def _drop(self, address: Address) -> None:
        connection = self._connections.pop(address, None)
        if connection is not None:
            connection.close()


def is_dropped(sock: socket.socket) -> bool:
    """urllib3's test of an idle kept-alive connection: readable while no answer is due
    means the server closed it (or sent what no request asked for): it carries no
    request."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class AnswerTooLarge(http.client.HTTPException):
    """An answer's body beyond the session's limit, as sent or once decoded."""


def read_body(answer: http.client.HTTPResponse, limit: int) -> bytes:
    """The answer's body, refused beyond `limit` bytes: a length it declares over the
    limit before anything is read, a body of unknown length as soon as it passes it."""
    if answer.length is not None:
        if answer.length > limit:
            raise AnswerTooLarge(f"an answer of {answer.length} bytes, over {limit}")
        return answer.read()
    pieces: list[bytes] = []
    size = 0
    while piece := answer.read(PIECE_BYTES):
        size += len(piece)
        if size > limit:
            raise AnswerTooLarge(f"an answer of more than {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)


def decoded(body: bytes, content_encoding: str | None,
            limit: int = MAX_ANSWER_BYTES) -> bytes:
    """`body` without the content codings ccxt accepts (`Accept-Encoding: gzip,
    deflate`), outermost first, as urllib3 decodes it (an empty body stays empty; an
    unknown coding is left as is); refused once decoding passes `limit` bytes."""
    if not content_encoding or not body:
        return body
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
        if coding in ("gzip", "x-gzip"):
            body = inflated(body, GZIP_WBITS, limit)
        elif coding == "deflate":  # zlib-wrapped as the RFC says, or raw as some send it
            try:
                body = inflated(body, zlib.MAX_WBITS, limit)
            except zlib.error:
                body = inflated(body, -zlib.MAX_WBITS, limit)
        elif coding not in ("", "identity"):
            break
    return body


def inflated(body: bytes, wbits: int, limit: int) -> bytes:
    """`body` inflated, gzip's members one after another as `gzip.decompress` reads
    them (zeros between them skipped), and no further than `limit` bytes out.

    zlib copies what is left of its input once a member ends, so the body is handed to
    it in pieces: the first member, most often the only one, in pieces of `PIECE_BYTES`,
    each later one in pieces from `MEMBER_PIECE_BYTES` up, doubling. What zlib is handed
    and copies then stays within twice the body and `MEMBER_PIECE_BYTES` a member, where
    handing it the rest of the body for each member made a body of many small members
    take time quadratic in its size (3.5 s for 2 MiB of empty members, so about an hour
    for 64 MiB)."""
    out = bytearray()
    start, end = 0, len(body)
    size = PIECE_BYTES
    while start < end:
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            if start >= end:
                raise EOFError("a compressed answer that ends before its end")
            piece = body[start:start + size]  # the body itself when it is small
            start += len(piece)
            if size < PIECE_BYTES:
                size *= 2
            out += inflater.decompress(piece, limit + 1 - len(out))
            if len(out) > limit:
                raise AnswerTooLarge(f"an answer of more than {limit} bytes once decoded")
        if wbits != GZIP_WBITS:
            break  # what follows a deflate stream is ignored, as zlib.decompress does
        start -= len(inflater.unused_data)
        if start < end:
            member = NOT_ZERO.search(body, start)
            start = member.start() if member else end
            size = MEMBER_PIECE_BYTES
    return bytes(out)


def as_requests_error(error: Exception, connecting: bool = False) -> Exception:
    """The exception `requests` raises for this failure of http.client, a socket or the
    answer's decoding (`connecting`: while opening the connection, TLS included: a TLS
    handshake that times out is a ConnectTimeout here, a ReadTimeout in urllib3; ccxt
    makes a RequestTimeout of either)."""
    if isinstance(error, TimeoutError):  # socket.timeout; ssl raises it too
        return (requests.exceptions.ConnectTimeout(error) if connecting
                else requests.exceptions.ReadTimeout(error))
    if isinstance(error, ssl.SSLError):
        # opening: the certificate or host name checks, nothing sent; after, the request
        # may have landed (a create then is looked up, never taken as refused)
        return (requests.exceptions.SSLError(error) if connecting
                else requests.exceptions.ConnectionError(error))
    if isinstance(error, http.client.InvalidURL):  # refused before anything was sent
        return requests.exceptions.InvalidURL(error)
    if isinstance(error, (http.client.HTTPException, OSError, zlib.error, EOFError)):
        # EOFError and zlib.error: an answer that came but cannot be decoded (urllib3's
        # DecodeError reached ccxt as a ConnectionError); AnswerTooLarge, an
        # HTTPException: one larger than the session reads
        return requests.exceptions.ConnectionError(error)
    return error
