"""The HTTP guard in front of every route, REST and Gradio alike: bytes, time, logins, callers, shutdown.

``Guard`` is an ASGI middleware on the app Gradio serves (``app.create`` hands it over
with the REST routes). Per request, before the route reads anything:

- shutting down (``GuardState.draining``): new work is refused with 503, while running
  jobs, their result streams and downloads go on;
- ``/api/remove``, the API description (``/openapi.json``, ``/docs``, ``/redoc``) and every
  MCP route (``/gradio_api/mcp/...``: its ``initialize``, ``tools/list`` and schema showed
  the tools to anyone) check HTTP Basic credentials first, when a login is set; failed logins, there and on Gradio's
  ``/login``, are counted per client address (``LoginLimiter``) and refused with 429 past
  the limit;
- ``Content-Length`` over the route's limit is 413 at once; a body without one is counted
  while it streams and cut off at the limit with 413: the route never sees the bytes past
  it, so nothing is spooled. The limit is ``max_upload_bytes`` (``max_batch_bytes`` on
  Gradio's upload route, where the page sends a gallery's files in one request) plus
  ``FRAMING_BYTES`` for the multipart framing and the form's text fields;
- Gradio's upload route also has a disk quota across requests (``upload_quota_bytes``): what
  its folder holds now, plus every upload body being received, may not pass it; an upload
  that would is 507 at once (from its ``Content-Length``), or as soon as its streamed bytes
  pass it, before they are written;
- a body that stops arriving for ``read_timeout_s`` is answered 408; a client that hangs up
  mid-body, or is cut off, is ended inside the route by the multipart parser's own
  exception, so that Gradio's upload route deletes its temporary files instead of leaving
  them (and a traceback) behind;
- Gradio's internal events (the WebUI's own handlers, the Benchmark run: every event with
  ``api_visibility="private"``) answer only callers that loaded the page: the page's
  response sets a cookie (``PAGE_COOKIE``), and ``/gradio_api/queue/join`` with an internal
  ``fn_index`` but without it is 403. The named endpoints (``/remove_background``...) stay
  open to every client. A script can still load the page first, as a browser does; what
  the cookie stops is calling the WebUI's heavy handlers blind, by number, from
  ``gradio_client``.

FastAPI's own validation failures (a body that does not fit a route's model) are answered
by ``validation_failed``: 422 in the one error shape, naming the fields but never echoing
the values (FastAPI's handler echoes them, and fails with a 500 on a number out of JSON's
range such as ``1e999999``). The guard's answers on Gradio's routes carry the one error
shape too, with ``detail`` beside it, which is where Gradio's clients look.

Each refusal is one log line with the request's id (``X-Request-Id``). ``guarded_protocol``
adds what an ASGI app cannot see: a client must send a request's headers within
``read_timeout_s`` (uvicorn has no such timeout, so a slowloris connection stayed open).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.bodies import BadBody, normalised_fn_index, parse_json_object
from api.logins import BasicAuth, LoginLimiter
from base.edges import cut, error_body, request_id

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Room for a form's framing and text fields on top of the file it carries.
FRAMING_BYTES = 64 * 1024
#: The scope key under which the request's id travels to the routes (``api.rest`` logs with it).
REQUEST_ID = "rembg.request_id"
#: Set in the scope when the guard answered for the route (the route's own answer is dropped).
ANSWERED = "rembg.answered"
PAGE_COOKIE = "rembg-page"
UPLOAD_PATH = "/gradio_api/upload"
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
LOGIN_PATHS = frozenset({"/login", "/login/"})
MCP_PREFIX = "/gradio_api/mcp"
#: Gradio's routes that start a job by name or number.
_GRADIO_JOB_PREFIXES = ("/gradio_api/call/", "/gradio_api/run/", "/gradio_api/api/")
#: Long-lived streams that end by themselves once their events are done; a drain waits for the
#: events (``pending_jobs``), not for these.
_STREAMS = (
    "/gradio_api/queue/data",
    "/gradio_api/heartbeat/",
    "/gradio_api/upload_progress",
    "/gradio_api/dev/",
    "/gradio_api/mcp/",
)


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's ``RequestValidationError`` as 422 in the one error shape, naming fields, never values."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    said = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}" for error in errors[:5]
    )
    message = cut(f"the request does not fit the route ({said or 'invalid'})", 300)
    rid = request.scope.get(REQUEST_ID, "")
    log.info("request %s: %s %s: refused: %s", rid, request.method, request.url.path, message)
    headers = {"X-Request-Id": rid} if rid else None
    return JSONResponse({**error_body("invalid_request", message), "detail": message}, 422, headers)


@dataclass
class GuardState:
    """What the guard is configured with, and what it counts (shared with ``app.py``)."""

    max_body_bytes: int
    upload_body_bytes: int
    read_timeout_s: float
    auth: BasicAuth
    logins: LoginLimiter
    #: Gradio's internal events, by ``fn_index`` and by name (set once the Blocks exist).
    internal_fns: frozenset[int] = frozenset()
    internal_names: frozenset[str] = frozenset()
    draining: bool = False
    #: Requests in progress, the long-lived streams (``_STREAMS``) left out.
    active: int = 0
    page_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    #: Disk Gradio's uploads may take, in all (0: no quota), what they take now, and the upload bodies
    #: being received now.
    upload_quota_bytes: int = 0
    upload_usage: Callable[[], int] = lambda: 0
    uploading: int = 0
    #: Told when an upload has ended, so that ``upload_usage`` counts what it stored.
    upload_ended: Callable[[], None] = lambda: None
    #: The requests in progress (streams left out), and the loop that serves them, for ``abandon``.
    open: set[_Request] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None

    def page_token(self) -> str:
        return hmac.new(self.page_secret, b"page", "sha256").hexdigest()[:32]

    def is_page(self, headers: dict[str, str]) -> bool:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - http.cookies raises its own CookieError on junk
            return False
        morsel = cookie.get(PAGE_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value, self.page_token())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _is_rest(path: str) -> bool:
    return path.startswith("/api/")


def _is_new_work(method: str, path: str) -> bool:
    if path == "/api/remove":
        return method in ("GET", "POST")
    if method != "POST":
        return False
    return path in ("/gradio_api/queue/join", UPLOAD_PATH) or path.startswith(_GRADIO_JOB_PREFIXES)


class Guard:
    """The ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, state: GuardState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted = not scope["path"].startswith(_STREAMS)
        if counted:
            self.state.active += 1
        request: _Request | None = None
        self.state.loop = self.state.loop or asyncio.get_running_loop()
        try:
            request = _Request(self.state, scope, receive, send)
            if counted:
                self.state.open.add(request)
            await request.run(self.app)
        finally:
            if request is not None:
                self.state.open.discard(request)
            if request is not None and request.counted_upload:
                self.state.upload_ended()  # its file is on disk now (or deleted): usage is read again
                self.state.uploading -= request.counted_upload
            if counted:
                self.state.active -= 1


