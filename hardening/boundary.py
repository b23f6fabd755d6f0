"""Campaign 2: the boundary matrix of strict parsing (docs/protocol.md §2.1).

Each case is one input next to a limit (sizes counted in UTF-8 bytes of the canonical form,
integers at ±(2^53−1), NaN, ±Infinity, −0, duplicate keys at every depth, the order of the
checks) with the one outcome the protocol gives it: accepted, or refused with a specific code.
Inputs that should be refused by a later step are correctly signed, so the step under test is
the only thing wrong with them. Every case goes through both doors for untrusted bytes:
`parse_event` (clients) and `ChapterNode.receive` (peer batches), and a refusal must store
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.protocol.errors import InvalidEvent
from node.protocol.events import (
    MAX_EVENT_BYTES,
    MAX_RAW_BYTES,
    b64url,
    b64url_decode,
    parse_event,
)

from .kit import NOW_MS, InProcessNode, Kit
from .report import Failure, Result

__all__ = ["Case", "cases", "judge", "run"]

SAFE = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    raw: bytes
    expect: str  # "accepted" or the refusal code
    bug: str | None = None  # a known bug makes the node answer otherwise, for now

    def __repr__(self) -> str:  # short ids in pytest output
        return self.name


def _swap(raw: bytes, old: str, new: str) -> bytes:
    text = raw.decode()
    assert old in text, old
    return text.replace(old, new, 1).encode()


def cases(kit: Kit) -> list[Case]:
    """The whole matrix; deterministic."""
    out: list[Case] = []
    base_ev = kit.sign("proposal", {"title": "Adopt the budget", "text": "", "kind": "action"},
                       by="amelie", chapter="paris", at_ms=NOW_MS)
    base = base_ev.to_json()

    def signed(obj: dict[str, Any], by: str = "amelie") -> bytes:
        return kit.resign(obj, by)

    def add(name: str, raw: bytes, expect: str, bug: str | None = None) -> None:
        out.append(Case(name, raw, expect, bug))

    def with_body(**body: Any) -> dict[str, Any]:
        return {**base, "body": {**base["body"], **body}}

    # --- size: canonical form in UTF-8 bytes (step 8), raw form (step 1) -------------------
    empty_len = len(signed(with_body(text="")))
    room = MAX_EVENT_BYTES - empty_len  # bytes of text that make exactly 65,536
    # 4-byte, 2-byte and 1-byte characters: a count of characters or of UTF-16 units is wrong
    emoji, accents = 1000, (room - 4001) // 2
    text = "😀" * emoji + "é" * accents + "a" * (room - 4000 - 2 * accents)
    assert text.endswith("a")
    exact = signed(with_body(text=text))
    assert len(exact) == MAX_EVENT_BYTES, len(exact)
    add("canonical-65536-multibyte", exact, "accepted")
    add("canonical-65537-multibyte", signed(with_body(text=text + "a")), "too_large")
    # the same number of characters, one byte more
    add("canonical-65537-same-characters", signed(with_body(text=text[:-1] + "é")), "too_large")
    # \u escapes make the raw form three times larger; the canonical form is what counts
    escaped = json.dumps(json.loads(exact), ensure_ascii=True).encode()
    assert MAX_EVENT_BYTES < len(escaped) <= MAX_RAW_BYTES
    add("raw-escaped-over-64k-canonical-65536", escaped, "accepted")
    # control characters: one raw byte each, six bytes each in canonical form (\u0001)
    controls = (room - 10) // 6
    ctl_text = "\u0001" * controls + "a" * (room - 6 * controls + 1)
    add("canonical-65537-by-escaped-controls", signed(with_body(text=ctl_text)), "too_large")
    add("canonical-65536-by-escaped-controls", signed(with_body(text=ctl_text[:-1])), "accepted")
    small = signed(base)
    pad = MAX_RAW_BYTES - len(small)
    add("raw-262144-whitespace", small[:-1] + b" " * pad + small[-1:], "accepted")
    add("raw-262145-whitespace", small[:-1] + b" " * (pad + 1) + small[-1:], "too_large")
    add("raw-262145-garbage", b"[" * (MAX_RAW_BYTES + 1), "too_large")
    # schema lengths are characters (code points), not bytes nor UTF-16 units
    add("title-300-emoji", signed(with_body(title="😀" * 300)), "accepted")
    add("title-301-ascii", signed(with_body(title="a" * 301)), "schema_violation")
    add("text-60000-ascii", signed(with_body(text="a" * 60_000)), "accepted")
    add("text-60001-ascii", signed(with_body(text="a" * 60_001)), "schema_violation")

    # --- numbers (step 2) --------------------------------------------------------------------
    def number_at(name: str, spelling: str, expect: str, where: str = "v") -> None:
        raw = small
        if where == "v":
            raw = _swap(raw, '"v":1', f'"v":{spelling}')
        elif where == "body":
            raw = _swap(raw, '"kind":"action"', f'"kind":"action","n":{spelling}')
        elif where == "deep":
            raw = _swap(raw, '"kind":"action"', f'"kind":"action","n":[[{{"a":[{spelling}]}}]]')
        add(f"{name}-{where}", raw, expect)

    for where in ("v", "body", "deep"):
        number_at("int-2^53", str(SAFE + 1), "integer_out_of_range", where)
        number_at("int-minus-2^53", str(-SAFE - 1), "integer_out_of_range", where)
        number_at("int-10^30", "1" + "0" * 30, "integer_out_of_range", where)
        number_at("NaN", "NaN", "bad_number", where)
        number_at("Infinity", "Infinity", "bad_number", where)
        number_at("minus-Infinity", "-Infinity", "bad_number", where)
        number_at("1e999", "1e999", "bad_number", where)
        number_at("minus-1e999", "-1E+999", "bad_number", where)
        number_at("minus-0", "-0", "bad_number", where)
        number_at("minus-0.0", "-0.0", "bad_number", where)
        number_at("minus-0e7", "-0e7", "bad_number", where)
        number_at("minus-underflow", "-1e-400", "bad_number", where)
    number_at("int-5000-digits", "9" * 5000, "integer_out_of_range", "body")
    out[-1] = Case(out[-1].name, out[-1].raw, out[-1].expect, bug="huge-integer-crash")
    # at the limit: accepted by the parser (the unknown member is refused later)
    number_at("int-2^53-1", str(SAFE), "unknown_field", "body")
    number_at("int-minus-2^53-1", str(-SAFE), "unknown_field", "body")
    number_at("zero", "0", "unknown_field", "body")
    number_at("zero-float", "0.0", "unknown_field", "body")
    # a number spelled differently canonicalises to the same event: same id, same signature
    add("v-1.0-same-event", _swap(small, '"v":1', '"v":1.0'), "accepted")
    add("v-1e0-same-event", _swap(small, '"v":1', '"v":1E0'), "accepted")
    seal = next(e for e in kit.story_events if e.type == "seal").to_json()
    for count in (SAFE, 0):
        body = {**seal["body"], "acts_count": count}
        add(f"seal-acts-count-{count}", signed({**seal, "body": body}, "node rome"), "accepted")
    placeholder = signed({**seal, "body": {**seal["body"], "acts_count": 1234567}}, "node rome")
    add("seal-acts-count-2^53", _swap(placeholder, '"acts_count":1234567',
                                      f'"acts_count":{SAFE + 1}'), "integer_out_of_range")

    # --- duplicate member names at every depth (step 2) ----------------------------------------
    add("dup-envelope", _swap(small, '"type":"proposal"', '"type":"proposal","type":"proposal"'),
        "duplicate_key")
    add("dup-envelope-escaped", _swap(small, '"type":"proposal"',
                                      '"type":"proposal","\\u0074ype":"comment"'), "duplicate_key")
    add("dup-body", _swap(small, '"kind":"action"', '"kind":"action","kind":"consent"'),
        "duplicate_key")
    appoint = next(e for e in kit.story_events if "effect" in e.body).canonical
    add("dup-effect-depth-4", _swap(appoint, '"name":"Sofía"', '"name":"Sofía","name":"Sofia"'),
        "duplicate_key")
    seal_raw = next(e for e in kit.story_events if e.type == "seal").canonical
    add("dup-seal-tally-depth-4", _swap(seal_raw, '"yes":', '"yes":0,"yes":'), "duplicate_key")
    add("dup-depth-8", _swap(small, '"kind":"action"',
                             '"kind":"action","x":[{"y":[{"z":{"a":1,"a":1}}]}]'), "duplicate_key")
    # a duplicate decides before everything else wrong with the input
    add("dup-before-federation", _swap(_swap(small, base["federation"], "0" * 64),
                                       '"v":1', '"v":1,"v":1'), "duplicate_key")

    # --- text and structure (steps 2-4) --------------------------------------------------------
    add("not-utf8", small.replace(b"Adopt", b"Ad\xffpt"), "not_json")
    add("utf8-bom", b"\xef\xbb\xbf" + small, "not_json")
    add("overlong-utf8-slash", small.replace(b"Adopt", b"Ad\xc0\xafpt"), "not_json")
    add("truncated", small[:-1], "not_json")
    add("trailing-garbage", small + b"x", "not_json")
    add("two-documents", small + small, "not_json")
    add("trailing-comma", _swap(small, '"kind":"action"', '"kind":"action",'), "not_json")
    add("single-quotes", small.replace(b'"v"', b"'v'"), "not_json")
    add("lone-surrogate", _swap(signed(with_body(text="x")), '"text":"x"', '"text":"\\ud800"'),
        "not_json", bug="surrogate-code")
    add("deep-100000", b"[" * 100_000 + b"]" * 100_000, "too_deep")
    add("deep-100000-objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "too_deep")
    for i, top in enumerate((b"[]", b'"event"', b"1", b"null", b"true")):
        add(f"not-an-object-{i}", top, "not_an_object")
    add("unknown-top-field", signed({**base, "id": "0" * 64}), "unknown_field")
    add("unknown-before-version", signed({**base, "x": 1, "v": 2}), "unknown_field")
    add("version-2", signed({**base, "v": 2}), "unsupported_version")
    add("version-string", signed({**base, "v": "1"}), "unsupported_version")
    add("version-true", signed({**base, "v": True}), "unsupported_version", bug="version-true-code")

    # --- encodings (step 6) ------------------------------------------------------------------
    author = base["author"]
    sig = base["sig"]
    add("author-padding", _swap(small, author, author + "="), "bad_base64")
    add("author-plus", _swap(small, author, "+" + author[1:]), "bad_base64")
    add("author-slash", _swap(small, author, "/" + author[1:]), "bad_base64")
    add("author-spare-bits", _swap(small, author, author[:-1] + _spare(author[-1])), "bad_base64")
    add("author-31-bytes", _swap(small, author, author[:42]), "bad_key_length")
    add("author-33-bytes", _swap(small, author, b64url(b64url_decode(
        author, 32, what="", length_code="") + b"\x00")), "bad_key_length")
    add("sig-spare-bits", _swap(small, sig, sig[:-1] + _spare(sig[-1])), "bad_base64")
    add("sig-63-bytes", _swap(small, sig, sig[:84]), "bad_signature_length")
    add("sig-non-ascii", _swap(small, sig, "é" + sig[1:]), "bad_base64")

    # --- schema and instant (step 7) ---------------------------------------------------------
    add("missing-body", signed({k: v for k, v in base.items() if k != "body"}),
        "schema_violation")
    add("feb-30", signed({**base, "created_at": "2026-02-30T10:00:00.000Z"}), "schema_violation")
    add("hour-24", signed({**base, "created_at": "2026-02-01T24:00:00.000Z"}), "schema_violation")
    add("no-millis", signed({**base, "created_at": "2026-02-01T10:00:00Z"}), "schema_violation")
    add("offset-not-Z", signed({**base, "created_at": "2026-02-01T10:00:00.000+00:00"}),
        "schema_violation")
    add("arabic-digits", signed({**base, "created_at": "٢٠٢٦-02-01T10:00:00.000Z"}),
        "schema_violation")
    for field, value in (("created_at", base["created_at"] + "\n"), ("chapter", "paris\n"),
                         ("federation", base["federation"] + "\n")):
        add(f"{field}-newline", signed({**base, field: value}), "schema_violation",
            bug="dollar-newline")
    add("closes-at-newline", signed(with_body(kind="consent",
                                              closes_at="2026-03-09T00:00:00.000Z\n")),
        "schema_violation", bug="dollar-newline")
    add("slug-uppercase", signed({**base, "chapter": "Paris"}), "schema_violation")
    add("body-extra", signed(with_body(extra=True)), "unknown_field")
    add("title-blank", signed(with_body(title="   ")), "schema_violation")
    add("type-unknown", signed({**base, "type": "decree"}), "schema_violation")

    # --- federation and signature (steps 9, 10) ------------------------------------------------
    add("other-federation", signed({**base, "federation": "0" * 64}), "wrong_federation")
    add("sig-by-someone-else", signed(base, "marco"), "bad_signature")
    add("valid", small, "accepted")
    return out


def _spare(last: str) -> str:
    """The next base64url character: same 6-bit group save the spare (zero) low bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return alphabet[alphabet.index(last) + 1]


