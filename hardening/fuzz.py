"""Campaign 1: coverage-guided fuzzing of the doors that take untrusted bytes.

Targets (each a `Target`: bytes in, `None` when the invariant holds, `Finding` when not):

- `parse_event`: bytes → event. Invariant: a verified `Event` or `InvalidEvent`, nothing
  else; an accepted event is byte for byte one the kit signed (no forgery gets through).
- `negentropy`: one message to the responder over a small storage (empty, the story's 24
  items, or 300 items with a 4096-byte frame limit). Invariant: a reply or `NegentropyError`;
  the reply respects the frame limit and is itself a well-formed message.
- `negentropy_initiator`: the same storages as initiator (opened with `initiate()`, with
  `initiate_whole_set()` as sync.py does, or resumed), fed one reply from a hostile
  responder. Invariant: `(next message, have, need)` or `NegentropyError`; the next message
  respects the frame limit and is bounded by the reply's size and ours (memory stays bounded),
  `have` names only ids we hold, `need` only ids the reply sent.
- `peer_batch`: the bytes as the JSON Lines of a peer batch, to `ChapterNode.receive` on a
  store holding part of the story. Invariant: one outcome per line, no exception, and every
  event stored is one the kit signed (0 events stored from bad input).
- `signed_event`: the bytes as JSON, completed into an envelope and *correctly signed* by a
  Connector (or a node key), then received from a peer, so the state-dependent rules and
  every view a consumer reads (proposal reports, listing, status, export) meet arbitrary
  content that passes the signature. Invariant: no exception anywhere.

`python -m hardening` runs each target under atheris (libFuzzer, coverage of `node.*`) in its
own process for a number of inputs and a time bound; `tests/test_hardening_fuzz.py` runs a few
thousand inputs of each through `mutate()`, a small seeded mutator over the same seeds, so
`make test` needs no atheris. An exception that is a known, pinned bug (`known.py`) is counted
and fuzzing goes on; any other is saved to `tests/regressions/` as a new finding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .judges import (
    Finding,
    Target,
    crash,
    initiator_invariant,
    item_sets,
    negentropy_judge,
)

__all__ = ["TARGETS", "Finding", "Target", "initiator_invariant", "make_target", "seeds", "mutate", "run"]

TARGETS = ("parse_event", "negentropy", "negentropy_initiator", "peer_batch", "signed_event")
RUN_ORDER = ("negentropy", "negentropy_initiator", "peer_batch", "parse_event", "signed_event")
DICTIONARY = [
    '"v"', '"federation"', '"type"', '"chapter"', '"author"', '"created_at"', '"body"', '"sig"',
    '"proposal"', '"vote"', '"seal"', '"veto"', '"member"', '"comment"', '"delegation"',
    '"endorse"', '"veto_withdraw"', '"feedback_request"', '"chapter_url"', '"sealed"',
    '"acts"', '"kind"', '"consent"', '"action"', '"closes_at"', '"effect"', '"escalated_from"',
    '"quorum"', '"threshold"', '"tally"', '"acts_root"', '"acts_count"', '"tally_hash"',
    '"appoint_connector"', '"remove_connector"', '"admit_chapter"', '"to"', '"choice"',
    '"yes"', '"reason"', '"title"', '"text"', '"key"', '"active"', '"url"', '"slug"', "null",
    "true", "false", "-0", "-0.0", "1e999", "NaN", "Infinity", "9007199254740992",
    "9007199254740991", "\\u0000", "\\ud800", "\\\\", "\\n", "\"2026-02-30T00:00:00.000Z\"",
    "{", "}", "[", "]", ":", ",", "\n",
]


# --- seeds ----------------------------------------------------------------------------------


def seeds(target: str) -> list[bytes]:
    """The corpus each target starts from: valid inputs and a few near-misses."""
    from .boundary import cases
    from .kit import Kit

    kit = Kit()
    story = kit.story
    if target in ("parse_event", "signed_event"):
        out = [line for line in story if not line.startswith(b'{"sealed"')]
        out += [c.raw for c in cases(kit) if len(c.raw) < 4096]
        if target == "signed_event":
            out = [_strip_envelope(line) for line in out[:30]] + out
        return out
    if target == "peer_batch":
        return [b"\n".join(story[i:i + 3]) for i in range(0, len(story), 3)] + story
    storages = item_sets()
    from node.federation.negentropy import Negentropy

    out = []
    if target == "negentropy_initiator":
        # selector byte (storage, opening), then a genuine reply to that opening
        for i, (storage, limit) in enumerate(storages):
            for opening in range(2):
                ne = Negentropy(storage, limit)
                msg = ne.initiate_whole_set() if opening else ne.initiate()
                for other, other_limit in storages:
                    reply = Negentropy(other, other_limit).reconcile_responder(msg)
                    out.append(bytes([i + len(storages) * opening]) + reply)
        return out
    for storage, limit in storages:
        msg = Negentropy(storage, limit).initiate()
        out.append(bytes([len(out) % 3]) + msg)
        for other, other_limit in storages:
            reply = Negentropy(other, other_limit).reconcile_responder(msg)
            out.append(bytes([storages.index((other, other_limit))]) + reply)
    return out


def _strip_envelope(line: bytes) -> bytes:
    obj = json.loads(line)
    return json.dumps({"type": obj["type"], "body": obj["body"]}, ensure_ascii=False).encode()


# --- targets --------------------------------------------------------------------------------


def make_target(name: str) -> tuple[Target, Callable[[], None]]:
    """(target, close). Builds the state a target needs once; each call is independent."""
    from .kit import Kit

    kit = Kit()
    if name == "parse_event":
        return _parse_target(kit), lambda: None
    if name == "negentropy":
        return negentropy_judge(), lambda: None
    if name == "negentropy_initiator":
        return initiator_invariant(), lambda: None
    if name in ("peer_batch", "signed_event"):
        return _node_target(kit, signed=name == "signed_event")
    raise ValueError(f"unknown target {name}")


def _parse_target(kit: Any) -> Target:
    from node.protocol.errors import InvalidEvent
    from node.protocol.events import parse_event

    signed = set()
    for s in seeds("parse_event"):
        try:
            signed.add(parse_event(s, federation=kit.federation).canonical)
        except Exception:
            pass

    import node.protocol.events as events

    fast = getattr(events, "load_event_json", None)  # a fast path, where there is one

    def target(data: bytes) -> Finding | None:
        if fast is not None:
            finding = _fast_agrees(fast, data)
            if finding is not None:
                return finding
        try:
            event = parse_event(data, federation=kit.federation)
        except InvalidEvent:
            return None
        except Exception as e:
            return crash(e)
        if event.canonical not in signed:
            return Finding("invariant", "accepted an event nobody signed", event.canonical[:300].decode(errors="replace"))
        return None

    return target


def _fast_agrees(fast: Callable[[bytes], Any], data: bytes) -> Finding | None:
    """Differential check: when the fast JSON path takes an input as plain canonical text, the
    strict parser must read the very same value from it (and not refuse it)."""
    from node.protocol.errors import InvalidEvent
    from node.protocol.events import loads_strict

    try:
        obj, plain = fast(data)
    except InvalidEvent:
        return None
    except Exception as e:
        return crash(e)
    if plain is None:
        return None
    try:
        strict = loads_strict(data)
    except Exception as e:  # InvalidEvent included: the fast path took what strict refuses
        return Finding("invariant", "the fast JSON path took what the strict parser refuses",
                       f"{type(e).__name__}: {e} for {data[:200]!r}")
    if strict != obj or type(strict) is not type(obj):
        return Finding("invariant", "the fast and strict JSON paths read different values",
                       repr(data[:200]))
    return None


def _node_target(kit: Any, *, signed: bool) -> tuple[Target, Callable[[], None]]:
    from node.protocol.events import NODE_TYPES

    from .kit import CHAPTERS, CONNECTORS, NOW_MS, InProcessNode

    tmp = tempfile.TemporaryDirectory(prefix="hardening-fuzz-")
    node = InProcessNode(kit, "paris", Path(tmp.name) / "node.db")
    half = len(kit.story) // 2
    node.node.receive(kit.story[:half], origin="rome", now_ms=NOW_MS)
    base = node.head()
    base_sealed = set(node.store.all_sealed())
    known = {e.canonical for e in kit.story_events}

    def complete(data: bytes) -> bytes | None:
        """Fuzz bytes → a correctly signed envelope (None if they are not a JSON object)."""
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        type_ = obj.get("type")
        by, chapter = CONNECTORS[len(data) % len(CONNECTORS)]
        if isinstance(type_, str) and type_ in NODE_TYPES:
            chapter = obj.get("chapter") if obj.get("chapter") in CHAPTERS else "paris"
            by = f"node {chapter}"
        envelope = {"v": 1, "federation": kit.federation, "type": type_, "chapter": chapter,
                    "created_at": "2026-02-20T10:00:00.000Z", "body": obj.get("body")}
        for k, v in obj.items():
            if k not in ("sig", "author"):
                envelope[k] = v
        from .kit import public

        envelope["author"] = public(by)
        try:
            return kit.resign(envelope, by)
        except Exception:  # not canonicalisable (a lone surrogate, a float JCS refuses, ...)
            return None

    def consume() -> None:
        """What naive consumers of the store read: every view must still work."""
        now = NOW_MS
        node.node.proposals(now)
        for e in node.store.events_of(types=["proposal"]):
            if node.node.not_admitted(e) is None:  # a peer's proposal it could not admit is
                node.node.proposal_report(e.id, now)  # kept, and reported as not found
        node.node.status(now)
        for _ in node.node.export_lines(now):
            pass
        node.node.publish_due_seals(now)
        node.node.record_finality(now)

    def target(data: bytes) -> Finding | None:
        if signed:
            line = complete(data)
            if line is None:
                return None
            lines = [line]
        else:
            lines = [line for line in data.split(b"\n") if line.strip()]
        try:
            outcomes = node.node.receive(lines, origin="rome", now_ms=NOW_MS)
            stored = [r for (r,) in node.store.db.execute(
                "select canonical from events where seq > ?", [base])]
            if signed and stored:
                consume()
        except Exception as e:
            node.rollback_to(base, base_sealed)
            return crash(e)
        finding = None
        if len(outcomes) != len(lines):
            finding = Finding("invariant", "not one outcome per line", f"{len(outcomes)} for {len(lines)}")
        elif not signed:
            forged = [s for s in stored if bytes(s) not in known]
            if forged:
                finding = Finding("invariant", "stored an event nobody signed", bytes(forged[0])[:300].decode(errors="replace"))
        if node.head() != base or set(node.store.all_sealed()) != base_sealed:
            node.rollback_to(base, base_sealed)
        return finding

    def close() -> None:
        node.store.close()
        tmp.cleanup()

    return target, close


# --- a small mutator for the test slice (and when atheris is missing) ------------------------


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One to four random edits: bit flips, byte changes, dictionary tokens, splices, repeats."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:
            buf[pos:pos] = rng.choice(DICTIONARY).encode()
        elif op == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 64))
            del buf[pos:end]
        elif op == 4:
            other = rng.choice(pool)
            a = rng.randrange(len(other) + 1)
            buf[pos:pos] = other[a:a + rng.randint(1, 200)]
        elif op == 5 and buf:
            end = min(len(buf), pos + rng.randint(1, 16))
            buf[pos:pos] = buf[pos:end] * rng.randint(2, 64)
        elif op == 6:
            buf[pos:pos] = bytes([rng.choice(b'{}[]",:\\-0123456789eE.')])
        else:
            cut = rng.randrange(len(buf) + 1)
            buf = buf[:cut]
    return bytes(buf)


def _pools() -> dict[str, list[Any]]:
    from node.protocol.times import format_ms

    from .kit import CHAPTERS, CONNECTORS, MEMBERS, NOW_MS, Kit, public

    kit = Kit()
    story = kit.story_events
    times = [e.created_ms for e in story] + [NOW_MS]
    for e in story:
        if "closes_at" in e.body:
            from node.protocol.times import parse_ms

            c = parse_ms(e.body["closes_at"])
            times += [c - 1, c, c + 1, c + 300_000, c + 300_001, c + 3_600_000]
    names = [n for n, _ in CONNECTORS + MEMBERS] + ["sofia", "stranger"]
    return {
        "id": [e.id for e in story] + ["0" * 64],
        "key": [public(n) for n in names] + [public(f"node {c}") for c in (*CHAPTERS, "lyon")],
        "time": [format_ms(t) for t in times] + ["2025-12-31T23:59:59.999Z"],
        "chapter": [*CHAPTERS, "lyon", "atlantis"],
        "type": ["proposal", "comment", "endorse", "veto", "veto_withdraw", "vote", "delegation",
                 "member", "seal", "feedback_request", "chapter_url"],
        "scalar": [None, True, False, 0, 1, 0.5, 1.0, 2**53 - 1, "", " ", "x", "yes", "no",
                   "abstain", "consent", "action", "vote", "adopted", "vetoed", "rejected",
                   "pending", "no_quorum", "https://lyon.example/node", "é" * 300],
    }


def mutate_structured(data: bytes, rng: random.Random, pools: dict[str, list[Any]]) -> bytes:
    """Edit an event *as JSON*: swap a value for an id, a key, a time, a chapter, a type or a
    scalar; delete or add a member; copy a subtree. Keeps the input a JSON object, so the
    signed result reaches the state-dependent rules instead of the parser."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return data
    if not isinstance(obj, dict):
        return data
    for _ in range(rng.randint(1, 3)):
        paths = _paths(obj)
        path = rng.choice(paths)
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1] if path else None
        op = rng.randrange(6)
        pool = rng.choice(list(pools))
        value = rng.choice(pools[pool])
        if key is None:
            obj[rng.choice(["body", "type", "chapter", "created_at", "x"])] = value
        elif op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 1 and isinstance(parent, dict):
            parent[rng.choice(["proposal", "effect", "closes_at", "escalated_from", "quorum",
                               "threshold", "to", "choice", "reply_to", "tally", "x"])] = value
        elif op == 2:
            sub = rng.choice(paths)
            node: Any = obj
            for k in sub:
                node = node[k]
            parent[key] = json.loads(json.dumps(node))
        else:
            parent[key] = value
    return json.dumps(obj).encode()  # ASCII: lone surrogates stay escapes


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*path, i))
    return out