class _Request:
    """One request through the guard."""

    def __init__(self, state: GuardState, scope: Scope, receive: Receive, send: Send) -> None:
        self.state = state
        self.scope = scope
        self.receive = receive
        self.send = send
        self.rid = request_id()
        scope[REQUEST_ID] = self.rid
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = _headers(scope)
        self.client = _client(scope)
        self.limit = state.upload_body_bytes if self.path == UPLOAD_PATH else state.max_body_bytes
        self.received = 0
        self.quota_used = 0  # what the folder held when this upload began (when there is a quota)
        self.counted_upload = 0  # of this body, in ``state.uploading``
        self.body_done = False
        self.started = False  # the response has started (ours or the route's)
        self.answered = False  # the guard answered; the route's answer is dropped

    def note(self, what: str) -> None:
        log.info("request %s: %s %s from %s: %s", self.rid, self.method, self.path, self.client, what)

    async def answer(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """The guard's own answer: REST's JSON error shape on REST routes, Gradio's ``detail`` elsewhere."""
        headers = {**(headers or {}), "X-Request-Id": self.rid}
        if not self.body_done:
            headers["Connection"] = "close"  # the rest of the body is not read
        response: Response
        if _is_rest(self.path) or self.path in DOCS_PATHS:
            response = JSONResponse(error_body(code, message), status, headers)
        elif self.path == UPLOAD_PATH:
            response = PlainTextResponse(message, status, headers)
        else:  # Gradio's clients read ``detail``
            response = JSONResponse({**error_body(code, message), "detail": message}, status, headers)
        self.answered = True
        self.scope[ANSWERED] = True
        if not self.started:
            self.started = True
            await response(self.scope, self.receive, self.send)

    # The guard's checks in the order they must run (draining, login rate, login, body size, caller), each ending
    # the request with its answer; read top to bottom, that order is the security argument.
    async def run(self, app: ASGIApp) -> None:  # noqa: C901
        state = self.state
        if state.draining and _is_new_work(self.method, self.path):
            self.note("refused: shutting down")
            await self.answer(503, "shutting_down", "the server is shutting down; retry shortly", {"Retry-After": "5"})
            return
        protected = bool(state.auth.users) and (
            self.path == "/api/remove" or self.path in DOCS_PATHS or self.path.startswith(MCP_PREFIX)
        )
        login = self.path in LOGIN_PATHS and self.method == "POST"
        if protected or login:
            wait = state.logins.retry_after(self.client)
            if wait > 0:
                self.note("refused: too many failed logins")
                message = f"too many failed logins from this address; try again in {wait:.0f} s"
                await self.answer(429, "too_many_logins", message, {"Retry-After": str(int(wait) + 1)})
                return
        if protected:
            verdict = state.auth.verdict(self.headers.get("authorization", ""))
            if verdict != "ok":
                if verdict == "wrong":
                    state.logins.failed(self.client)
                    self.note("refused: wrong credentials")
                await self.answer(401, "unauthorized", "login required", {"WWW-Authenticate": 'Basic realm="rembg"'})
                return
        if self.path == "/healthz" and state.auth.users and "authorization" in self.headers:
            # Its details need a login, so it answers whether credentials are right: counted like any
            # login, and past the limit answered as if none were sent (liveness still works).
            if state.logins.retry_after(self.client) > 0:
                self.scope["headers"] = [(k, v) for k, v in self.scope["headers"] if k.lower() != b"authorization"]
            elif state.auth.verdict(self.headers["authorization"]) == "wrong":
                state.logins.failed(self.client)
                self.note("wrong credentials")
        declared = self.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self.limit:
            self.note(f"refused: a body of {int(declared):,} bytes (the limit is {self.limit:,})")
            await self.answer(413, "image_too_large", self._too_large(int(declared)))
            return
        if self.headers.get("content-length") is None and "chunked" not in self.headers.get("transfer-encoding", ""):
            self.body_done = True  # no body (a GET, most often)
        if self.path == UPLOAD_PATH and self.method == "POST" and state.upload_quota_bytes:
            self.quota_used = state.upload_usage()
            size = int(declared) if declared.strip().isdigit() else 0
            if self._over_quota(size):
                await self.answer(507, "insufficient_storage", self._quota_message())
                return
        if self.method == "POST" and self.path.startswith(_GRADIO_JOB_PREFIXES) and self._internal_name():
            self.note("refused: an internal WebUI event called by name")
            await self.answer(403, "forbidden", "this event belongs to the WebUI page; use the named endpoints")
            return
        try:
            receive: Receive | None = self._receive
            if self.method == "POST" and self.path == "/gradio_api/queue/join":
                receive = await self._check_caller()
            if receive is not None:
                await app(self.scope, receive, self._send)
        except Exception:
            if not self.answered:
                raise
            # the route failed on a body the guard had cut off or answered for: logged once, above

    def _over_quota(self, incoming: int) -> bool:
        """Whether ``incoming`` more bytes would take Gradio's uploads past the disk quota."""
        over = self.quota_used + self.state.uploading + incoming > self.state.upload_quota_bytes
        if over:
            self.note(
                f"refused: uploads hold {self.quota_used:,} bytes and {self.state.uploading:,} are arriving; "
                f"{incoming:,} more would pass the quota of {self.state.upload_quota_bytes:,}"
            )
        return over

    def _quota_message(self) -> str:
        return (
            f"the server's disk quota for uploads ({self.state.upload_quota_bytes // 2**20:,} MiB) is full; "
            "retry once earlier uploads have been processed"
        )

    def _internal_name(self) -> bool:
        # /gradio_api/call/NAME, /gradio_api/call/v2/NAME, /gradio_api/run/NAME, /gradio_api/api/NAME
        parts = [p for p in self.path.split("/") if p]
        return len(parts) >= 3 and parts[-1] in self.state.internal_names

    def _too_large(self, size: int | None = None) -> str:
        what = "upload" if self.path == UPLOAD_PATH else "request"
        said = f"is {size:,} bytes" if size is not None else "is larger"
        limit = "upload" if self.path == UPLOAD_PATH else "image"
        return (
            f"the {what} {said}; at most {self.limit:,} bytes are read "
            f"(the {limit} limit plus {FRAMING_BYTES // 1024} KiB for the form)"
        )

    async def _check_caller(self) -> Receive | None:
        """Read ``queue/join``'s small JSON body; refuse an internal ``fn_index`` from a caller without the page."""
        chunks: list[bytes] = []
        while True:
            message = await self._receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            parsed = parse_json_object(body)
            raw = parsed.get("fn_index")
            fn_index = normalised_fn_index(raw)
        except BadBody as exc:
            self.note(f"refused: {exc.message}")
            await self.answer(exc.status, exc.code, exc.message)
            return None
        if fn_index is not raw:
            # written back as the integer checked, so that Gradio runs the event the check saw
            parsed["fn_index"] = fn_index
            body = json.dumps(parsed).encode()
        if fn_index in self.state.internal_fns and not self.state.is_page(self.headers):
            self.note(f"refused: internal event {fn_index} called without the page")
            await self.answer(403, "forbidden", "this event belongs to the WebUI page; use the named endpoints")
            return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await self.receive()

        return replay

    async def _receive(self) -> Message:
        """The body as the route reads it: counted, cut at the limit, timed out while it stalls."""
        if self.body_done or self.answered:
            message = await self.receive()
            if self.answered and message["type"] == "http.request":
                raise MultiPartException("the request was refused")
            return message
        try:
            message = await asyncio.wait_for(self.receive(), self.state.read_timeout_s)
        except asyncio.TimeoutError:
            self.note(f"refused: the body stalled for {self.state.read_timeout_s:g} s after {self.received:,} bytes")
            await self.answer(408, "request_timeout", "the request body stopped arriving; send it again")
            raise MultiPartException("the body stopped arriving") from None
        if message["type"] == "http.disconnect":
            # Raised as the multipart parser's own error, so that Gradio's upload route closes and
            # deletes the temporary files it has begun (a ClientDisconnect leaves them behind).
            self.answered = True
            self.scope[ANSWERED] = True
            self.note(f"the client hung up after {self.received:,} bytes of the body")
            raise MultiPartException("the client hung up")
        chunk = len(message.get("body", b""))
        self.received += chunk
        if self.quota_used or (self.path == UPLOAD_PATH and self.state.upload_quota_bytes):
            if self._over_quota(chunk):
                await self.answer(507, "insufficient_storage", self._quota_message())
                raise MultiPartException("the uploads' disk quota is full")
            self.state.uploading += chunk
            self.counted_upload += chunk
        if self.received > self.limit:
            self.note(f"refused: the body passed {self.limit:,} bytes")
            await self.answer(413, "image_too_large", self._too_large())
            raise MultiPartException("the body is over the limit")
        if not message.get("more_body", False):
            self.body_done = True
        return message

    async def _send(self, message: Message) -> None:
        if self.answered:
            return  # the guard has answered already; the route's own answer is dropped
        if message["type"] == "http.response.start":
            self.started = True
            if self.path in LOGIN_PATHS and message.get("status") == 400:
                self.state.logins.failed(self.client)  # Gradio: "Incorrect credentials."
                self.note("a failed login")
            if self.method == "GET" and self.path == "/":
                token = self.state.page_token()
                cookie = f"{PAGE_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
        await self.send(message)


#: What a request still running when the shutdown timeout ends is told.
ABANDONED = "the server is shutting down before this request could finish; send it again shortly"


async def abandon(state: GuardState) -> int:
    """Answer 503 now to every request in progress whose answer has not begun; how many.

    For the end of a drain that ran out of time: the work itself cannot be stopped (it runs
    in a thread), but its client gets a clean answer instead of a dropped connection, and
    the route's own answer, should it come, is dropped.
    """
    told = 0
    for request in list(state.open):
        if not request.started and not request.answered:
            request.note("abandoned: the shutdown timeout ran out")
            await request.answer(503, "shutting_down", ABANDONED, {"Retry-After": "5"})
            told += 1
    return told


def guarded_protocol(read_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers take longer than ``read_timeout_s``.

    The clock starts when the connection opens and again after each response; it stops
    when a request's headers are complete (uvicorn then starts a request cycle) or the
    connection is upgraded. Idle keep-alive connections are uvicorn's own
    ``timeout_keep_alive`` (5 s); header size is h11's limit (16 KiB).
    """

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:
                self._disarm()

        def on_response_complete(self) -> None:
            before = self.cycle
            super().on_response_complete()
            if self.cycle is before and not self.transport.is_closing():
                self._arm()

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._disarm()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(read_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.info("closed a connection from %s: no complete request in %g s", _peer(self), read_timeout_s)
                self.transport.close()

    return GuardedH11Protocol


def _peer(protocol: H11Protocol) -> str:
    return str(protocol.client[0]) if protocol.client else "unknown"


def guard_state(
    users: list[tuple[str, str]],
    max_upload_bytes: int,
    max_batch_bytes: int,
    read_timeout_s: float,
    max_failed_logins: int,
) -> GuardState:
    """The guard's state from the settings' values."""
    return GuardState(
        max_body_bytes=max_upload_bytes + FRAMING_BYTES,
        upload_body_bytes=max(max_batch_bytes, max_upload_bytes) + FRAMING_BYTES,
        read_timeout_s=read_timeout_s,
        auth=BasicAuth(users),
        logins=LoginLimiter(max_failed_logins),
    )


def internal_events(fns: Iterable[tuple[int, str | None, str]]) -> tuple[frozenset[int], frozenset[str]]:
    """(fn ids, names) of the events whose ``api_visibility`` is ``private``, from (id, api_name, visibility)."""
    private = [(i, name) for i, name, visibility in fns if visibility == "private"]
    return frozenset(i for i, _ in private), frozenset(name for _, name in private if name)
