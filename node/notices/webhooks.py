"""Telling the chapter: notices about decisions, delivered to webhooks from a durable queue.

"Every chapter is told": each node tells its own chapter's tools (chat, mailing list bridge,
website) through webhooks when a proposal opens, 24 h before it closes, when an action gets its
green light, when a veto is filed or withdrawn, and when a result is final.

A notice is made once (its key names what it is about) and stored; a delivery row per target
is retried with exponential backoff until the target answers 2xx, across restarts. Each POST
carries `X-Chapter-Node-Signature: sha256=<hex HMAC-SHA256 of the body with the target's
secret>`, so the receiver can tell it came from its node.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from ..config import Webhook
from ..protocol.events import Event, event_from_stored
from ..protocol.times import format_ms, parse_ms
from ..store import Store

__all__ = ["Notices", "deliver_due", "signature", "CLOSING_SOON_MS"]

log = logging.getLogger("chapter_node.webhooks")
CLOSING_SOON_MS = 24 * 3_600_000
MAX_BACKOFF_MS = 3_600_000


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class Notices:
    """Finds what the chapter should be told and queues it for every interested target."""

    def __init__(self, store: Store, chapter: str, targets: Sequence[Webhook],
                 counts: Callable[[Event], bool] = lambda event: True, *,
                 mail: bool = False) -> None:
        self.store = store
        self.chapter = chapter
        self.targets = tuple(targets)
        self.mail = mail  # also one mail delivery per member who gave an address (node.notices.mail)
        # whether a held event counts (a peer keeps some that do not: ChapterNode.counts);
        # the chapter is told only of those
        self.counts = counts
        if self.store.get_meta("notices_seq") is None:
            # Start from now: a node that gains webhooks does not replay its whole history.
            self.store.set_meta("notices_seq", str(self.store.max_seq()))

    def collect(self, now_ms: int, finals: Sequence[tuple[str, dict[str, Any]]] = ()) -> int:
        """Queue notices for new events, proposals closing within 24 h, and final results.

        finals: (proposal id, report) for proposals the node has just recorded final, green-lit
        or amended.
        """
        made = 0
        seen = int(self.store.get_meta("notices_seq") or 0)
        rows = self.store.noticeable_after(seen)
        for seq, raw, created_ms in rows:
            if not self.counts(event_from_stored(raw, created_ms)):
                continue
            event = json.loads(raw)
            eid = hashlib.sha256(raw).hexdigest()
            if event["type"] == "proposal":
                made += self._notice(f"proposal_opened:{eid}", "proposal_opened", eid, now_ms,
                                     {"proposal": _summary(eid, event)})
            else:
                kind = "veto_filed" if event["type"] == "veto" else "veto_withdrawn"
                made += self._notice(f"{kind}:{eid}", kind, event["body"]["proposal"], now_ms, {
                    "proposal": self._proposal_summary(event["body"]["proposal"]),
                    "event": eid, "connector": event["author"],
                    **({"reason": event["body"]["reason"]} if kind == "veto_filed" else {})})
        if rows:
            self.store.set_meta("notices_seq", str(rows[-1][0]))
        for raw, created_ms in self.store.raw_proposals():
            event = json.loads(raw)
            closes = event["body"].get("closes_at")
            if closes and now_ms < parse_ms(closes) <= now_ms + CLOSING_SOON_MS:
                if not self.counts(event_from_stored(raw, created_ms)):
                    continue
                eid = hashlib.sha256(raw).hexdigest()
                made += self._notice(f"closing_soon:{eid}", "closing_soon", eid, now_ms,
                                     {"proposal": _summary(eid, event)})
        for pid, report in finals:
            kind = "green_light" if report["tally"]["kind"] == "action" else "result_final"
            made += self._notice(f"{kind}:{pid}:{report['tally_hash']}", kind, pid, now_ms, {
                "proposal": self._proposal_summary(pid), "state": report["state"],
                "tally": report["tally"], "tally_hash": report["tally_hash"],
                "outcome": report["tally"]["outcome"],
                **({"amended_from": report["amended_from"]} if report.get("amended_from") else {}),
            })
        return made

    def _proposal_summary(self, pid: str) -> dict[str, Any]:
        event = self.store.get(pid)
        return _summary(pid, json.loads(event.canonical)) if event else {"id": pid}

    def _author(self, pid: str) -> str | None:
        event = self.store.get(pid)
        return json.loads(event.canonical)["author"] if event else None

    def _notice(self, key: str, kind: str, proposal: str, now_ms: int,
                payload: dict[str, Any]) -> int:
        body = {"kind": kind, "chapter": self.chapter, "at": format_ms(now_ms), **payload}
        return int(self.store.queue_notice(key, kind, proposal,
                                           json.dumps(body, ensure_ascii=False), now_ms,
                                           lambda: self._targets(kind, proposal)))

    def _targets(self, kind: str, proposal: str) -> list[str]:
        """Who hears of a new notice: the webhooks that asked for its kind, and (with mail)
        each member who wants email, at once or in the day's digest."""
        targets = [t.url for t in self.targets if kind in t.events]
        if self.mail:
            # each: a mail per notice; digest: one mail a day (node.notices.mail); but a
            # proposal's author hears of each veto on it at once
            author = (self._author(proposal) if kind in ("veto_filed", "veto_withdrawn")
                      else None)
            for r in self.store.mail_recipients():
                if r["mode"] not in ("each", "digest") or (
                        kind == "closing_soon" and self.store.has_acted(r["key"], proposal)):
                    continue
                at_once = r["mode"] == "each" or r["key"] == author
                targets.append(f"{'mail' if at_once else 'digest'}:{r['key']}")
        return targets


def _summary(pid: str, event: dict[str, Any]) -> dict[str, Any]:
    body = event["body"]
    return {"id": pid, "title": body["title"], "kind": body["kind"], "chapter": event["chapter"],
            "closes_at": body.get("closes_at")}


async def deliver_due(store: Store, session: aiohttp.ClientSession, targets: Sequence[Webhook],
                      now_ms: int, *, timeout_s: float = 10.0, limit: int = 50) -> int:
    """POST every due delivery once; returns how many were delivered."""
    by_url = {t.url: t for t in targets}
    rows = store.due_webhook_deliveries(now_ms, limit)
    delivered = 0
    for did, url, attempts, kind, payload in rows:
        target = by_url.get(url)
        if target is None:
            continue  # a target removed from the configuration keeps its queue, unsent
        body = payload.encode("utf-8")
        headers = {"Content-Type": "application/json",
                   "X-Chapter-Node-Event": kind,
                   "X-Chapter-Node-Delivery": str(did),
                   "X-Chapter-Node-Signature": signature(target.secret, body)}
        try:
            async with session.post(url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                ok = 200 <= resp.status < 300
                error = None if ok else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            ok, error = False, f"{type(e).__name__}: {e}"
        if ok:
            store.webhook_delivered(did, now_ms, attempts + 1)
            delivered += 1
        else:
            wait = min(MAX_BACKOFF_MS, 1000 * 2 ** min(attempts, 20))
            store.retry_delivery(did, attempts + 1, now_ms + wait, error)
            log.info("webhook %s: %s (retry in %d s)", url, error, wait // 1000)
    return delivered
