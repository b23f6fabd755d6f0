"""`tests/regressions/`: every input that ever broke something, and how to replay it.

`index.json` lists entries `{name, file, door, expect, bug, found_by}`:

- `door` is where the input goes: `event` (the file is one untrusted input, sent through
  `parse_event` and as a one-line peer batch), `batch` (the file's lines are one peer batch),
  `negentropy` (the file is one message for the responder over the kit's story),
  `negentropy_initiator` (a selector byte, then a hostile reply for the initiator: campaign
  1's invariant over the same storages).
- `expect` is `refused:<code>`, `refused` (any specific refusal, never a crash), `accepted`,
  or `no_crash` (each line gets its outcome, whatever it is, and nothing raises).
- `bug` names an entry of `hardening.known.KNOWN_BUGS`; while that bug is open the replay is
  `xfail(strict=True)`, so the fix turns it into a failure until the flag is flipped.

`tests/test_regressions.py` replays every entry in `make test`; `replay()` is the one
judgement both it and the campaigns use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from node.federation.negentropy import Negentropy, NegentropyError, VectorStorage
from node.protocol.errors import InvalidEvent
from node.protocol.events import parse_event

from .kit import NOW_MS, InProcessNode, Kit

__all__ = ["DIR", "Entry", "entries", "save", "replay"]

DIR = Path(__file__).resolve().parent.parent / "tests" / "regressions"
INDEX = DIR / "index.json"


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    file: str
    door: str
    expect: str
    bug: str | None
    found_by: str

    def data(self) -> bytes:
        return (DIR / self.file).read_bytes()


def entries() -> list[Entry]:
    if not INDEX.exists():
        return []
    return [Entry(**e) for e in json.loads(INDEX.read_text(encoding="utf-8"))]


def save(name: str, data: bytes, *, door: str, expect: str, bug: str | None,
         found_by: str, suffix: str = ".bin") -> Entry:
    """Keep an input (idempotent by name and content)."""
    DIR.mkdir(parents=True, exist_ok=True)
    current = entries()
    for e in current:
        if e.name == name or (e.door == door and e.data() == data):
            return e
    digest = hashlib.sha256(data).hexdigest()[:10]
    file = f"{name}-{digest}{suffix}"
    (DIR / file).write_bytes(data)
    entry = Entry(name, file, door, expect, bug, found_by)
    current.append(entry)
    INDEX.write_text(json.dumps([asdict(e) for e in current], indent=2, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    return entry


def replay(entry: Entry, kit: Kit, node: InProcessNode) -> list[str]:
    """Problems found replaying `entry` (empty: it behaves as expected)."""
    data = entry.data()
    problems: list[str] = []
    if entry.door == "event":
        problems += _judge_one("parse_event", entry.expect, lambda: _parse(data, kit))
        problems += _judge_batch(entry.expect, [data], node)
    elif entry.door == "batch":
        lines = [line for line in data.split(b"\n") if line.strip()]
        for i, line in enumerate(lines):
            problems += [f"line {i}: {p}" for p in
                         _judge_one("parse_event", entry.expect, lambda line=line: _parse(line, kit))]
        problems += _judge_batch(entry.expect, lines, node)
    elif entry.door == "negentropy":
        storage = VectorStorage(node.store.reconciliation_items())
        storage.seal()
        try:
            reply = Negentropy(storage, frame_size_limit=256 * 1024).reconcile_responder(data)
            if not entry.expect.startswith("accepted") and not isinstance(reply, bytes):
                problems.append("responder returned no bytes")
        except NegentropyError:
            if entry.expect == "accepted":
                problems.append("refused a message that should be answered")
        except Exception as e:
            problems.append(f"crash: {type(e).__name__}: {str(e)[:100]}")
    elif entry.door == "negentropy_initiator":
        from .judges import initiator_invariant

        finding = initiator_invariant()(data)
        if finding is not None:
            problems.append(f"{finding.kind}: {finding.signature}")
    else:
        problems.append(f"unknown door {entry.door}")
    return problems


def _parse(data: bytes, kit: Kit) -> str:
    try:
        parse_event(data, federation=kit.federation)
    except InvalidEvent as e:
        return e.code
    return "accepted"


def _judge_one(door: str, expect: str, call) -> list[str]:
    try:
        got = call()
    except Exception as e:
        return [f"{door}: crash {type(e).__name__}: {str(e)[:100]}"]
    if expect == "no_crash" or (expect == "refused" and got != "accepted"):
        return []
    if got != expect.removeprefix("refused:"):
        return [f"{door}: got {got}, expected {expect}"]
    return []


def _judge_batch(expect: str, lines: list[bytes], node: InProcessNode) -> list[str]:
    before = node.head()
    sealed = set(node.store.all_sealed())
    try:
        outcomes = node.node.receive(lines, origin="rome", now_ms=NOW_MS)
    except Exception as e:
        node.rollback_to(before, sealed)
        return [f"peer batch: crash {type(e).__name__}: {str(e)[:100]}"]
    problems = []
    if len(outcomes) != len(lines):
        problems.append(f"peer batch: {len(outcomes)} outcomes for {len(lines)} lines")
    stored = node.head() - before
    if expect not in ("accepted", "no_crash"):
        if stored:
            problems.append(f"peer batch: {stored} events stored from refused input")
        for i, o in enumerate(outcomes):
            if o.status == "stored":
                problems.append(f"peer batch: line {i} stored")
            elif expect.startswith("refused:") and o.code != expect.removeprefix("refused:"):
                problems.append(f"peer batch: line {i} refused with {o.code}, expected {expect}")
    node.rollback_to(before, sealed)
    return problems


def main() -> None:  # pragma: no cover - a maintenance aid
    kit = Kit()
    with InProcessNode.temporary(kit) as node:
        node.node.receive(kit.story, origin="rome", now_ms=NOW_MS)
        for e in entries():
            print(e.name, replay(e, kit, node) or "ok")


if __name__ == "__main__":  # pragma: no cover
    main()