def mutational(target: Target, seed_inputs: list[bytes], n: int, seed: int,
               structured: bool = False) -> tuple[int, list[tuple[bytes, Finding]]]:
    """Run `n` mutated inputs; (inputs run, findings with their input)."""
    rng = random.Random(seed)
    pools = _pools() if structured else {}
    findings: list[tuple[bytes, Finding]] = []
    for data in seed_inputs:
        f = target(data)
        if f:
            findings.append((data, f))
    for _ in range(n):
        if structured and rng.random() < 0.8:
            data = mutate_structured(rng.choice(seed_inputs), rng, pools)
        else:
            data = mutate(rng.choice(seed_inputs), rng, seed_inputs)
        f = target(data)
        if f:
            findings.append((data, f))
    return n + len(seed_inputs), findings


# --- atheris child process ------------------------------------------------------------------


def _child(argv: list[str]) -> None:
    """`python -m hardening.fuzz TARGET --runs N --seconds T --seed S --out DIR`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import atheris

    with atheris.instrument_imports(include=["node"]):
        import node.chapter.chapter_node  # noqa: F401
        import node.federation.negentropy  # noqa: F401
        import node.governance  # noqa: F401
        import node.protocol.events  # noqa: F401
    target, close = make_target(args.target)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, s in enumerate(seeds(args.target)):
        (corpus / f"seed-{i}").write_bytes(s)
    (out / "dict").write_text("".join(f'"{_libfuzzer_escape(t)}"\n' for t in DICTIONARY))
    stats: dict[str, Any] = {"runs": 0, "known": {}, "new": {}, "started": time.time()}
    seen: set[str] = set()

    def flush() -> None:
        stats["seconds"] = time.time() - stats["started"]
        (out / "stats.json").write_text(json.dumps(stats, indent=1))

    def one(data: bytes) -> None:
        stats["runs"] += 1
        finding = target(data)
        if finding is not None:
            bug = finding.bug
            key = bug or finding.signature
            bucket = stats["known" if bug else "new"]
            bucket[key] = bucket.get(key, 0) + 1
            if key not in seen:
                seen.add(key)
                name = f"{args.target}-{len(seen)}"
                (out / f"{name}.input").write_bytes(data)
                (out / f"{name}.json").write_text(json.dumps(
                    {"bug": bug, "signature": finding.signature, "kind": finding.kind,
                     "detail": finding.detail}, indent=1))
            flush()
        if stats["runs"] % 5000 == 0:
            flush()

    flush()
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-max_total_time={args.seconds}",
                   f"-seed={args.seed}", f"-dict={out / 'dict'}", "-max_len=8192",
                   "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={out}/", "-print_final_stats=1", str(corpus)],
                  one)
    try:
        atheris.Fuzz()
    finally:
        flush()
        close()


def _libfuzzer_escape(token: str) -> str:
    """A libFuzzer dictionary value: printable ASCII as is, every other byte as \\xNN."""
    return "".join(chr(c) if 0x20 <= c < 0x7F and c not in (0x22, 0x5C) else f"\\x{c:02X}"
                   for c in token.encode())


# --- the campaign ---------------------------------------------------------------------------


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print,
        seconds_per_target: int = 300) -> list:
    """Run every target under atheris (2 at a time); one `Result` per target."""
    from . import regressions
    from .report import Failure, Result

    # parse_event is cheap: it gets twice the bar; the others get the bar, 1,000,000
    runs_of = {name: max(10_000, int(1_000_000 * scale * (2 if name == "parse_event" else 1)))
               for name in TARGETS}
    seconds = max(30, int(seconds_per_target * max(scale, 0.05)))
    work = Path(tempfile.mkdtemp(prefix="hardening-fuzz-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    # longest first, so that the two lanes end together (inputs/s measured: the initiator
    # ~2,200/s, the responder ~2,700/s, peer batches ~3,000/s, signed events ~7,800/s)
    pending = sorted(TARGETS, key=RUN_ORDER.index)
    started: dict[str, float] = {}
    elapsed: dict[str, float] = {}
    while pending or procs:
        while pending and len(procs) < max(1, (os.cpu_count() or 2)):
            name = pending.pop(0)
            logs[name] = work / f"{name}.log"
            with open(logs[name], "wb") as log:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "hardening.fuzz", name, "--runs", str(runs_of[name]),
                     "--seconds", str(seconds), "--seed", str(seed + 1),
                     "--out", str(work / name)],
                    stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
            started[name] = time.monotonic()
            progress(f"fuzz {name}: started ({runs_of[name]:,} inputs or {seconds} s)")
        time.sleep(1)
        for name, p in list(procs.items()):
            if p.poll() is not None:
                elapsed[name] = time.monotonic() - started[name]
                del procs[name]
                progress(f"fuzz {name}: done in {elapsed[name]:.0f} s (exit {p.returncode})")
    results = []
    for name in TARGETS:
        out = work / name
        try:
            stats = json.loads((out / "stats.json").read_text())
        except (OSError, ValueError):
            stats = {"runs": 0, "known": {}, "new": {}}
        log_text = logs[name].read_text(errors="replace")
        failures = []
        for bug, count in stats["known"].items():
            failures.append(Failure(bug, count))
        for sig, count in stats["new"].items():
            failures.append(Failure(sig, count, ["saved under tests/regressions/"]))
        for meta in sorted(out.glob(f"{name}-*.json")):
            info = json.loads(meta.read_text())
            data = meta.with_suffix(".input").read_bytes()
            if info["bug"] is None:
                door = {"parse_event": "event", "peer_batch": "batch", "signed_event": "batch",
                        "negentropy": "negentropy",
                        "negentropy_initiator": "negentropy_initiator"}[name]
                regressions.save(f"fuzz-{meta.stem}", data, door=door, expect="refused",
                                 bug=None, found_by=f"campaign 1 (atheris, {name})")
        libfuzzer_crash = "==ERROR" in log_text or "Uncaught Python exception" in log_text
        if libfuzzer_crash:
            failures.append(Failure(f"the fuzzer process stopped: see {logs[name]}", 1,
                                    [log_text[-500:]]))
        broken = sum(f.count for f in failures)
        if scale >= 1 and stats["runs"] < 1_000_000:  # the bar: ≥ 1,000,000 inputs each
            failures.append(Failure(f"stopped at its {seconds} s bound after {stats['runs']:,} "
                                    "inputs, under the bar of 1,000,000", 1))
        covered = _coverage(log_text)
        results.append(Result(
            number=1, name=f"fuzzing: {name}",
            tried=_TRIED[name] + f" (atheris/libFuzzer, coverage of node.*; {covered})",
            count=stats["runs"],
            held=("0 uncaught exceptions, 0 events stored from bad input"
                  if not broken else
                  f"{stats['runs'] - broken:,} inputs held the invariant"),
            failures=failures, seconds=elapsed.get(name, 0.0)))
    return results


_TRIED = {
    "parse_event": "bytes → event (`parse_event`)",
    "negentropy": "Negentropy messages to `reconcile_responder` over 3 storages (0, 24, 300 items; "
                  "no limit and a 4,096-byte frame limit)",
    "negentropy_initiator": "hostile replies to `reconcile_initiator` over the same 3 storages, "
                            "after `initiate()`, `initiate_whole_set()` or a resumed session",
    "peer_batch": "peer batches (JSON Lines) to `ChapterNode.receive` on a store holding half "
                  "the story",
    "signed_event": "arbitrary JSON completed into a correctly signed envelope, received from a "
                    "peer, then every view read (reports, list, status, export, seals, finality)",
}


def _coverage(log: str) -> str:
    import re

    found = re.findall(r"cov: (\d+) ft: (\d+)", log)
    if not found:
        return "coverage not reported"
    cov, ft = found[-1]
    return f"{cov} edges, {ft} features"


if __name__ == "__main__":
    _child(sys.argv[1:])
