"""The one HTTP client a node uses to talk to its peers: every request signed (RFC 9421).

Bounded everywhere: a total timeout per request and a cap on response size, so a peer that
hangs or answers garbage costs one failed call and nothing else.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson
from yarl import URL

from ..logs import REQUEST_ID
from ..protocol.errors import RemoteError
from .httpsig import sign_request

__all__ = ["PeerClient", "PeerUnavailable", "PeerReply"]

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class PeerUnavailable(RemoteError):
    """The peer could not be reached, timed out, or answered with an error."""

    code = "peer_unavailable"


@dataclass(frozen=True, slots=True)
class PeerReply:
    status: int
    body: bytes
    headers: dict[str, str]
    skew_ms: int | None  # peer clock minus ours, from its Date header (second resolution)

    def accepted(self, url: str) -> PeerReply:
        """This reply, unless its status says the peer refused the request: every transport
        (HTTP, the in-memory network) treats a refusal the same way."""
        if self.status >= 400:
            raise PeerUnavailable(f"{url}: HTTP {self.status} {self.body[:200]!r}",
                                  code="peer_refused")
        return self

    def json(self) -> object:
        try:
            return orjson.loads(self.body)  # a batch's answer: 1,000 results, ~3 x json's speed
        except ValueError as e:
            raise PeerUnavailable(f"peer answered non-JSON: {self.body[:80]!r}") from e


class PeerClient:
    def __init__(self, session: aiohttp.ClientSession, node_seed: bytes,
                 *, timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.session = session
        self.seed = node_seed
        self.clock = clock  # seconds: the node's clock signs (ChapterNode.clock / 1000)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(3.0, timeout_s))

    async def call(self, method: str, base_url: str, path: str, body: bytes = b"",
                   content_type: str = "application/json",
                   request_id: str | None = None) -> PeerReply:
        url = base_url.rstrip("/") + path
        now = self.clock()
        headers = sign_request(method, url, body, self.seed, now=now)
        headers["Content-Type"] = content_type
        request_id = request_id or REQUEST_ID.get()
        if request_id:
            headers["X-Request-Id"] = request_id
        try:
            async with self.session.request(method, URL(url, encoded=True), data=body,
                                            headers=headers, timeout=self.timeout) as resp:
                declared = resp.content_length
                if declared is not None and declared > MAX_RESPONSE_BYTES:
                    raise PeerUnavailable(f"{url}: response of {declared} bytes is over "
                                          f"{MAX_RESPONSE_BYTES}")
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65536):  # the whole body, bounded
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise PeerUnavailable(f"{url}: response over {MAX_RESPONSE_BYTES} bytes")
                    chunks.append(chunk)
                reply = PeerReply(resp.status, b"".join(chunks), dict(resp.headers),
                                  _skew(resp, now, self.clock()))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
            raise PeerUnavailable(f"{url}: {type(e).__name__}: {e}") from e
        return reply.accepted(url)


def _skew(resp: aiohttp.ClientResponse, sent_at: float, got_at: float) -> int | None:
    date = resp.headers.get("Date")
    if not date:
        return None
    try:
        peer = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    mid = (sent_at + got_at) / 2
    return int((peer - mid) * 1000)
