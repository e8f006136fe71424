"""The REST API: ``POST /api/remove`` (drop-in for ``rembg s`` clients) and ``GET /healthz``.

The option fields are generated from ``core.options.OPTIONS`` (rembg's short names,
``a``, ``af``, ``om``...), the same for the POST form and the GET query string, and
parsed by the engine's one parser, so that every error, a missing file field
included, leaves in one JSON shape:
``{"error": {"code": "...", "message": "..."}}`` with 400/401/413/415/422/429/503.
What happens before a route reads the body (the login, the byte limit, timeouts,
shutdown) is ``api.guard``'s.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.guard import ANSWERED, REQUEST_ID
from api.logins import BasicAuth
from base.edges import cut, error_body, request_id, version
from core import (
    Engine,
    ImageTooLarge,
    InvalidOption,
    RemovalError,
    RemovalOptions,
    Settings,
    UrlRefused,
    available_providers,
)
from core.catalog import model_facts
from core.formats import FORMATS
from core.options import OPTIONS, kind_of, rest_name
from core.remote import URL_INPUT_OFF, fetch_url

#: URL fetches that may wait on their hosts at once (``RestState.fetches``); more are 503 at once.
URL_FETCHES = 8
log = logging.getLogger(__name__)
#: The image types an answer may carry, for the OpenAPI description.
IMAGE_CONTENT: dict[str, dict[str, Any]] = {f.media_type: {} for f in FORMATS.values()}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one JSON error shape of the REST API."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def removal_error_response(exc: RemovalError) -> JSONResponse:
    message = exc.message
    if isinstance(exc, InvalidOption) and exc.option in OPTIONS:
        message = message.replace(repr(exc.option), repr(rest_name(OPTIONS[exc.option])), 1)
    retry = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    return error_response(exc.http_status, exc.code, message, retry)


class ErrorShapeRoute(APIRoute):
    """Our routes answer FastAPI's own errors (bad multipart, validation) in our JSON shape too.

    Scoped to our routes: Gradio's routes on the same app keep their own errors.
    """

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            rid = request.scope.get(REQUEST_ID) or request_id()
            try:
                response = await handler(request)
            except RequestValidationError as exc:
                where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
                response = error_response(400, "invalid_request", f"the request is malformed ({cut(where or 'body')})")
            except HTTPException as exc:
                response = error_response(exc.status_code, "invalid_request", cut(str(exc.detail)))
            except Exception:
                # A bug, not bad input: logged once with its id, answered in the one shape.
                log.exception("request %s: %s %s failed", rid, request.method, request.url.path)
                message = f"something went wrong on the server; it has been logged as request {rid}"
                response = error_response(500, "internal_error", message)
            response.headers["X-Request-Id"] = rid
            if response.status_code >= 400 and response.status_code != 500 and not request.scope.get(ANSWERED):
                log.info("request %s: %s %s -> %s", rid, request.method, request.url.path, response.status_code)
            return response

        return shaped


def option_parameters(source: Any, files: bool) -> list[inspect.Parameter]:
    """One keyword parameter per option, named as the REST API spells it, for FastAPI.

    ``source`` is ``Form`` or ``Query``; image options become file fields where
    ``files`` (the POST form) and are left out otherwise.
    """
    params = []
    for f in OPTIONS.values():
        if kind_of(f) == "image":
            if not files:
                continue
            annotation: Any = Annotated[UploadFile | None, File(description=f.metadata["help"])]
        else:
            annotation = Annotated[str | None, source(description=f.metadata["help"])]
        params.append(
            inspect.Parameter(rest_name(f), inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        )
    return params


def with_parameters(fn: Callable[..., Any], params: list[inspect.Parameter]) -> Callable[..., Any]:
    """``fn`` as FastAPI sees it: a ``request`` and ``params`` (it takes them as ``**kwargs``)."""
    request = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
    fn.__signature__ = inspect.Signature([request, *params], return_annotation=Response)  # type: ignore[attr-defined]
    return fn


class Busy(RemovalError):
    """Every URL-fetch slot is taken."""

    code = "busy"
    http_status = 503


class MissingFile(RemovalError):
    """A multipart request without its ``file`` field."""

    code = "invalid_request"


@dataclass
class RestState:
    """What the REST routes share: the engine (and its settings), the login, the in-flight bound and count."""

    engine: Engine
    auth: BasicAuth
    queue_depth: Callable[[], int]
    draining: Callable[[], bool]
    in_flight: threading.BoundedSemaphore
    #: Requests inside ``serve`` now (``/healthz`` reports it).
    in_flight_count: int = 0
    #: URL fetches at once: they wait on other hosts outside the in-flight bound, so they have their
    #: own, below the thread pool's 40 threads that every REST request runs its removal in.
    fetches: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(URL_FETCHES))

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    def allows(self, request: Request) -> bool:
        return self.auth.verdict(request.headers.get("authorization", "")) == "ok"


async def read_upload(state: RestState, upload: UploadFile | None, missing: str) -> bytes:
    """An uploaded file's bytes, within the upload limit; ``missing``: the message where there is none."""
    if upload is None:
        raise MissingFile(missing)
    limit = state.settings.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise ImageTooLarge(f"the upload is {upload.size:,} bytes; the limit is {limit:,}")
    return await upload.read()


