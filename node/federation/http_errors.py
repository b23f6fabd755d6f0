"""The one mapping from domain errors to HTTP: status table, JSON body, and bounded bodies.

Domain errors carry no HTTP status (see node.protocol.errors); this table gives each class its status,
most specific class first. Every error body is `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..protocol.errors import (
    BadRequest,
    ChapterNodeError,
    Conflict,
    DeadlinePassed,
    InvalidEvent,
    LocalError,
    NotAdmissible,
    NotFound,
    PayloadTooLarge,
    RemoteError,
    Unauthenticated,
    Unavailable,
)

__all__ = ["STATUS", "status_of", "error_middleware", "error_response", "read_body"]

log = logging.getLogger("chapter_node.http")

STATUS: tuple[tuple[type[ChapterNodeError], int], ...] = (
    (Unauthenticated, 401),
    (NotFound, 404),
    (PayloadTooLarge, 413),
    (Conflict, 409),
    (DeadlinePassed, 422),
    (NotAdmissible, 403),
    (InvalidEvent, 400),
    (BadRequest, 400),
    (RemoteError, 400),
    (Unavailable, 503),
    (LocalError, 500),
    (ChapterNodeError, 500),
)


def status_of(error: ChapterNodeError) -> int:
    return next(status for cls, status in STATUS if isinstance(error, cls))


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChapterNodeError as e:
        return error_response(status_of(e), e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            e.status, "http_error")
        response = error_response(e.status, code, e.reason)
        if "Allow" in e.headers:  # RFC 9110 §15.5.6: a 405 lists the methods the route takes
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except Exception:  # the node keeps serving whatever a request did
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the node's log")


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read at most `limit` bytes; a declared or actual larger body is cut off with 413."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
