"""HTTP endpoints: the client API (`/api/v1/`) and the peer API (`/federation/v1/`).

Handlers only translate HTTP to calls on `ChapterNode` and back; every rule lives below them.
Peer routes are authenticated by RFC 9421 signatures against the chapters' node keys; what
they answer then is defined once in node/federation/endpoints.py (shared with the in-memory
transport).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ..chapter.chapter_node import ChapterNode
from ..chapter.metrics import CONTENT_TYPE, NodeMetrics
from ..governance import STATES
from ..ingest import ClientGroups
from ..notices import activity
from ..protocol.errors import BadRequest, NotFound
from ..protocol.events import MAX_RAW_BYTES, decode_key
from ..protocol.times import format_ms
from . import endpoints
from .http_errors import read_body
from .httpsig import NonceCache, target_uri, verify_request
from .stream import Broadcast, serve_stream

__all__ = ["NODE", "METRICS", "NONCES", "PUBLIC_URL", "CLIENT_GROUPS", "BROADCAST", "routes",
           "MAX_BATCH_BYTES", "MAX_BATCH_LINES", "node_info"]

NODE = web.AppKey("node", ChapterNode)
METRICS = web.AppKey("metrics", NodeMetrics)
NONCES = web.AppKey("nonces", NonceCache)
PUBLIC_URL = web.AppKey("public_url", str)
CLIENT_GROUPS = web.AppKey("client_groups", ClientGroups)  # set while the app runs (node/app.py)
BROADCAST = web.AppKey("broadcast", Broadcast)  # set while the app runs (node/app.py)

MAX_BATCH_BYTES = endpoints.MAX_BATCH_BYTES
MAX_BATCH_LINES = endpoints.MAX_BATCH_LINES

routes = web.RouteTableDef()
_PREFIX = re.compile(r"[0-9a-f]{8,64}")


def _now_ms(request: web.Request) -> int:
    return request.app[NODE].clock()  # the node's one clock


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


# --- client API -----------------------------------------------------------------------


@routes.post("/api/v1/events")
async def submit_event(request: web.Request) -> web.Response:
    """One person-signed event; 201 stored, 200 already held."""
    body = await read_body(request, MAX_RAW_BYTES)
    with request.app[METRICS].ingest_seconds.labels("client").time():
        groups = request.app.get(CLIENT_GROUPS)
        if groups is None:  # an app that was never started (no writer): alone, at once
            outcome = request.app[NODE].admit_clients([body], now_ms=_now_ms(request))[0]
        else:  # with the other requests of its group, answered once committed
            outcome = await groups.submit(body)
    if outcome.error is not None:
        raise outcome.error
    fresh = outcome.status == "stored"
    return _json({"id": outcome.id, **({} if fresh else {"duplicate": True})},
                 status=201 if fresh else 200)


@routes.get("/api/v1/events")
async def find_events(request: web.Request) -> web.Response:
    """`?prefix=HEX` (8 to 64 hex characters): the ids of held events that start with it (at
    most 10), so a person can name an event by the start of its id."""
    prefix = request.query.get("prefix", "")
    if not _PREFIX.fullmatch(prefix):
        raise BadRequest("prefix must be 8 to 64 lowercase hex characters", code="bad_query")
    return _json({"ids": request.app[NODE].store.ids_with_prefix(prefix)})


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
    return _json({"proposals": request.app[NODE].proposals(_now_ms(request), kind=kind, state=state)})


@routes.get("/api/v1/proposals/{id}")
async def get_proposal(request: web.Request) -> web.Response:
    return _json(request.app[NODE].proposal_report(request.match_info["id"], _now_ms(request)))


@routes.get("/api/v1/proposals/{id}/activity")
async def proposal_activity(request: web.Request) -> web.Response:
    """Comments and acts naming the proposal, and who each author is (no member names)."""
    node = request.app[NODE]
    pid = request.match_info["id"]
    proposal = node.store.get(pid)
    if proposal is None or proposal.type != "proposal":
        raise NotFound(f"no proposal {pid} on this node")
    events = node.store.events_of(proposal=pid, types=activity.ACTIVITY_TYPES)
    return _json(activity.activity(events, node.registry(_now_ms(request))))


@routes.get("/api/v1/people/{key}")
async def person(request: web.Request) -> web.Response:
    """Who the registry says a key is now, and what they did (their public acts)."""
    node = request.app[NODE]
    key = request.match_info["key"]
    decode_key(key, what="key")
    events = node.store.events_by(key, activity.ACTIVITY_TYPES)
    return _json({**activity.who(node.registry(_now_ms(request)), key),
                  **activity.person_acts(events)})


def node_info(node: ChapterNode, now_ms: int, *, connectors: bool = True) -> dict[str, Any]:
    """What a browser needs to sign an act this node takes: federation id, chapter slug, the
    rules (deadlines, grace) and the node's clock; with `connectors`, the Connectors
    registered now (a thousand of them are ~90 KB: the pages' clock check goes without)."""
    rules = node.charter.rules
    registry = node.registry(now_ms)
    return {"federation": node.charter.id, "chapter": node.chapter,
            "name": node.charter.name, "node_key": node.node_public,
            "now": format_ms(now_ms),
            "rules": {"min_open_hours": rules.min_open_ms / 3_600_000,
                      "grace_seconds": rules.grace_ms / 1000,
                      "seal_timeout_seconds": rules.seal_timeout_ms / 1000,
                      "quorum": float(rules.quorum),
                      "action_endorsements": rules.action_endorsements},
            "chapters": sorted(registry.chapters),
            **({"connectors": [{"key": c.key, "name": c.name, "chapter": c.chapter}
                               for c in sorted(registry.connectors.values(),
                                               key=lambda c: (c.name, c.key))]}
               if connectors else {})}


@routes.get("/api/v1/node")
async def node_view(request: web.Request) -> web.Response:
    """`?connectors=true` adds the Connectors registered now."""
    wanted = request.query.get("connectors", "false")
    if wanted not in ("true", "false"):
        raise BadRequest("connectors must be true or false", code="bad_query")
    return _json(node_info(request.app[NODE], _now_ms(request), connectors=wanted == "true"))


@routes.get("/api/v1/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one message per event stored, resumable with Last-Event-ID."""
    return await serve_stream(request, request.app[NODE], request.app[BROADCAST])


@routes.post("/api/v1/mail")
async def mail_settings(request: web.Request) -> web.Response:
    """A member sets their email address and preferences, signed with their key (local data:
    it is stored here and goes nowhere else; the answer does not repeat the address)."""
    from ..notices.mail_settings import apply_mail_settings

    body = await read_body(request, 16 * 1024)
    node = request.app[NODE]
    return _json(apply_mail_settings(node, body, _now_ms(request)))


@routes.get("/api/v1/export")
async def export(request: web.Request) -> web.StreamResponse:
    """The federation log as `chapter-node export` writes it (PROTOCOL §7): public, as every
    event is; a chapter admitted later starts from it (`init --peer`)."""
    return await _stream_lines(request, request.app[NODE].export_lines(_now_ms(request)))


@routes.get("/api/v1/proposals/{id}/evidence")
async def evidence(request: web.Request) -> web.StreamResponse:
    """What decides one proposal, as export lines: a browser checks the result from these
    alone (signatures, seals against their acts_root, the tally), trusting no node."""
    node = request.app[NODE]
    lines = node.export_lines(_now_ms(request), evidence_of=request.match_info["id"])
    first = next(lines)  # an unknown proposal is refused before the answer starts
    return await _stream_lines(request, itertools.chain([first], lines))


async def _stream_lines(request: web.Request, lines: Iterable[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.enable_compression()
    await response.prepare(request)
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= 1000:
            await response.write(b"\n".join(chunk) + b"\n")
            chunk = []
    if chunk:
        await response.write(b"\n".join(chunk) + b"\n")
    await response.write_eof()
    return response


@routes.get("/api/v1/status")
async def status(request: web.Request) -> web.Response:
    return _json(request.app[NODE].status(_now_ms(request)))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """For the reverse proxy and the service manager: the node answers and its store reads."""
    request.app[NODE].store.max_seq()
    return _json({"ok": True})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (node/chapter/metrics.py)."""
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
                           now=node.clock() / 1000)
    slug = node.peer_slug(keyid)
    node.peer_seen(slug)
    return slug, body


def _answer(answer: endpoints.Answer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


@routes.post("/federation/v1/events")
async def receive_batch(request: web.Request) -> web.Response:
    """A peer's batch: JSON Lines of events and `sealed` lines; each line judged on its own."""
    peer, body = await _peer(request, endpoints.MAX_BATCH_BYTES)
    return _answer(await endpoints.events(request.app[NODE], peer, body, request.app[METRICS]))


@routes.get("/federation/v1/changes")
async def changes(request: web.Request) -> web.Response:
    """The changes feed: events in this node's arrival order after `after`."""
    await _peer(request, 0)
    return _answer(endpoints.changes(request.app[NODE], request.query))


@routes.post("/federation/v1/negentropy")
async def negentropy(request: web.Request) -> web.Response:
    """One Negentropy v1 round, responder side: message in, message out."""
    _, body = await _peer(request, endpoints.NEGENTROPY_BYTES)
    return _answer(endpoints.negentropy(request.app[NODE], body, request.app[METRICS]))


@routes.post("/federation/v1/fetch")
async def fetch(request: web.Request) -> web.Response:
    """Events by id (with the sealed list after each seal), as JSON Lines."""
    _, body = await _peer(request, endpoints.FETCH_BYTES)
    return _answer(endpoints.fetch(request.app[NODE], body))


@routes.get("/federation/v1/sealed/{seal}")
async def sealed(request: web.Request) -> web.Response:
    """The sorted act ids a seal covers; anyone can check them against its `acts_root`."""
    await _peer(request, 0)
    return _answer(endpoints.sealed(request.app[NODE], request.match_info["seal"]))
