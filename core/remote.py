"""Fetch an image by URL for ``GET /api/remove?url=`` without becoming a way into the network.

Off unless the ``allow_url_input`` setting is on. rembg's 2026 advisories were SSRF
(a URL to the cloud metadata service or an internal host; the same through a
redirect or DNS rebinding), so every hop is checked the same way:

* ``http`` and ``https`` only, no credentials in the URL, ports 80, 443 and
  1024-65535 only (the privileged rest belong to other protocols: SMTP, LDAP...).
* The host name is resolved once here and *every* address it resolves to must be
  public (``ipaddress``'s ``is_global``: no loopback, private, link-local - which
  includes 169.254.169.254 - shared, reserved or multicast). An IPv6 address that
  embeds or maps an IPv4 one (IPv4-compatible ``::a.b.c.d``, IPv4-mapped and
  -translated, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``,
  Teredo ``2001::/32``) is judged by the IPv4 addresses it embeds, every one of which
  must be public: on a network that routes NAT64 or 6to4, ``64:ff9b::7f00:1`` is
  127.0.0.1. Site-local ``fec0::/10`` (deprecated, still routed inside some sites) is
  refused. The connection then goes to the checked address itself, with
  the name kept for the Host header and TLS, so a second lookup (DNS rebinding)
  never happens.
* Redirects are followed by hand, at most ``MAX_REDIRECTS``, each one checked as above.
* A connect/read timeout per socket operation, and one deadline for the whole fetch,
  redirects included, over connect, TLS, response headers and body alike: past it the
  socket is shut from a timer, so a host that trickles its headers a byte at a time
  holds a request no longer than one that trickles its body. The name lookup is the
  system resolver's, bounded by its own timeouts. The upload byte limit is checked
  against Content-Length and again while reading (an endless body ends).

Failures are typed: ``UrlRefused`` (the URL or where it leads is not allowed),
``UrlFetchFailed`` (the remote end did not deliver), ``ImageTooLarge``.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from base.edges import cut, quote
from base.errors import ImageTooLarge, UrlFetchFailed, UrlRefused

#: What every edge answers for an image URL while the ``allow_url_input`` setting is off.
URL_INPUT_OFF = "fetching images by URL is turned off (allow_url_input)"
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


_V6 = ipaddress.IPv6Network
#: IPv6 ranges whose last 32 bits are an IPv4 address: IPv4-compatible (deprecated), IPv4-mapped,
#: IPv4-translated (SIIT), and NAT64's well-known prefix.
_LAST_32 = (_V6("::/96"), _V6("::ffff:0:0/96"), _V6("::ffff:0:0:0/96"), _V6("64:ff9b::/96"))
#: NAT64 for local use (RFC 8215): the operator picks the prefix length inside it, so every RFC 6052
#: position an IPv4 address can take there is checked.
_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
_SITE_LOCAL = _V6("fec0::/10")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses that ``ip`` embeds or maps (every candidate), or None when it embeds none."""
    b = ip.packed

    def v4(raw: bytes) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(raw)

    if any(ip in net for net in _LAST_32):
        return [v4(b[12:16])]
    if ip in _NAT64_LOCAL:  # RFC 6052 formats of a /48, /56, /64 and /96 prefix (bits 64-71 are zero)
        return [v4(b[6:8] + b[9:11]), v4(b[7:8] + b[9:12]), v4(b[9:13]), v4(b[12:16])]
    if ip in _SIX_TO_FOUR:
        return [v4(b[2:6])]
    if ip in _TEREDO and ip.teredo is not None:
        return list(ip.teredo)  # the Teredo server and the client's (de-obfuscated) address
    return None


def _global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (the default check).

    An IPv6 address embedding IPv4 ones is public only when every one of them is.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _SITE_LOCAL:
            return False
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return all(_global(v4) for v4 in embedded)
    return _global(ip)


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
    """The body of ``url`` (after checked redirects), at most ``max_bytes`` long, within ``deadline_s``.

    ``resolver`` and ``allowed`` are seams for tests (a loopback test server is
    not public); the service always uses the defaults.
    """
    deadline = time.monotonic() + deadline_s
    too_long = f"fetching the URL took too long (more than {deadline_s:g} s)"
    for _ in range(MAX_REDIRECTS + 1):
        host, port, address, path, tls = _checked_target(url, resolver, allowed)
        left = deadline - time.monotonic()
        if left <= 0:
            raise UrlFetchFailed(too_long)
        factory = _PinnedHTTPSConnection if tls else _PinnedHTTPConnection
        conn = factory(host, port, address, min(timeout_s, left))
        # Per-operation timeouts do not bound a host that sends a byte just within each one:
        # at the deadline the socket is shut, and whatever read was waiting on it ends.
        expired = threading.Event()
        timer = threading.Timer(left, _shut, args=(conn, expired))
        timer.daemon = True
        timer.start()
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
                body = _read_body(response, max_bytes, deadline)
                if expired.is_set():  # shut mid-body: what was read may look whole but is not
                    raise UrlFetchFailed(too_long)
                return body
            except (OSError, http.client.HTTPException) as exc:
                if expired.is_set():
                    raise UrlFetchFailed(too_long) from None
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed ({type(exc).__name__}: {cut(exc)})"
                raise UrlFetchFailed(f"fetching the URL {what}") from None
        finally:
            timer.cancel()
            conn.close()
    raise UrlFetchFailed(f"more than {MAX_REDIRECTS} redirects")


def _shut(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The deadline's timer: end every read and write on ``conn``'s socket (a blocked one returns at once)."""
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


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
            raise UrlFetchFailed("fetching the URL took too long")  # the timer shuts the socket too
        chunks.append(chunk)
    return b"".join(chunks)
