"""Campaign 12: poison events, in a peer batch and in the outbox.

A poison event is one that crashes a naive consumer. Two kinds:

- *crashers*: lines that made this node raise (every input in `tests/regressions/` that broke
  the batch decoder) and lines that stress what comes after parsing (a sealed line naming a
  seal nobody holds, a proposal closing on a day that does not exist);
- *nasty but valid* events, which other consumers (a browser, a C program, a log shipper,
  a line-oriented tool) choke on: NUL, U+2028/U+2029, bidi overrides, a byte-order mark,
  CR LF, 64 KiB of text, emoji joiners.

In a batch: each poison line goes in the middle of a batch of the story's events; the rest of
the batch must land (every story event stored), whatever becomes of the poison. In the outbox
(real processes): nasty-but-valid events go out among normal ones and must reach the peer,
with the events after them; and an outbox holding more than one peer batch can carry
(hundreds of 64 KiB events accumulated while the peer was away) must keep flowing both ways.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .kit import NOW_MS, InProcessNode, Kit
from .regressions import entries
from .report import Failure, Result

__all__ = ["poison_lines", "batch_lands", "nasty_bodies", "run", "outbox_flood"]


def nasty_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Valid proposal bodies that break naive consumers elsewhere."""
    big = "é" * 29_000 + "x" * 4_000
    return [
        ("nul", {"title": "nul\u0000byte", "text": "a\u0000b", "kind": "action"}),
        ("line-separators", {"title": "one\u2028two\u2029three", "text": "", "kind": "action"}),
        ("bidi-override", {"title": "\u202eevil\u202c txt.exe", "text": "", "kind": "action"}),
        ("bom", {"title": "\ufeffBOM first", "text": "\ufeff", "kind": "action"}),
        ("crlf", {"title": "first\r\nsecond", "text": "\r\n\r\n", "kind": "action"}),
        ("emoji-joiners", {"title": "👩‍👩‍👧‍👦" * 20, "text": "🏳️‍🌈" * 500, "kind": "action"}),
        ("controls", {"title": "bell\u0007 esc\u001b[31m red", "text": "\u0008" * 100,
                      "kind": "action"}),
        ("max-size", {"title": "Long", "text": big, "kind": "action"}),
        ("html", {"title": "<script>alert(1)</script>", "text": "</textarea>", "kind": "action"}),
        ("sql", {"title": "'); drop table events; --", "text": "", "kind": "action"}),
    ]


def poison_lines(kit: Kit) -> list[tuple[str, bytes, str | None]]:
    """(name, line, known bug or None) for every poison put in a batch."""
    out: list[tuple[str, bytes, str | None]] = []
    for entry in entries():
        if entry.door == "negentropy":
            continue
        for i, line in enumerate(l for l in entry.data().split(b"\n") if l.strip()):
            out.append((f"regression {entry.name}#{i}", line, entry.bug))
    for name, body in nasty_bodies():
        ev = kit.sign("proposal", body, by="amelie", chapter="paris", at_ms=NOW_MS - 60_000)
        out.append((f"valid {name}", ev.canonical, None))
    out.append(("sealed line for a seal nobody holds",
                b'{"sealed":{"seal":"' + b"c" * 64 + b'","acts":[]}}', None))
    out.append(("sealed line, acts not hex", b'{"sealed":{"seal":"' + b"c" * 64 +
                b'","acts":["' + b"z" * 64 + b'"]}}', None))
    out.append(("empty object", b"{}", None))
    out.append(("a JSON string", b'"\\u0000"', None))
    return out


def batch_lands(kit: Kit, node: InProcessNode, poison: bytes) -> tuple[bool, str]:
    """Put `poison` in the middle of the story; (did the rest land?, what happened)."""
    story = [line for line in kit.story]
    middle = len(story) // 2
    batch = story[:middle] + [poison] + story[middle:]
    head = node.head()
    sealed = set(node.store.all_sealed())
    try:
        outcomes = node.node.receive(batch, origin="rome", now_ms=NOW_MS)
    except Exception as e:
        node.rollback_to(head, sealed)
        return False, f"the whole batch failed: {type(e).__name__}: {str(e)[:120]}"
    rest = outcomes[:middle] + outcomes[middle + 1:]
    landed = sum(o.status == "stored" for o in rest)
    node.rollback_to(head, sealed)
    if landed != len(rest):
        return False, f"only {landed}/{len(rest)} of the rest landed"
    return True, f"poison {outcomes[middle].status} {outcomes[middle].code or ''}".strip()