async def serve(
    state: RestState, request: Request, read: Callable[[], Awaitable[bytes]], fields: dict[str, Any]
) -> Response:
    """Auth, the image from ``read``, the in-flight bound, the REST fields as options, the answer.

    The image is read before a slot is taken: an upload is in hand by then, but a URL fetch
    waits on another host, and a slow one would hold a slot that removals need.
    """
    if not state.allows(request):
        return error_response(401, "unauthorized", "login required", {"WWW-Authenticate": 'Basic realm="rembg"'})
    try:
        data = await read()
    except Busy as exc:
        return error_response(503, exc.code, exc.message, {"Retry-After": "1"})
    except RemovalError as exc:
        return removal_error_response(exc)
    if not state.in_flight.acquire(blocking=False):
        return error_response(503, "busy", "the server is busy; retry shortly", {"Retry-After": "1"})
    state.in_flight_count += 1
    try:
        values: dict[str, Any] = {}
        for f in OPTIONS.values():
            value = fields.get(rest_name(f))
            if kind_of(f) == "image" and value is not None:
                value = await read_upload(state, value, "")
            values[f.name] = value
        options = RemovalOptions.from_values(values)
        result = await run_in_threadpool(state.engine.remove, data, options)
    except RemovalError as exc:
        return removal_error_response(exc)
    finally:
        state.in_flight_count -= 1
        state.in_flight.release()
    t = result.timings
    headers = {
        "X-Provider": result.provider,
        "X-Model": result.model,
        # What really ran: runtime and provider, and the precision (fast may run exact; the note says why).
        "X-Backend": result.backend,
        "X-Precision": result.precision,
        "X-Precision-Ran": result.precision_ran,
        "X-Inference-Ms": f"{t['inference']:.1f}",
        "X-Total-Ms": f"{t['total']:.1f}",
        "X-Timings": json.dumps({k: round(v, 1) for k, v in t.items()}),
    }
    if result.precision_note:
        headers["X-Precision-Note"] = cut(result.precision_note, 300)
    if result.ran_on:  # removed on a Ray Serve replica (``serving``): which one
        headers["X-Ran-On"] = json.dumps(result.ran_on)
    return Response(result.data, media_type=result.media_type, headers=headers)


# --- the routes: each takes the state first; ``bind`` hands FastAPI the rest -------------------


async def remove(state: RestState, request: Request, **fields: Any) -> Response:
    if fields.get("bgc") is None:  # rembg's clients send the colour in the query string
        fields["bgc"] = fields.pop("bgc_query", None)
    fields.pop("bgc_query", None)

    async def uploaded() -> bytes:
        return await read_upload(state, fields.pop("file"), "send the image as a multipart field named 'file'")

    return await serve(state, request, uploaded, fields)


def remove_parameters() -> list[inspect.Parameter]:
    """``POST /api/remove``'s fields: the file, the options (image options as files), ``bgc`` in the query."""
    file = Annotated[UploadFile | None, File(description="the image")]
    bgc_query = Annotated[str | None, Query(alias="bgc", description="background colour (as rembg sends it)")]
    return [
        inspect.Parameter("file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=file),
        *option_parameters(Form, files=True),
        inspect.Parameter("bgc_query", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=bgc_query),
    ]


async def remove_url(state: RestState, request: Request, url: str | None = None, **fields: Any) -> Response:
    async def fetched() -> bytes:
        if not url:
            raise UrlRefused("give the image's address as ?url=")
        if not state.fetches.acquire(blocking=False):
            raise Busy(f"{URL_FETCHES} URLs are being fetched already; retry shortly")
        try:
            return await run_in_threadpool(fetch_url, url, state.settings.max_upload_bytes)
        finally:
            state.fetches.release()

    return await serve(state, request, fetched, fields)


def remove_url_parameters() -> list[inspect.Parameter]:
    """``GET /api/remove``'s query: ``url`` and the options that are not images."""
    url = Annotated[str | None, Query(description="http(s) URL of the image; public hosts only")]
    return [
        inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=url),
        *option_parameters(Query, files=False),
    ]


