"""A person sets how their chapter emails them, proven by signing with their own key.

The browser signs `{v, federation, type: "mail_settings", chapter, author, created_at, body:
{contact, mode, lang}}` exactly as it signs an act (RFC 8785 bytes, Ed25519), but it is no
event: the node checks it, stores the address and preferences in its local tables, and it
goes nowhere else. Only a member this chapter vouches for can set theirs; a statement older
than the last one applied, or outside the clock's grace, is refused (no replay).
"""

from __future__ import annotations

import re
from typing import Any

import nacl.exceptions
import nacl.signing

from ..chapter.chapter_node import ChapterNode
from ..protocol.errors import BadRequest, DeadlinePassed, InvalidEvent, NotAdmissible
from ..protocol.events import b64url_decode, canonical, decode_key, loads_strict
from ..protocol.times import is_timestamp, parse_ms

__all__ = ["apply_mail_settings"]

_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
_FIELDS = {"v", "federation", "type", "chapter", "author", "created_at", "body", "sig"}


def apply_mail_settings(node: ChapterNode, raw: bytes, now_ms: int) -> dict[str, Any]:
    try:
        doc = loads_strict(raw)
    except InvalidEvent as e:
        raise BadRequest("not a signed statement (JSON)", code="bad_statement") from e
    if (not isinstance(doc, dict) or set(doc) != _FIELDS or doc["type"] != "mail_settings"
            or doc["v"] != 1 or not isinstance(doc["body"], dict)
            or not all(isinstance(doc[k], str) for k in _FIELDS - {"v", "body"})
            or set(doc["body"]) != {"contact", "mode", "lang"}):
        raise BadRequest("a mail_settings statement has v, federation, type, chapter, author, "
                         "created_at, body {contact, mode, lang} and sig", code="bad_statement")
    body = doc["body"]
    if body["contact"] != "" and not (isinstance(body["contact"], str)
                                      and _ADDRESS.fullmatch(body["contact"])
                                      and len(body["contact"]) <= 254):
        raise BadRequest("that is not an email address", code="bad_contact")
    if body["mode"] not in ("each", "digest", "none") or body["lang"] not in (
            "en", "fr", "es", "it", "pt"):
        raise BadRequest("mode is each, digest or none; lang en, fr, es, it or pt",
                         code="bad_statement")
    if doc["federation"] != node.charter.id or doc["chapter"] != node.chapter:
        raise NotAdmissible(f"this node is the {node.chapter} node: set your email on your "
                            "own chapter's node", code="not_own_chapter")
    unsigned = {k: v for k, v in doc.items() if k != "sig"}
    try:
        key = nacl.signing.VerifyKey(decode_key(doc["author"], what="author"))
        key.verify(canonical(unsigned), b64url_decode(doc["sig"], 64, what="sig",
                                                      length_code="bad_signature_length"))
    except (nacl.exceptions.BadSignatureError, InvalidEvent) as e:
        raise InvalidEvent("the signature does not match the statement",
                           code="bad_signature") from e
    if not is_timestamp(doc["created_at"]):
        raise BadRequest("created_at is not a protocol timestamp", code="bad_statement")
    created = parse_ms(doc["created_at"])
    if abs(created - now_ms) > node.charter.rules.grace_ms:
        raise DeadlinePassed("your computer's clock is too far from the node's",
                             code="created_at_too_old" if created < now_ms
                             else "created_at_in_future")
    author = doc["author"]
    if not any(m["key"] == author and m["active"] for m in node.local_members()):
        raise NotAdmissible(f"your key is not a member of {node.chapter} on this node: ask "
                            "your chapter admin to add you", code="not_member")
    applied = node.store.mail_updated_ms(author)
    if applied is not None and applied >= created:
        raise DeadlinePassed("newer settings were already applied", code="stale_statement")
    node.store.set_contact(author, body["contact"])
    node.store.set_mail(author, mode=body["mode"], lang=body["lang"], now_ms=created)
    return {"key": author, "mode": body["mode"], "lang": body["lang"],
            "has_address": bool(body["contact"])}