@dataclass(frozen=True, slots=True)
class Verdict:
    door: str
    got: str  # "accepted", a refusal code, or "crash:<ExceptionName>"
    stored: int  # events stored by a refused input (must be 0)


def judge(case: Case, node: InProcessNode, kit: Kit) -> list[Verdict]:
    """The case through both doors. A peer batch judges admissibility too, so an accepted
    event may be refused there for a state reason; only the step-1..10 codes are compared."""
    verdicts = []
    try:
        parse_event(case.raw, federation=kit.federation)
        got = "accepted"
    except InvalidEvent as e:
        got = e.code
    except Exception as e:  # the campaign counts it
        got = f"crash:{type(e).__name__}"
    verdicts.append(Verdict("parse_event", got, 0))
    before = node.head()
    try:
        outcome = node.node.receive([case.raw], origin="rome", now_ms=NOW_MS)[0]
        got = outcome.code if outcome.status == "refused" else "accepted"
        if got not in _PARSE_CODES and outcome.status == "refused":
            got = "accepted"  # valid event, refused for a state reason (e.g. unknown member)
    except Exception as e:
        got = f"crash:{type(e).__name__}"
    stored = node.head() - before
    verdicts.append(Verdict("peer_batch", got, stored if got != "accepted" else 0))
    node.rollback_to(before, set(node.store.all_sealed()))
    return verdicts


