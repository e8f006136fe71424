"""The REST API: ``POST /api/remove`` (drop-in for ``rembg s`` clients) and ``GET /healthz``.

Every parameter arrives as text and is parsed here, so that every error, a
missing file field included, leaves in one JSON shape:
``{"error": {"code": "...", "message": "..."}}`` with 400/401/413/415/503.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from core import Engine, ImageTooLarge, InvalidOption, RemovalError, RemovalOptions, UrlRefused, available_providers
from core.remote import fetch_url

VERSION = "0.1.0"
log = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one JSON error shape of the REST API."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


#: Engine option names as the REST API spells them (rembg's short names).
REST_NAMES = {
    "alpha_matting_foreground_threshold": "af",
    "alpha_matting_background_threshold": "ab",
    "alpha_matting_erode_size": "ae",
    "output_format": "format",
    "bgcolor": "bgc",
    "only_mask": "om",
    "post_process_mask": "ppm",
    "alpha_matting": "a",
}


def removal_error_response(exc: RemovalError) -> JSONResponse:
    message = exc.message
    if isinstance(exc, InvalidOption) and exc.option in REST_NAMES:
        message = message.replace(repr(exc.option), repr(REST_NAMES[exc.option]), 1)
    return error_response(exc.http_status, exc.code, message)


class ErrorShapeRoute(APIRoute):
    """Our routes answer FastAPI's own errors (bad multipart, validation) in our JSON shape too.

    Scoped to our routes: Gradio's routes on the same app keep their own errors.
    """

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            rid = request_id()
            try:
                response = await handler(request)
            except RequestValidationError as exc:
                where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
                response = error_response(400, "invalid_request", f"the request is malformed ({where or 'body'})")
            except HTTPException as exc:
                response = error_response(exc.status_code, "invalid_request", str(exc.detail))
            except Exception:
                # A bug, not bad input: logged once with its id, answered in the one shape.
                log.exception("request %s: %s %s failed", rid, request.method, request.url.path)
                message = f"something went wrong on the server; it has been logged as request {rid}"
                response = error_response(500, "internal_error", message)
            response.headers["X-Request-Id"] = rid
            if response.status_code >= 400 and response.status_code != 500:
                log.info("request %s: %s %s -> %s", rid, request.method, request.url.path, response.status_code)
            return response

        return shaped


def request_id() -> str:
    """A short random id, returned as ``X-Request-Id`` and written in the log lines of the request."""
    return uuid.uuid4().hex[:12]


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidOption(name, "must be true or false")


def _int(name: str, value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidOption(name, "must be an integer") from None


class BasicAuth:
    """HTTP Basic credentials for the REST routes (Gradio's own login covers the UI)."""

    def __init__(self, users: list[tuple[str, str]]) -> None:
        self.users = users

    def allows(self, request: Request) -> bool:
        if not self.users:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # compare every pair in full, so timing does not reveal which part was wrong
        return any(secrets.compare_digest(user, u) & secrets.compare_digest(password, p) for u, p in self.users)


class MissingFile(RemovalError):
    """A multipart request without its ``file`` field."""

    code = "invalid_request"


def create_router(engine: Engine, users: list[tuple[str, str]], queue_depth: Callable[[], int]) -> APIRouter:
    """The REST routes over ``engine``; ``users`` empty means no login."""
    settings = engine.settings
    auth = BasicAuth(users)
    in_flight = threading.BoundedSemaphore(settings.queue_size)
    counter = {"in_flight": 0}
    router = APIRouter(route_class=ErrorShapeRoute)

    @router.post(
        "/api/remove",
        tags=["Background removal"],
        summary="Remove the background of an uploaded image",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}},
            400: {"description": "bad input or option"},
            413: {"description": "image too large"},
            415: {"description": "unsupported format"},
            503: {"description": "busy, or model/provider unavailable"},
        },
    )
    async def remove(
        request: Request,
        file: Annotated[UploadFile | None, File(description="the image")] = None,
        model: Annotated[str | None, Form(description="model name, e.g. u2net")] = None,
        a: Annotated[str | None, Form(description="alpha matting (true/false)")] = None,
        af: Annotated[str | None, Form(description="alpha matting foreground threshold, 0-255")] = None,
        ab: Annotated[str | None, Form(description="alpha matting background threshold, 0-255")] = None,
        ae: Annotated[str | None, Form(description="alpha matting erode size")] = None,
        om: Annotated[str | None, Form(description="only the mask (true/false)")] = None,
        ppm: Annotated[str | None, Form(description="post-process the mask (true/false)")] = None,
        bgc: Annotated[str | None, Form(description="background colour r,g,b[,a]")] = None,
        bgc_query: Annotated[
            str | None, Query(alias="bgc", description="background colour (as rembg sends it)")
        ] = None,
        format: Annotated[str | None, Form(description="png, webp or jpeg")] = None,
        quality: Annotated[str | None, Form(description="lossy WebP/JPEG quality 1-100")] = None,
        provider: Annotated[str | None, Form(description="cpu, cuda, tensorrt, openvino or auto")] = None,
        crop: Annotated[str | None, Form(description="crop to the subject (true/false)")] = None,
    ) -> Response:
        fields = {"model": model, "a": a, "af": af, "ab": ab, "ae": ae, "om": om, "ppm": ppm, "bgc": bgc or bgc_query}
        fields |= {"format": format, "quality": quality, "provider": provider, "crop": crop}

        async def uploaded() -> bytes:
            if file is None:
                raise MissingFile("send the image as a multipart field named 'file'")
            if file.size is not None and file.size > settings.max_upload_bytes:
                raise ImageTooLarge(f"the upload is {file.size:,} bytes; the limit is {settings.max_upload_bytes:,}")
            return await file.read()

        return await serve(request, uploaded, fields)

    async def serve(request: Request, read: Callable[[], Awaitable[bytes]], fields: dict[str, str | None]) -> Response:
        """Auth, the in-flight bound, the image from ``read``, rembg's fields as options, the answer."""
        if not auth.allows(request):
            return error_response(401, "unauthorized", "login required", {"WWW-Authenticate": 'Basic realm="rembg"'})
        if not in_flight.acquire(blocking=False):
            return error_response(503, "busy", "the server is busy; retry shortly", {"Retry-After": "1"})
        counter["in_flight"] += 1
        try:
            data = await read()
            options = RemovalOptions(
                model=fields["model"] or None,
                provider=fields["provider"] or None,
                output_format=fields["format"] or "png",
                quality=None if fields["quality"] is None else _int("quality", fields["quality"], 0),
                only_mask=_flag("om", fields["om"]),
                bgcolor=fields["bgc"] or None,
                crop=_flag("crop", fields["crop"]),
                alpha_matting=_flag("a", fields["a"]),
                alpha_matting_foreground_threshold=_int("af", fields["af"], 240),
                alpha_matting_background_threshold=_int("ab", fields["ab"], 10),
                alpha_matting_erode_size=_int("ae", fields["ae"], 10),
                post_process_mask=_flag("ppm", fields["ppm"]),
            )
            result = await run_in_threadpool(engine.remove, data, options)
        except RemovalError as exc:
            return removal_error_response(exc)
        finally:
            counter["in_flight"] -= 1
            in_flight.release()
        t = result.timings
        headers = {
            "X-Provider": result.provider,
            "X-Model": result.model,
            "X-Inference-Ms": f"{t['inference']:.1f}",
            "X-Total-Ms": f"{t['total']:.1f}",
            "X-Timings": json.dumps({k: round(v, 1) for k, v in t.items()}),
        }
        return Response(result.data, media_type=result.media_type, headers=headers)

    if settings.allow_url_input:

        @router.get(
            "/api/remove",
            tags=["Background removal"],
            summary="Remove the background of an image fetched from a public URL (allow_url_input)",
            response_class=Response,
            responses={
                200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}},
                400: {"description": "bad URL, refused host (not public) or fetch failed; bad option"},
                413: {"description": "image too large"},
            },
        )
        async def remove_url(
            request: Request,
            url: Annotated[str | None, Query(description="http(s) URL of the image; public hosts only")] = None,
            model: Annotated[str | None, Query()] = None,
            a: Annotated[str | None, Query()] = None,
            af: Annotated[str | None, Query()] = None,
            ab: Annotated[str | None, Query()] = None,
            ae: Annotated[str | None, Query()] = None,
            om: Annotated[str | None, Query()] = None,
            ppm: Annotated[str | None, Query()] = None,
            bgc: Annotated[str | None, Query()] = None,
            format: Annotated[str | None, Query()] = None,
            quality: Annotated[str | None, Query()] = None,
            provider: Annotated[str | None, Query()] = None,
            crop: Annotated[str | None, Query()] = None,
        ) -> Response:
            fields = {"model": model, "a": a, "af": af, "ab": ab, "ae": ae, "om": om, "ppm": ppm, "bgc": bgc}
            fields |= {"format": format, "quality": quality, "provider": provider, "crop": crop}

            async def fetched() -> bytes:
                if not url:
                    raise UrlRefused("give the image's address as ?url=")
                return await run_in_threadpool(fetch_url, url, settings.max_upload_bytes)

            return await serve(request, fetched, fields)

    @router.api_route(
        "/api/remove",
        methods=["PUT", "PATCH", "DELETE"] if settings.allow_url_input else ["GET", "PUT", "PATCH", "DELETE"],
        tags=["Background removal"],
        summary="Not supported: POST the file instead",
        status_code=405,
    )
    async def other_methods(request: Request) -> JSONResponse:
        reason = (
            "fetching images by URL is turned off (allow_url_input)"
            if request.method == "GET"
            else f"{request.method} is not supported"
        )
        allow = "GET, POST" if settings.allow_url_input else "POST"
        message = f"{reason}; POST the file as multipart 'file'"
        return error_response(405, "method_not_allowed", message, {"Allow": allow})

    @router.get("/healthz", tags=["Health"], summary="Liveness and what is loaded")
    async def healthz(request: Request) -> dict[str, Any]:
        if not auth.allows(request):  # liveness for probes; the details only with a login
            return {"status": "ok", "version": VERSION}
        return {
            "status": "ok",
            "version": VERSION,
            "models_loaded": engine.sessions.loaded(),
            "providers": [p.to_dict() for p in available_providers()],
            "queue": {"gradio_pending": queue_depth(), "rest_in_flight": counter["in_flight"]},
            "requests": engine.requests.summary(),
            "settings": settings.public_dict(),
        }

    return router
