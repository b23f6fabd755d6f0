"""Regenerate tests/vectors/envelope.json: fixed seeds and bodies → exact bytes, sig and id.

Run `python tests/vectors/make_envelope_vectors.py > tests/vectors/envelope.json` only when the
protocol itself changes; the test replays the file, so any drift in canonicalisation, signing
or ids shows up as a failure rather than a silently changed vector.
"""

from __future__ import annotations

import hashlib
import json

import nacl.signing
from node.charter import charter_from_object
from node.events import b64url, canonical, sign_event


def seed(label: str) -> bytes:
    return hashlib.sha256(f"chapter-node vector {label}".encode()).digest()


def key(label: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(seed(label))


def pub(label: str) -> str:
    return b64url(bytes(key(label).verify_key))


CHARTER = {
    "name": "Vector Federation",
    "created_at": "2026-01-01T00:00:00.000Z",
    "chapters": [
        {"slug": "paris", "key": pub("node paris"), "url": "https://paris.example.org"},
        {"slug": "rome", "key": pub("node rome"), "url": "https://rome.example.org"},
    ],
    "connectors": [
        {"key": pub("amelie"), "name": "Amélie", "chapter": "paris"},
        {"key": pub("marco"), "name": "Marco", "chapter": "rome"},
    ],
    "rules": {"min_open_hours": 72, "grace_seconds": 300},
}

CASES = [
    ("amelie", "proposal", "paris", "2026-11-24T10:00:00.000Z",
     {"title": "Adopt the 2027 budget", "text": "Budget «2027» — see the wiki.",
      "kind": "consent", "closes_at": "2026-11-27T10:00:00.000Z"}),
    ("marco", "veto", "rome", "2026-11-25T08:30:00.250Z",
     {"proposal": "0" * 64, "reason": "Il bilancio non prevede i capitoli nuovi. 😀"}),
    ("marco", "delegation", "paris", "2026-11-25T09:00:00.000Z", {"to": pub("amelie"), "proposal": None}),
    ("node paris", "member", "paris", "2026-11-24T09:00:00.000Z", {"key": pub("lucia"), "active": True}),
]


def main() -> None:
    charter = charter_from_object(CHARTER)
    out = {"charter": CHARTER, "federation": charter.id, "events": []}
    for label, type_, chapter, created_at, body in CASES:
        ev = sign_event(federation=charter.id, type=type_, chapter=chapter, created_at=created_at,
                        body=body, signing_key=key(label))
        unsigned = {k: v for k, v in ev.to_json().items() if k != "sig"}

        out["events"].append({
            "seed_label": label,
            "seed": seed(label).hex(),
            "type": type_, "chapter": chapter, "created_at": created_at, "body": body,
            "signing_input": canonical(unsigned).decode("utf-8"),
            "canonical": ev.canonical.decode("utf-8"),
            "sig": ev.sig,
            "id": ev.id,
        })
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