_PARSE_CODES = frozenset({
    "too_large", "not_json", "too_deep", "duplicate_key", "bad_number", "integer_out_of_range",
    "not_an_object", "unknown_field", "unsupported_version", "bad_base64", "bad_key_length",
    "bad_signature_length", "schema_violation", "wrong_federation", "bad_signature",
})


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    kit = Kit()
    matrix = cases(kit)
    held = 0
    failures: dict[str, list[str]] = {}
    with InProcessNode.temporary(kit) as node:
        for case in matrix:
            verdicts = judge(case, node, kit)
            ok = all(v.got == case.expect and v.stored == 0 for v in verdicts)
            if ok:
                held += 1
                continue
            key = case.bug or "unpinned"
            failures.setdefault(key, []).append(
                f"{case.name}: {', '.join(f'{v.door} {v.got}' for v in verdicts)}")
    return Result(
        number=2, name="boundary matrix",
        tried=f"{len(matrix)} inputs at the limits of §2.1 (65,536 B canonical, 262,144 B raw, "
              "±(2^53−1), NaN/±Infinity/−0 at 3 depths, duplicate keys at depths 1–8, check "
              "order), each through parse_event and a peer batch",
        count=len(matrix),
        held=f"{held}/{len(matrix)} got their specific code (or were accepted) at both doors; "
             "refusals stored nothing",
        failures=[Failure(k, len(v), v[:3]) for k, v in failures.items()],
    )