async def other_methods(state: RestState, request: Request) -> JSONResponse:
    reason = URL_INPUT_OFF if request.method == "GET" else f"{request.method} is not supported"
    allow = "GET, POST" if state.settings.allow_url_input else "POST"
    message = f"{reason}; POST the file as multipart 'file'"
    return error_response(405, "method_not_allowed", message, {"Allow": allow})


async def healthz(state: RestState, request: Request) -> JSONResponse:
    """``status``: ``ok``; ``degraded`` while requests that name no model or provider cannot be served
    (``reasons`` says why; the server still answers the others); ``draining`` while it shuts down.
    200 when ``ok``, else 503, so probes and the image's HEALTHCHECK take a replica that fails
    every default request out of rotation. Without a login (where one is set), only ``status``
    and ``version``."""
    engine, settings = state.engine, state.settings
    reasons = await run_in_threadpool(engine.health)
    status = "draining" if state.draining() else "degraded" if reasons else "ok"
    code = 200 if status == "ok" else 503
    if not state.allows(request):  # liveness for probes; the details only with a login
        return JSONResponse({"status": status, "version": version()}, status_code=code)
    return JSONResponse(
        {
            "status": status,
            "reasons": reasons,
            "version": version(),
            "removals_run_on": engine.runs_on,
            "models_loaded": engine.sessions.loaded(),
            "models": await run_in_threadpool(model_facts, settings, settings.default_provider),
            "providers": [p.to_dict() for p in available_providers()],
            "queue": {"gradio_pending": state.queue_depth(), "rest_in_flight": state.in_flight_count},
            "memory": engine.budget.summary(),
            "requests": engine.requests.summary(),
            "settings": settings.public_dict(),
        },
        status_code=code,
    )


Route = Callable[..., Awaitable[Response]]


def bind(route: Route, state: RestState, params: list[inspect.Parameter] | None = None) -> Route:
    """``route`` with ``state`` filled in, as FastAPI sees it: its name and docstring (the operation id
    and description), and its parameters after ``state``, or a ``request`` and ``params`` where given."""

    async def endpoint(**kwargs: Any) -> Response:
        return await route(state, **kwargs)

    endpoint.__name__ = endpoint.__qualname__ = route.__name__
    endpoint.__doc__ = route.__doc__
    if params is not None:
        return with_parameters(endpoint, params)
    signature = inspect.signature(route, eval_str=True)
    rest = list(signature.parameters.values())[1:]
    endpoint.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
    return endpoint


def create_router(
    engine: Engine,
    users: list[tuple[str, str]],
    queue_depth: Callable[[], int],
    draining: Callable[[], bool] = lambda: False,
) -> APIRouter:
    """The REST routes over ``engine``; ``users`` empty means no login; ``draining``: shutting down."""
    settings = engine.settings
    state = RestState(engine, BasicAuth(users), queue_depth, draining, threading.BoundedSemaphore(settings.queue_size))
    router = APIRouter(route_class=ErrorShapeRoute)
    router.add_api_route(
        "/api/remove",
        bind(remove, state, remove_parameters()),
        methods=["POST"],
        summary="Remove the background of an uploaded image",
        responses={
            200: {"content": IMAGE_CONTENT},
            400: {"description": "bad input or option"},
            413: {"description": "image too large"},
            415: {"description": "unsupported format"},
            503: {"description": "busy, or model/provider unavailable"},
        },
        tags=["Background removal"],
        response_class=Response,
    )
    if settings.allow_url_input:
        router.add_api_route(
            "/api/remove",
            bind(remove_url, state, remove_url_parameters()),
            methods=["GET"],
            summary="Remove the background of an image fetched from a public URL (allow_url_input)",
            responses={
                200: {"content": IMAGE_CONTENT},
                400: {"description": "bad URL, refused host (not public) or fetch failed; bad option"},
                413: {"description": "image too large"},
            },
            tags=["Background removal"],
            response_class=Response,
        )
    router.add_api_route(
        "/api/remove",
        bind(other_methods, state),
        methods=["PUT", "PATCH", "DELETE"] if settings.allow_url_input else ["GET", "PUT", "PATCH", "DELETE"],
        tags=["Background removal"],
        summary="Not supported: POST the file instead",
        status_code=405,
    )
    router.add_api_route(
        "/healthz",
        bind(healthz, state),
        methods=["GET"],
        tags=["Health"],
        summary="Liveness, health and what is loaded",
        responses={503: {"description": "degraded or draining: the reasons are in the body"}},
    )
    return router
