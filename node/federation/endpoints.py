"""What each peer endpoint (`/federation/v1/`) answers, once the caller is authenticated.

The one definition used by the aiohttp handlers (node/federation/api.py, which add reading the
body within `BODY_LIMITS` and RFC 9421 verification) and by the in-memory transport
(node/federation/local_network.py). Refusals are raised as `ChapterNodeError`; the caller maps
them to HTTP (node/federation/http_errors.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

import orjson

from ..chapter.chapter_node import ChapterNode
from ..chapter.metrics import NodeMetrics
from ..ingest import drive
from ..protocol.errors import BadRequest, NotFound
from ..protocol.events import is_event_id
from .items import items_of

__all__ = ["Answer", "BODY_LIMITS", "MAX_BATCH_BYTES", "MAX_BATCH_LINES", "MAX_FETCH_IDS",
           "int_param", "events", "changes", "negentropy", "fetch", "sealed", "dispatch",
           "body_limit"]

MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_LINES = 10_000
MAX_FETCH_IDS = 2_000
NEGENTROPY_BYTES = 1024 * 1024
FETCH_BYTES = 256 * 1024
NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"  # what aiohttp's json_response sends

# Largest body each endpoint reads (bodyless GETs: 0), keyed by (method, route).
BODY_LIMITS: dict[tuple[str, str], int] = {
    ("POST", "/federation/v1/events"): MAX_BATCH_BYTES,
    ("GET", "/federation/v1/changes"): 0,
    ("POST", "/federation/v1/negentropy"): NEGENTROPY_BYTES,
    ("POST", "/federation/v1/fetch"): FETCH_BYTES,
    ("GET", "/federation/v1/sealed/{seal}"): 0,
}

_DECIMAL = re.compile(r"[0-9]{1,30}")  # ASCII digits only: int() also takes "٢", "+5", "5_0"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def int_param(query: Mapping[str, str], name: str, default: int, lo: int, hi: int,
              *, clamp: bool = False) -> int:
    """An integer query parameter written in ASCII digits; `clamp` brings a value above `hi`
    down to it (for a cursor, any larger value means "after everything")."""
    raw = query.get(name)
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


def _json(value: object) -> Answer:
    # orjson: a batch's answer is 1,000 results, and json.dumps took ~1 ms of them
    return Answer(200, orjson.dumps(value), {"Content-Type": JSON})


def _lines(body: bytes) -> list[bytes]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH_LINES:
        raise BadRequest(f"a batch holds at most {MAX_BATCH_LINES} lines", code="batch_too_large")
    return lines


def _ndjson(lines: list[bytes], headers: dict[str, str] | None = None) -> Answer:
    return Answer(200, b"\n".join(lines) + (b"\n" if lines else b""),
                  {"Content-Type": NDJSON, **(headers or {})})


async def events(node: ChapterNode, peer: str, body: bytes,
                 metrics: NodeMetrics | None = None) -> Answer:
    """A peer's batch: JSON Lines of events and `sealed` lines; each line judged on its own."""
    timer = metrics.ingest_seconds.labels("peer").time() if metrics is not None else nullcontext()
    with timer:
        # a big batch pauses now and then: the node keeps answering others
        results = await drive(node.receive_steps(_lines(body), origin=peer, now_ms=node.clock()))
    return _json({"results": [r.to_json() for r in results]})


def changes(node: ChapterNode, query: Mapping[str, str]) -> Answer:
    """The changes feed: events in this node's arrival order after `after`."""
    after = int_param(query, "after", 0, 0, 2**62, clamp=True)
    limit = int_param(query, "limit", 1000, 1, 5000)
    lines, last, head = node.changes(after, limit)
    return _ndjson(lines, {"X-Feed-Next": str(last), "X-Feed-Head": str(head),
                           "X-Feed-Epoch": node.feed_epoch})


def negentropy(node: ChapterNode, body: bytes, metrics: NodeMetrics | None = None) -> Answer:
    """One Negentropy v1 round, responder side: message in, message out."""
    reply = items_of(node).respond(body)
    if metrics is not None:
        metrics.negentropy_bytes.labels("received").inc(len(body))
        metrics.negentropy_bytes.labels("sent").inc(len(reply))
    return Answer(200, reply, {"Content-Type": "application/octet-stream"})


def fetch(node: ChapterNode, body: bytes) -> Answer:
    """Events by id (with the sealed list after each seal), as JSON Lines."""
    refused = BadRequest('body must be {"ids": ["<event id>", ...]}', code="bad_fetch")
    try:
        ids = json.loads(body)["ids"]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise refused from e
    # ids are 64 lowercase hex: anything else names no event (and a lone surrogate would not
    # even reach the store's query)
    if not isinstance(ids, list) or not all(is_event_id(i) for i in ids):
        raise refused
    if len(ids) > MAX_FETCH_IDS:
        raise BadRequest(f"at most {MAX_FETCH_IDS} ids per fetch", code="batch_too_large")
    return _ndjson(node.lines_for(ids))


def sealed(node: ChapterNode, seal: str) -> Answer:
    """The sorted act ids a seal covers; anyone can check them against its `acts_root`."""
    line = node.sealed_line(seal)
    if line is None:
        raise NotFound(f"no sealed list for {seal}")
    return Answer(200, line, {"Content-Type": "application/json"})


def _route(method: str, path: str) -> tuple[str, str | None]:
    if path.startswith("/federation/v1/sealed/") and method == "GET":
        seal = path[len("/federation/v1/sealed/"):]
        if seal and "/" not in seal:
            return "/federation/v1/sealed/{seal}", unquote(seal)
    return path, None


def body_limit(method: str, path: str) -> int | None:
    """The body limit of the endpoint `path` (without query) names; None: no such endpoint."""
    return BODY_LIMITS.get((method, _route(method, path)[0]))


async def dispatch(node: ChapterNode, peer: str, method: str, target: str, body: bytes,
                   metrics: NodeMetrics | None = None) -> Answer:
    """Answer an authenticated peer request for `target` (path and query) from `peer`."""
    path, _, raw_query = target.partition("?")
    route, seal = _route(method, path)
    if (method, route) not in BODY_LIMITS:
        raise NotFound(f"no endpoint {method} {path}", code="not_found")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(key, value)  # the first of repeated keys, as aiohttp's query.get
    if route == "/federation/v1/events":
        return await events(node, peer, body, metrics)
    if route == "/federation/v1/changes":
        return changes(node, query)
    if route == "/federation/v1/negentropy":
        return negentropy(node, body, metrics)
    if route == "/federation/v1/fetch":
        return fetch(node, body)
    assert seal is not None
    return sealed(node, seal)
