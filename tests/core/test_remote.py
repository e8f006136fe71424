"""The URL fetcher's SSRF guard and limits, against loopback servers started here.

A loopback server is not public, so the tests that need a fetch to get through
pass ``allowed=`` admitting 127.0.0.1 only (and ``resolver=`` to give a name an
address); everything else is the code the service runs.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from base.errors import ImageTooLarge, UrlFetchFailed, UrlRefused
from core.remote import fetch_url, is_public

BODY = b"\x89PNG pretend image bytes" * 100
LOOPBACK_ONLY: Callable[[str], bool] = lambda address: address == "127.0.0.1"  # noqa: E731


class Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]] = {}

    def do_GET(self) -> None:
        self.routes.get(self.path.split("?")[0], _not_found)(self)

    def log_message(self, *args: object) -> None:
        pass


def _not_found(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(404)
    h.send_header("Content-Length", "0")
    h.end_headers()


def _ok(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(BODY)))
    h.send_header("X-Seen-Host", h.headers["Host"])
    h.end_headers()
    h.wfile.write(BODY)


def _echo_host(h: http.server.BaseHTTPRequestHandler) -> None:
    body = h.headers["Host"].encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _redirect_to(location: str) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def _huge_declared(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(10**9))
    h.end_headers()


def _endless(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.end_headers()  # no length: read until close, which never comes
    try:
        while True:
            h.wfile.write(b"x" * 65536)
    except OSError:
        pass


def _trickle(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.end_headers()
    try:
        for _ in range(100):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_address[1]}"
    Handler.routes = {
        "/ok": _ok,
        "/host": _echo_host,
        "/to-ok": _redirect_to("/ok"),
        "/to-other-loopback": _redirect_to(f"http://127.0.0.2:{server.server_address[1]}/ok"),
        "/to-metadata": _redirect_to("http://169.254.169.254/latest/meta-data/"),
        "/to-file": _redirect_to("file:///etc/passwd"),
        "/loop": _redirect_to("/loop"),
        "/huge": _huge_declared,
        "/endless": _endless,
        "/trickle": _trickle,
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::"],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public(address)


#: IPv6 forms that embed or map a non-public IPv4 address (issue 25: the server connected to [::127.0.0.1]).
EMBEDDING_PRIVATE = [
    "::7f00:1",  # IPv4-compatible, 127.0.0.1
    "::127.0.0.1",
    "::a9fe:a9fe",  # 169.254.169.254
    "::ffff:0:7f00:1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64
    "64:ff9b::a00:1",
    "64:ff9b:1::7f00:1",  # local-use NAT64, /96 position
    "64:ff9b:1:7f00:0:100::",  # local-use NAT64, /48 position of 127.0.0.1
    "64:ff9b:1:0:a9:fea9:fe00:0",  # local-use NAT64, /64 position of 169.254.169.254
    "2002:7f00:1::1",  # 6to4
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
    "2001:0:808:404:0:0:80ff:fffe",  # Teredo, client 127.0.0.1
    "fec0::1",  # site-local
    "fed0::1",
]


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE)
def test_ipv6_forms_embedding_a_private_ipv4_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "::808:808",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:0:808:404:0:0:f7f7:f7f7",  # Teredo, server 8.8.4.4, client 8.8.8.8
    ],
)
def test_public_addresses(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/a.png", "only http and https"),
        ("gopher://127.0.0.1:70/", "only http and https"),
        ("/etc/passwd", "only http and https"),
        ("http://user:pw@example.com/a.png", "credentials"),
        ("http://example.com:25/a.png", "port 25"),
        ("http:///a.png", "no host"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_refused_before_any_connection(url: str, says: str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise AssertionError("resolved a refused URL")

    with pytest.raises(UrlRefused) as info:
        fetch_url(url, 10_000, resolver=resolver)
    assert says in info.value.message


@pytest.mark.parametrize(
    "addresses", [["127.0.0.1"], ["169.254.169.254"], ["10.0.0.7"], ["93.184.216.34", "192.168.0.1"], ["::1"]]
)
def test_any_non_public_address_refuses_the_host(addresses: list[str]) -> None:
    with pytest.raises(UrlRefused) as info:
        fetch_url("http://images.example/a.png", 10_000, resolver=lambda h, p: addresses)
    assert "non-public address" in info.value.message


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[::7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[fec0::1]"])
def test_ipv6_literals_embedding_loopback_are_refused(host: str) -> None:
    """The real resolver, the real check: no connection is tried."""
    with pytest.raises(UrlRefused, match="non-public"):
        fetch_url(f"http://{host}:8080/a.png", 10_000)


def test_real_names_of_loopback_are_refused() -> None:
    """The real resolver, the real check: localhost never gets through."""
    with pytest.raises(UrlRefused):
        fetch_url("http://localhost:8080/a.png", 10_000)


def test_fetches_a_body(base: str) -> None:
    assert fetch_url(f"{base}/ok", 10_000, allowed=LOOPBACK_ONLY) == BODY


def test_connects_to_the_checked_address_with_the_name_as_host(base: str) -> None:
    """No second DNS lookup: the socket goes to the address that was checked."""
    port = base.rsplit(":", 1)[1]
    seen: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        seen.append(host)
        return ["127.0.0.1"]

    assert fetch_url(f"http://images.example:{port}/host", 10_000, resolver=resolver, allowed=LOOPBACK_ONLY) == (
        f"images.example:{port}".encode()
    )
    assert seen == ["images.example"]


def test_redirects_are_followed_and_checked(base: str) -> None:
    assert fetch_url(f"{base}/to-ok", 10_000, allowed=LOOPBACK_ONLY) == BODY
    for path, error in (("/to-other-loopback", UrlRefused), ("/to-metadata", UrlRefused), ("/to-file", UrlRefused)):
        with pytest.raises(error):
            fetch_url(f"{base}{path}", 10_000, allowed=LOOPBACK_ONLY)
    with pytest.raises(UrlFetchFailed, match="redirects"):
        fetch_url(f"{base}/loop", 10_000, allowed=LOOPBACK_ONLY)


def test_not_found(base: str) -> None:
    with pytest.raises(UrlFetchFailed, match="404"):
        fetch_url(f"{base}/nothing", 10_000, allowed=LOOPBACK_ONLY)


def test_size_limit_from_the_header_and_while_reading(base: str) -> None:
    with pytest.raises(ImageTooLarge):
        fetch_url(f"{base}/huge", 10_000, allowed=LOOPBACK_ONLY)
    with pytest.raises(ImageTooLarge):
        fetch_url(f"{base}/endless", 1_000_000, allowed=LOOPBACK_ONLY)
    with pytest.raises(ImageTooLarge):
        fetch_url(f"{base}/ok", len(BODY) - 1, allowed=LOOPBACK_ONLY)


def test_a_trickling_body_hits_the_deadline(base: str) -> None:
    with pytest.raises(UrlFetchFailed, match="too long"):
        fetch_url(f"{base}/trickle", 10_000, allowed=LOOPBACK_ONLY, deadline_s=0.5)


class _Trickle:
    """What the trickling server saw of its last answer."""

    cut_off = threading.Event()  # the client shut the connection before the headers were all sent
    done = threading.Event()


def _trickling_headers(h: http.server.BaseHTTPRequestHandler) -> None:
    """A whole answer in the end, its headers a byte every 0.1 s for 4 s: each read is well within the timeout."""
    try:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(40):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)
        h.wfile.write(b"\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        h.wfile.flush()
    except OSError:
        _Trickle.cut_off.set()
    finally:
        h.close_connection = True
        _Trickle.done.set()


def test_trickling_headers_hit_the_same_deadline(base: str) -> None:
    """A host trickling its headers held a request 60 s past the 20 s deadline (issue 25).

    The deadline used to be checked only while reading the body, after the headers had all
    arrived; now the connection is shut at the deadline, while the headers still trickle.
    """
    Handler.routes["/trickle-headers"] = _trickling_headers
    _Trickle.cut_off.clear()
    _Trickle.done.clear()
    with pytest.raises(UrlFetchFailed, match="too long"):
        fetch_url(f"{base}/trickle-headers", 10_000, allowed=LOOPBACK_ONLY, deadline_s=1.0, timeout_s=0.5)
    _Trickle.done.wait(30)
    assert _Trickle.cut_off.is_set(), "the client read the headers to their end, past its deadline"
    # the same answer is fetched whole when the deadline allows it
    assert fetch_url(f"{base}/trickle-headers", 10_000, allowed=LOOPBACK_ONLY, deadline_s=30, timeout_s=2) == BODY


def test_a_silent_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(UrlFetchFailed, match="timed out"):
            fetch_url(f"http://127.0.0.1:{listener.getsockname()[1]}/", 10_000, allowed=LOOPBACK_ONLY, timeout_s=0.5)
    finally:
        listener.close()


@pytest.mark.parametrize(
    "url",
    ["x" * 100_000 + "://example.com/a.png", "http://" + "a" * 100_000 + ".example/a.png"],
    ids=["scheme", "host"],
)
def test_messages_quote_a_long_url_short(url: str) -> None:
    """A 100 KB URL is not echoed back whole (hardening: at most ~100 characters of the input)."""
    with pytest.raises((UrlRefused, UrlFetchFailed)) as info:
        fetch_url(url, 10_000, resolver=lambda h, p: ["127.0.0.1"])
    assert len(info.value.message) < 300, len(info.value.message)
