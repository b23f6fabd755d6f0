"""HTTP endpoints: the client API (`/api/v1/`) and the peer API (`/federation/v1/`).

Handlers only translate HTTP to calls on `ChapterNode` and back; every rule lives below them.
Peer routes are authenticated by RFC 9421 signatures against the chapters' node keys.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web

from ..errors import BadRequest, NotFound
from ..events import MAX_RAW_BYTES
from ..governance import STATES
from ..metrics import CONTENT_TYPE, NodeMetrics
from ..service import ChapterNode
from .http_errors import read_body
from .httpsig import NonceCache, target_uri, verify_request

__all__ = ["NODE", "METRICS", "NONCES", "PUBLIC_URL", "routes", "MAX_BATCH_BYTES", "MAX_BATCH_LINES"]

NODE = web.AppKey("node", ChapterNode)
METRICS = web.AppKey("metrics", NodeMetrics)
NONCES = web.AppKey("nonces", NonceCache)
PUBLIC_URL = web.AppKey("public_url", str)

MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_LINES = 10_000
MAX_FETCH_IDS = 2_000
NDJSON = "application/x-ndjson"

routes = web.RouteTableDef()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


_DECIMAL = re.compile(r"[0-9]{1,30}")  # ASCII digits only: int() also takes "٢", "+5", "5_0"
_EVENT_ID = re.compile(r"[0-9a-f]{64}")


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int,
               *, clamp: bool = False) -> int:
    """An integer query parameter written in ASCII digits; `clamp` brings a value above `hi`
    down to it (for a cursor, any larger value means "after everything")."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _DECIMAL.fullmatch(raw):
        raise BadRequest(f"query parameter {name} must be a non-negative integer",
                         code="bad_query")
    value = int(raw)
    if clamp and value > hi:
        value = hi
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter {name} must be within {lo}..{hi}", code="bad_query")
    return value


# --- client API -----------------------------------------------------------------------


@routes.post("/api/v1/events")
async def submit_event(request: web.Request) -> web.Response:
    """One person-signed event; 201 stored, 200 already held."""
    body = await read_body(request, MAX_RAW_BYTES)
    with request.app[METRICS].ingest_seconds.labels("client").time():
        event, fresh = request.app[NODE].submit(body, _now_ms())
    return _json({"id": event.id, **({} if fresh else {"duplicate": True})},
                 status=201 if fresh else 200)


@routes.get("/api/v1/events/{id}")
async def get_event(request: web.Request) -> web.Response:
    event = request.app[NODE].store.get(request.match_info["id"])
    if event is None:
        raise NotFound(f"no event {request.match_info['id']}")
    return web.Response(body=event.canonical, content_type="application/json")


@routes.get("/api/v1/proposals")
async def list_proposals(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    state = request.query.get("state")
    if kind is not None and kind not in ("consent", "action", "vote"):
        raise BadRequest("kind must be consent, action or vote", code="bad_query")
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}", code="bad_query")
    return _json({"proposals": request.app[NODE].proposals(_now_ms(), kind=kind, state=state)})


@routes.get("/api/v1/proposals/{id}")
async def get_proposal(request: web.Request) -> web.Response:
    return _json(request.app[NODE].proposal_report(request.match_info["id"], _now_ms()))


@routes.get("/api/v1/status")
async def status(request: web.Request) -> web.Response:
    return _json(request.app[NODE].status(_now_ms()))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """For the reverse proxy and the service manager: the node answers and its store reads."""
    request.app[NODE].store.max_seq()
    return _json({"ok": True})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (node/metrics.py)."""
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# --- peer API ---------------------------------------------------------------------------


async def _peer(request: web.Request, limit: int) -> tuple[str, bytes]:
    """Authenticate a peer request; returns (chapter slug, body)."""
    body = await read_body(request, limit)
    node = request.app[NODE]
    url = target_uri(request.app[PUBLIC_URL], request.raw_path)
    keyid = verify_request(request.method, url, request.headers, body,
                           resolve_key=node.peer_key, nonces=request.app[NONCES],
                           now=time.time())
    slug = node.peer_slug(keyid)
    node.peer_seen(slug)
    return slug, body


def _lines(body: bytes) -> list[bytes]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH_LINES:
        raise BadRequest(f"a batch holds at most {MAX_BATCH_LINES} lines", code="batch_too_large")
    return lines


@routes.post("/federation/v1/events")
async def receive_batch(request: web.Request) -> web.Response:
    """A peer's batch: JSON Lines of events and `sealed` lines; each line judged on its own."""
    peer, body = await _peer(request, MAX_BATCH_BYTES)
    with request.app[METRICS].ingest_seconds.labels("peer").time():
        steps = request.app[NODE].receive_steps(_lines(body), origin=peer, now_ms=_now_ms())
        while True:  # a big batch pauses now and then: the node keeps answering others
            try:
                next(steps)
            except StopIteration as done:
                results = done.value
                break
            await asyncio.sleep(0)
    return _json({"results": [r.to_json() for r in results]})


@routes.get("/federation/v1/changes")
async def changes(request: web.Request) -> web.Response:
    """The changes feed: events in this node's arrival order after `after`."""
    await _peer(request, 0)
    node = request.app[NODE]
    after = _int_param(request, "after", 0, 0, 2**62, clamp=True)
    limit = _int_param(request, "limit", 1000, 1, 5000)
    lines, last, head = node.changes(after, limit)
    return web.Response(body=b"\n".join(lines) + (b"\n" if lines else b""), content_type=NDJSON,
                        headers={"X-Feed-Next": str(last), "X-Feed-Head": str(head),
                                 "X-Feed-Epoch": node.feed_epoch})


@routes.post("/federation/v1/negentropy")
async def negentropy(request: web.Request) -> web.Response:
    """One Negentropy v1 round, responder side: message in, message out."""
    _, body = await _peer(request, 1024 * 1024)
    reply = request.app[NODE].reconcile(body)
    request.app[METRICS].negentropy_bytes.labels("received").inc(len(body))
    request.app[METRICS].negentropy_bytes.labels("sent").inc(len(reply))
    return web.Response(body=reply, content_type="application/octet-stream")


@routes.post("/federation/v1/fetch")
async def fetch(request: web.Request) -> web.Response:
    """Events by id (with the sealed list after each seal), as JSON Lines."""
    _, body = await _peer(request, 256 * 1024)
    try:
        ids = json.loads(body)["ids"]
        # ids are 64 lowercase hex: anything else names no event (and a lone surrogate
        # would not even reach the store's query)
        assert isinstance(ids, list) and all(
            isinstance(i, str) and _EVENT_ID.fullmatch(i) for i in ids)
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError) as e:
        raise BadRequest('body must be {"ids": ["<event id>", ...]}', code="bad_fetch") from e
    if len(ids) > MAX_FETCH_IDS:
        raise BadRequest(f"at most {MAX_FETCH_IDS} ids per fetch", code="batch_too_large")
    lines = request.app[NODE].lines_for(ids)
    return web.Response(body=b"\n".join(lines) + (b"\n" if lines else b""), content_type=NDJSON)


@routes.get("/federation/v1/sealed/{seal}")
async def sealed(request: web.Request) -> web.Response:
    """The sorted act ids a seal covers; anyone can check them against its `acts_root`."""
    await _peer(request, 0)
    line = request.app[NODE].sealed_line(request.match_info["seal"])
    if line is None:
        raise NotFound(f"no sealed list for {request.match_info['seal']}")
    return web.Response(body=line, content_type="application/json")
