"""The chapter node's own voice: the events it signs with its node key (seals, member
vouches, its new address, feedback requests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.signing

from ..protocol.events import Event, b64url, sign_event
from ..protocol.times import format_ms

__all__ = ["NodeSigner"]


@dataclass(frozen=True, slots=True)
class NodeSigner:
    federation: str
    chapter: str
    key: nacl.signing.SigningKey

    @property
    def public(self) -> str:
        return b64url(bytes(self.key.verify_key))

    def sign(self, type_: str, body: dict[str, Any], now_ms: int) -> Event:
        return sign_event(federation=self.federation, type=type_, chapter=self.chapter,
                          created_at=format_ms(now_ms), body=body, signing_key=self.key)
