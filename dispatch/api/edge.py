"""The edge's limits: what a request may be before anything reads it, and what errors say.

- Bodies are bounded (``YISHAO_MAX_BODY_BYTES``, more for drill reports and EIDOs): a larger
  one is refused with 413 before it is read, so one request cannot stall the event loop.
- JSON is parsed strictly (orjson: no NaN or Infinity, no lone surrogates, no integer beyond
  64 bits) and no deeper than :data:`MAX_JSON_DEPTH`; anything else is a 422.
- A validation error names each bad field and what is wrong with it, at most
  :data:`MAX_ERRORS` of them, and never echoes the input.
- Every error the service raises on purpose maps to one status (:data:`STATUS`); anything
  else is a 500 that says nothing of the request (and is logged).
- HTML pages get a Content-Security-Policy: scripts only from the service itself, and none
  at all on uploaded drill-report pages.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OverloadedError,
    RateLimitedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
MAX_ERRORS = 20
# Bodies larger than the default: drill reports carry their HTML page, EIDOs whole incidents,
# pivot plans a year of bands.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/reports/", 10 * 1024 * 1024),
    ("/api/eido", 2 * 1024 * 1024),
    # A year of pivot posts: 12 months x 8 bands x up to 26 posts, with their numbers.
    ("/api/pivots/plan", 16 * 1024 * 1024),
)

STATUS: list[tuple[type[Exception], int]] = [
    (ForbiddenError, 403),
    (AuthError, 401),
    (RateLimitedError, 429),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnavailableError, 503),
]

CSP_APP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "media-src 'self' blob: data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The API docs (Swagger UI, served from the fastapi-offline package, not a CDN) start from one
# inline script of FastAPI's own; the page shows no data but the service's OpenAPI document.
CSP_DOCS = CSP_APP.replace("script-src 'self';", "script-src 'self' 'unsafe-inline';")
DOCS_PATHS = ("/docs", "/redoc")
# Drill reports are pages an admin uploaded: they may draw (inline SVG and styles) but never
# run a script on the service's origin.
CSP_UPLOADED = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"
)


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_json(body: bytes) -> Any:
    """Strict JSON: orjson's rules, and no deeper than :data:`MAX_JSON_DEPTH`.

    Raises:
        json.JSONDecodeError: not such JSON (FastAPI turns it into a 422).
    """
    data = orjson.loads(body)
    if _too_deep(data, MAX_JSON_DEPTH):
        raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
    return data


class EdgeRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class EdgeRoute(APIRoute):
    """Routes whose JSON bodies are parsed by :func:`parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def edge_handler(request: Request) -> Response:
            return await handler(EdgeRequest(request.scope, request.receive))

        return edge_handler


class BodyLimit:
    """ASGI middleware: a body over its path's limit is refused with 413 unread."""

    def __init__(self, app: ASGIApp, *, default_bytes: int) -> None:
        self.app = app
        self.default_bytes = default_bytes

    def limit_for(self, path: str) -> int:
        for prefix, limit in BODY_LIMITS:
            if path.startswith(prefix):
                return limit
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps({"detail": f"body: larger than {limit} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """ASGI middleware: a Content-Security-Policy on HTML, and the usual hardening headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        uploaded = path.startswith("/reports/")
        docs = path in DOCS_PATHS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                kinds = [v for k, v in headers if k.lower() == b"content-type"]
                if kinds and kinds[0].startswith(b"text/html"):
                    policy = CSP_UPLOADED if uploaded else CSP_DOCS if docs else CSP_APP
                    headers.append((b"content-security-policy", policy.encode()))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = [
        {"field": _field(tuple(e.get("loc", ()))), "problem": str(e.get("msg", "invalid"))}
        for e in errors[:MAX_ERRORS]
    ]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    return JSONResponse({"detail": summary + more, "errors": problems}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to its status; validation errors named, never echoed."""
    for exc_type, status in STATUS:

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            headers: dict[str, str] = {}
            if status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            if isinstance(exc, RateLimitedError | OverloadedError):
                headers["Retry-After"] = str(exc.retry_after_s)
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(RequestValidationError, _invalid)


# The access log records request lines: credentials given in a query are blanked there.
_CREDENTIAL = re.compile(r"((?:^|[?&])(?:token|access_token|secret)=)[^&\s]*", re.IGNORECASE)


def scrub(text: str) -> str:
    """A path or request line with any query credential replaced by ``***``."""
    return _CREDENTIAL.sub(r"\1***", text)


class AccessLogScrubber(logging.Filter):
    """Blanks query credentials in uvicorn's access log records (``/ws?token=...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, MutableMapping):
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        record.msg = scrub(str(record.msg))
        return True


def install_log_scrubber() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, AccessLogScrubber) for f in logger.filters):
            logger.addFilter(AccessLogScrubber())