def outbox_flood(big_events: int = 270, wait_s: float = 20.0,
                 progress: Callable[[str], None] = print) -> tuple[bool, str]:
    """Two nodes each gather `big_events` 64 KiB events while the other is away, then meet:
    does a new event cross, both ways, within `wait_s`?"""
    from .live import CONNECTORS, federation, request

    with federation(("paris", "rome"), start=("paris",), pull_interval=0.5) as fed:
        assert fed.charter is not None

        def submit(via: str, who: Any, title: str, text: str) -> str:
            ev = sign_event(federation=fed.charter.id, type="proposal", chapter=via,
                            created_at=format_ms(int(time.time() * 1000)),
                            body={"title": title, "text": text, "kind": "action"},
                            signing_key=who.key)
            reply = request(fed.nodes[via].port, "POST", "/api/v1/events", ev.canonical,
                            {"Content-Type": "application/json"})
            assert reply.status == 201, reply
            return ev.id

        text = "é" * 29_000 + "x" * 4_000
        for i in range(big_events):
            submit("paris", CONNECTORS[0], f"Long paris {i}", text)
        fed.kill("paris")
        fed.start("rome")
        for i in range(big_events):
            submit("rome", CONNECTORS[2], f"Long rome {i}", text)
        fed.start("paris")
        progress(f"poison: {big_events} × 64 KiB events in each outbox; waiting for markers")
        crossed = []
        for via, who, other in (("paris", CONNECTORS[0], "rome"), ("rome", CONNECTORS[2], "paris")):
            marker = submit(via, who, f"Marker from {via}", "")
            crossed.append(fed.wait_for(lambda: request(
                fed.nodes[other].port, "GET", f"/api/v1/events/{marker}").status == 200, wait_s))
        errors = [p["last_error"] for s in ("paris", "rome")
                  for p in fed.nodes[s].get("/api/v1/status")["peers"] if p["last_error"]]
    ok = all(crossed)
    return ok, ("both markers crossed" if ok else
                f"markers crossed: paris→rome {crossed[0]}, rome→paris {crossed[1]}; "
                f"{(errors or ['no error'])[0][:160]}")


def outbox_nasty(progress: Callable[[str], None] = print) -> tuple[int, int, str]:
    """Nasty-but-valid events among normal ones, submitted to Paris: (sent, reached Rome, note)."""
    from .live import CONNECTORS, federation, request

    with federation(("paris", "rome"), start=("paris", "rome"), pull_interval=0.3) as fed:
        assert fed.charter is not None
        ids = []
        for name, body in nasty_bodies():
            for title in (f"before {name}", None, f"after {name}"):
                b = body if title is None else {"title": title, "text": "", "kind": "action"}
                ev = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                                created_at=format_ms(int(time.time() * 1000)), body=b,
                                signing_key=CONNECTORS[0].key)
                reply = request(fed.nodes["paris"].port, "POST", "/api/v1/events", ev.canonical,
                                {"Content-Type": "application/json"})
                if reply.status == 201:
                    ids.append(ev.id)
        fed.wait_for(lambda: all(request(fed.nodes["rome"].port, "GET",
                                         f"/api/v1/events/{i}").status == 200 for i in ids), 15)
        reached = sum(request(fed.nodes["rome"].port, "GET", f"/api/v1/events/{i}").status == 200
                      for i in ids)
    return len(ids), reached, ""


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    kit = Kit()
    lines = poison_lines(kit)
    failures: dict[str, list[str]] = {}
    held = 0
    with InProcessNode.temporary(kit) as node:
        for name, line, bug in lines:
            ok, what = batch_lands(kit, node, line)
            if ok:
                held += 1
            else:
                key = bug or _classify(what)
                failures.setdefault(key, []).append(f"{name}: {what}")
    progress(f"poison: {held}/{len(lines)} batches landed around their poison")
    sent, reached, _ = outbox_nasty(progress)
    flood_ok, flood_note = outbox_flood(progress=progress)
    if reached != sent:
        failures.setdefault("nasty valid events did not all reach the peer", []).append(
            f"{reached}/{sent} reached Rome")
    if not flood_ok:
        failures.setdefault("outbox-over-batch-limit", []).append(flood_note)
    count = len(lines) + sent + 1
    return Result(
        number=12, name="poison events",
        tried=f"{len(lines)} poison lines (every regression input, sealed lines for unknown "
              f"seals, {len(nasty_bodies())} valid events that break naive consumers: NUL, "
              "U+2028, bidi, BOM, CR LF, 64 KiB, emoji joiners, controls, HTML, SQL) each in the "
              f"middle of a 26-line peer batch; {sent} events through a real outbox (the nasty "
              "ones among normal ones); two real nodes meeting with 270 × 64 KiB events each "
              "in their outbox",
        count=count,
        held=f"{held}/{len(lines)} batches landed whole around their poison; {reached}/{sent} "
             f"outbox events reached the peer; outbox flood: {flood_note}",
        failures=[Failure(k, len(v), v[:3]) for k, v in failures.items()],
        seconds=time.monotonic() - started,
    )


def _classify(what: str) -> str:
    return "a poison line made the rest of its batch fail: " + what[:80]

