"""Server-sent events (`GET /api/v1/stream`): what a node stores, as it stores it, for pages
that update without a reload.

Each message is one stored event, `id:` its sequence number on this node, so a browser that
reconnects sends `Last-Event-ID` and misses nothing. A client holds no queue: every stream
reads the store from its own cursor when woken, so a slow reader costs the node nothing but
its socket, and the number of streams is capped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from aiohttp import web

from ..chapter.chapter_node import ChapterNode
from ..protocol.errors import BadRequest, Unavailable
from ..protocol.events import is_event_id
from .endpoints import int_param

__all__ = ["Broadcast", "TooManyStreams", "serve_stream", "MAX_STREAMS"]

MAX_STREAMS = 256
PAGE = 200  # events read per wake-up
KEEPALIVE_S = 15.0


class TooManyStreams(Unavailable):
    """Every stream slot is taken; the page falls back to reloading by hand."""

    code = "too_many_streams"


class Broadcast:
    """Wakes every open stream when the node stores something; closed on shutdown."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.streams = 0
        self.closed = False

    def attach(self, node: ChapterNode) -> None:
        loop = asyncio.get_running_loop()
        node.on_stored.append(lambda: loop.call_soon_threadsafe(self._wake))

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def wait(self, timeout: float) -> bool:
        """True when woken, False when `timeout` passed with nothing stored."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


def _cursor(request: web.Request, head: int) -> int:
    last = request.headers.get("Last-Event-ID")
    if last is not None:
        return int_param({"after": last}, "after", 0, 0, head, clamp=True)
    return int_param(request.query, "after", head, 0, head, clamp=True)


def _message(seq: int, raw: bytes) -> dict[str, object]:
    """What a page needs to know that something happened (it fetches the rest)."""
    event = json.loads(raw)
    proposal = event["body"].get("proposal")
    return {"seq": seq, "id": hashlib.sha256(raw).hexdigest(), "type": event["type"],
            "chapter": event["chapter"], "author": event["author"],
            "created_at": event["created_at"],
            "proposal": proposal if isinstance(proposal, str) else None}


async def serve_stream(request: web.Request, node: ChapterNode, broadcast: Broadcast
                       ) -> web.StreamResponse:
    """`?proposal=ID` keeps only what names that proposal (its acts, comments, seals)."""
    proposal = request.query.get("proposal")
    if proposal is not None and not is_event_id(proposal):
        raise BadRequest("proposal must be a 64-hex event id", code="bad_query")
    if broadcast.streams >= MAX_STREAMS:
        raise TooManyStreams(f"this node serves {MAX_STREAMS} live streams already; "
                             "reload the page to see new acts")
    after = _cursor(request, node.store.max_seq())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    broadcast.streams += 1
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        while not broadcast.closed:
            rows = node.store.changes(after, PAGE)
            out = []
            for seq, raw in rows:
                after = seq
                data = _message(seq, raw)
                if proposal is not None and data["proposal"] != proposal:
                    continue
                out.append(f"id: {seq}\ndata: {json.dumps(data)}\n\n".encode())
            if out:
                await response.write(b"".join(out))
            if len(rows) == PAGE:
                continue
            if not await broadcast.wait(KEEPALIVE_S):
                await response.write(b": keep-alive\n\n")  # proxies drop silent streams
    except ConnectionResetError:
        pass  # the page went away
    finally:
        broadcast.streams -= 1
    return response
