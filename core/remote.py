"""Fetch an image by URL for ``GET /api/remove?url=`` without becoming a way into the network.

Off unless the ``allow_url_input`` setting is on. rembg's 2026 advisories were SSRF
(a URL to the cloud metadata service or an internal host; the same through a
redirect or DNS rebinding), so every hop is checked the same way:

* ``http`` and ``https`` only, no credentials in the URL, ports 80, 443 and
  1024-65535 only (the privileged rest belong to other protocols: SMTP, LDAP...).
* The host name is resolved once here and *every* address it resolves to must be
  public (``ipaddress``'s ``is_global``: no loopback, private, link-local - which
  includes 169.254.169.254 - shared, reserved or multicast; IPv4-mapped IPv6 is
  checked as IPv4). The connection then goes to the checked address itself, with
  the name kept for the Host header and TLS, so a second lookup (DNS rebinding)
  never happens.
* Redirects are followed by hand, at most ``MAX_REDIRECTS``, each one checked as above.
* A connect/read timeout per socket operation, a total deadline for the whole
  fetch (a body that trickles forever ends), and the upload byte limit, checked
  against Content-Length and again while reading (an endless body ends).

Failures are typed: ``UrlRefused`` (the URL or where it leads is not allowed),
``UrlFetchFailed`` (the remote end did not deliver), ``ImageTooLarge``.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from base.edges import cut, quote
from base.errors import ImageTooLarge, UrlFetchFailed, UrlRefused

MAX_REDIRECTS = 3
#: Seconds for each connect or read.
SOCKET_TIMEOUT_S = 5.0
#: Seconds for the whole fetch, redirects and body included.
DEADLINE_S = 20.0
CHUNK = 64 * 1024
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "rembg-webui (+url input)"

Resolver = Callable[[str, int], list[str]]
AddressCheck = Callable[[str], bool]


def allowed_port(port: int) -> bool:
    """80, 443 and unprivileged ports."""
    return port in (80, 443) or 1024 <= port <= 65535


def is_public(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (the default check)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlFetchFailed(f"cannot resolve {quote(host)} ({cut(exc)})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address while speaking to ``host`` (Host header)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection``, with TLS verified against ``host``'s name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _checked_target(url: str, resolver: Resolver, allowed: AddressCheck) -> tuple[str, int, str, str, bool]:
    """(host, port, address, path, tls) for ``url``, or ``UrlRefused`` saying why not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL ({cut(exc)})") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are fetched, not {quote(parts.scheme or 'a bare path')}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with credentials are not fetched")
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    tls = parts.scheme == "https"
    port = port or (443 if tls else 80)
    if not allowed_port(port):
        raise UrlRefused(f"port {port} is not fetched (80, 443 and 1024-65535 are)")
    addresses = resolver(host, port)
    if not addresses:
        raise UrlFetchFailed(f"{quote(host)} resolves to no address")
    refused = [a for a in addresses if not allowed(a)]
    if refused:
        raise UrlRefused(
            f"{quote(host)} resolves to a non-public address ({refused[0]}); only public hosts are fetched"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, addresses[0], path, tls


def fetch_url(
    url: str,
    max_bytes: int,
    *,
    resolver: Resolver = resolve,
    allowed: AddressCheck = is_public,
    deadline_s: float = DEADLINE_S,
    timeout_s: float = SOCKET_TIMEOUT_S,
) -> bytes:
    """The body of ``url`` (after checked redirects), at most ``max_bytes`` long.

    ``resolver`` and ``allowed`` are seams for tests (a loopback test server is
    not public); the service always uses the defaults.
    """
    deadline = time.monotonic() + deadline_s
    for _ in range(MAX_REDIRECTS + 1):
        host, port, address, path, tls = _checked_target(url, resolver, allowed)
        factory = _PinnedHTTPSConnection if tls else _PinnedHTTPConnection
        conn = factory(host, port, address, timeout_s)
        try:
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
                response = conn.getresponse()
                if response.status in REDIRECTS:
                    location = response.getheader("Location")
                    if not location:
                        raise UrlFetchFailed(f"the server answered {response.status} without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise UrlFetchFailed(f"the server answered {response.status} {cut(response.reason)}".rstrip())
                return _read_body(response, max_bytes, deadline)
            except (OSError, http.client.HTTPException) as exc:
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed ({type(exc).__name__}: {cut(exc)})"
                raise UrlFetchFailed(f"fetching the URL {what}") from None
        finally:
            conn.close()
    raise UrlFetchFailed(f"more than {MAX_REDIRECTS} redirects")


def _read_body(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLarge(f"the URL's image is {int(declared):,} bytes; the limit is {max_bytes:,}")
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLarge(f"the URL's image is larger than the limit of {max_bytes:,} bytes")
        if time.monotonic() > deadline:
            raise UrlFetchFailed("fetching the URL took too long")
        chunks.append(chunk)
    return b"".join(chunks)
