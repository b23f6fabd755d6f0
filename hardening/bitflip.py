"""Campaign 3: valid events with one bit flipped in a signed field or in the signature.

Half the flips hit a random bit of a random byte of the canonical form (keys, punctuation,
values, `sig`: every byte of it is signed or is the signature); the other half flip one bit of
one value (a character's code point, an integer, a boolean) and re-encode the event as
canonical JSON, so the result is well-formed and only the signature can catch it. Every
altered event must be refused, through `parse_event` and through a peer batch, and nothing
may be stored. A flip that yields another spelling of the *same* event (same canonical bytes,
same id: e.g. `\\u001f` → `\\u001F`) changes nothing signed; it is counted apart.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from node.protocol.errors import InvalidEvent
from node.protocol.events import Event, canonical, parse_event

from .kit import CHAPTERS, CONNECTORS, NOW_MS, InProcessNode, Kit, public
from .report import Failure, Result

__all__ = ["valid_events", "flip", "run"]

_WORDS = ["budget", "summit", "Lisbon", "handbook", "café", "Zürich", "naïve", "東京", "🎉",
          "\u0007bell", "tab\there", "line\nbreak", "quote\"d", "back\\slash", "ünïcödé", "x"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, n)))


def valid_events(kit: Kit, n: int, rng: random.Random) -> list[Event]:
    """`n` valid, signed events of every type (state aside: parse_event accepts each)."""
    story = kit.story_events
    proposals = [e for e in story if e.type == "proposal"]
    seal = next(e for e in story if e.type == "seal")
    out: list[Event] = []
    for i in range(n):
        at = NOW_MS - rng.randint(0, 20 * 86_400_000)
        name, chapter = rng.choice(CONNECTORS)
        pid = rng.choice(proposals).id
        kind = rng.randrange(9)
        if kind == 0:
            k = rng.choice(["consent", "action", "vote"])
            body: dict[str, Any] = {"title": _text(rng, 6)[:300], "text": _text(rng, 40),
                                    "kind": k}
            if k != "action":
                body["closes_at"] = _ts(at + rng.randint(2, 500) * 3_600_000)
            if k == "vote" and rng.random() < 0.5:
                body["quorum"] = rng.choice([0, 0.25, 0.5, 1])
            ev = kit.sign("proposal", body, by=name, chapter=chapter, at_ms=at)
        elif kind == 1:
            ev = kit.sign("comment", {"proposal": pid, "text": _text(rng, 20)}, by=name,
                          chapter=chapter, at_ms=at)
        elif kind == 2:
            ev = kit.sign("vote", {"proposal": pid, "choice": rng.choice(["yes", "no", "abstain"])},
                          by=name, chapter=chapter, at_ms=at)
        elif kind == 3:
            ev = kit.sign("veto", {"proposal": pid, "reason": _text(rng, 10)}, by=name,
                          chapter=chapter, at_ms=at)
        elif kind == 4:
            other = rng.choice([c for c in CONNECTORS if c[0] != name])[0]
            ev = kit.sign("delegation", {"to": rng.choice([public(other), None]),
                                         "proposal": rng.choice([pid, None])},
                          by=name, chapter=chapter, at_ms=at)
        elif kind == 5:
            slug = rng.choice(CHAPTERS)
            ev = kit.sign("member", {"key": public(f"person {i}"), "active": rng.random() < 0.8},
                          by=f"node {slug}", chapter=slug, at_ms=at)
        elif kind == 6:
            body = dict(seal.body)
            body["acts_count"] = rng.randint(0, 10**9)
            body["tally"] = {**body["tally"], "yes": rng.randint(0, 99)}
            ev = kit.sign("seal", body, by="node rome", chapter="rome", at_ms=at)
        elif kind == 7:
            ev = kit.sign("endorse", {"proposal": pid}, by=name, chapter=chapter, at_ms=at)
        else:
            ev = kit.sign("chapter_url", {"url": f"https://{chapter}-{i}.example/node"},
                          by=f"node {chapter}", chapter=chapter, at_ms=at)
        out.append(ev)
    return out


def _ts(ms: int) -> str:
    from node.protocol.times import format_ms

    return format_ms(ms)


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _leaves(v, (*path, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _leaves(v, (*path, i))]
    return [path]


def _set(obj: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _get(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def flip(event: Event, rng: random.Random) -> tuple[str, bytes]:
    """(where, altered bytes): one bit of the canonical bytes, or of one value."""
    raw = event.canonical
    if rng.random() < 0.5:
        pos = rng.randrange(len(raw))
        bit = 1 << rng.randrange(8)
        return "byte", raw[:pos] + bytes([raw[pos] ^ bit]) + raw[pos + 1:]
    obj = event.to_json()
    while True:
        path = rng.choice([p for p in _leaves(obj) if _get(obj, p) is not None])
        value = _get(obj, path)
        if isinstance(value, bool):
            new: Any = not value
        elif isinstance(value, int):
            new = value ^ (1 << rng.randrange(max(1, value.bit_length() + 1)))
        elif isinstance(value, str) and value:
            i = rng.randrange(len(value))
            code = ord(value[i]) ^ (1 << rng.randrange(max(8, ord(value[i]).bit_length())))
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                continue
            new = value[:i] + chr(code) + value[i + 1:]
        else:
            continue
        _set(obj, path, new)
        return "value:" + ".".join(map(str, path)), canonical(obj)


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    n = max(100, int(10_000 * scale))
    rng = random.Random(seed)
    kit = Kit()
    events = valid_events(kit, n, rng)
    codes: Counter[str] = Counter()
    same_event = 0
    accepted: list[str] = []
    stored_bad = 0
    with InProcessNode.temporary(kit) as node:
        node.node.receive(kit.story, origin="rome", now_ms=NOW_MS)
        head = node.head()
        sealed = set(node.store.all_sealed())
        batch: list[bytes] = []
        for ev in events:
            where, altered = flip(ev, rng)
            try:
                got = parse_event(altered, federation=kit.federation)
            except InvalidEvent as e:
                codes[e.code] += 1
                batch.append(altered)
                continue
            if got.id == ev.id and got.canonical == ev.canonical:
                same_event += 1  # another spelling of the very same signed bytes
                continue
            accepted.append(f"{where} of {ev.id[:12]}")
        for i in range(0, len(batch), 500):
            outcomes = node.node.receive(batch[i:i + 500], origin="rome", now_ms=NOW_MS)
            stored_bad += sum(o.status == "stored" for o in outcomes)
        stored_bad += node.head() - head
        node.rollback_to(head, sealed)
    refused = sum(codes.values())
    failures = []
    if accepted:
        failures.append(Failure("an altered event was accepted", len(accepted), accepted[:3]))
    if stored_bad:
        failures.append(Failure("an altered event was stored from a peer batch", stored_bad))
    top = ", ".join(f"{c} {k}" for k, c in codes.most_common(6))
    return Result(
        number=3, name="bit flips in signed events",
        tried=f"{n:,} valid events of 9 types (random Unicode content), one random bit flipped: "
              "half in a random byte of the canonical form, half in one value re-encoded as "
              "canonical JSON; each through parse_event and a peer batch",
        count=n,
        held=f"{refused:,}/{n:,} refused ({top}); {same_event} flips gave another spelling of "
             f"the same signed bytes (same id, nothing altered); 0 altered events accepted or "
             f"stored" if not failures else f"{refused:,}/{n:,} refused",
        failures=failures,
    )
