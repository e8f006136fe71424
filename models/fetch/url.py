"""The ``Url`` source: a plain HTTP(S) download (rembg's own release assets), redirects to http(s) only."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import IO, Any

from base.edges import cut
from models.fetch.stream import MESSAGE_CHARS, SourceError, copy_hashing


class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (GitHub release assets redirect to a CDN) to http(s) only."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise SourceError(f"redirected to a non-HTTP URL {newurl}", retry=False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def describe_os_error(exc: BaseException | str, timeout_s: float) -> str:
    """One short phrase for a network error; ``timeout_s``: the read timeout, for a timeout's phrase."""
    if isinstance(exc, str):
        return exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out (no data for {timeout_s:g}s)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed mid-download"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return cut(str(exc) or type(exc).__name__, MESSAGE_CHARS)


def download_url(
    url: str, part: Path, label: str, progress: bool, *, timeout_s: float, deadline_s: float, user_agent: str
) -> str:
    """Write the URL's bytes into ``part``; return their MD5, or raise ``SourceError``.

    ``timeout_s`` bounds the connect and every single read; ``deadline_s`` the whole download.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise SourceError(f"unsupported URL scheme {scheme!r} (http/https only)", retry=False)
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    opener = urllib.request.build_opener(HttpOnlyRedirects)
    deadline = time.monotonic() + deadline_s
    try:
        # timeout bounds the connect and every single read; read1 returns after
        # at most one socket read, so the deadline check below runs regularly.
        response: Any
        with (
            opener.open(request, timeout=timeout_s) as response,
            part.open("wb") as out,
        ):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            digest, copied = copy_hashing(
                response.read1,
                out,
                total=total,
                label=label,
                progress=progress,
                deadline=deadline,
                deadline_s=deadline_s,
            )
    except urllib.error.HTTPError as exc:
        # Client errors are definitive; server errors and throttling may pass.
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise SourceError(f"HTTP {exc.code} {exc.reason}", retry=retry) from None
    except urllib.error.URLError as exc:
        raise SourceError(describe_os_error(exc.reason, timeout_s), retry=True) from None
    except (OSError, http.client.HTTPException) as exc:
        # Timeouts and resets while reading; urllib only wraps errors in URLError
        # while sending the request.
        raise SourceError(describe_os_error(exc, timeout_s), retry=True) from None
    if total is not None and copied != total:
        raise SourceError(f"connection closed after {copied} of {total} bytes", retry=True)
    return digest
