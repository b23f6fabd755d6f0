"""The state-independent checks of a batch (PROTOCOL §2.1), line by line, on the calling
thread, each event's signature (step 10) handed to a `SignatureVerifier` as soon as its line
is parsed.

Each line gives a `PendingEvent` (its `event()` waits for its signature and returns the
verified `Event` or raises `InvalidEvent("bad_signature")`), a `SealedLine`, or the
`ChapterNodeError` that refused it: the same codes and messages as the sequential path.

An event whose id the store already holds is not verified again (`held`): the same id is the
same bytes, and those bytes were verified when they were stored. It is reported `held`, and
the caller answers "duplicate" as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.errors import ChapterNodeError, InvalidEvent
from ..protocol.events import (
    Event,
    UnverifiedEvent,
    event_id,
    line_too_large,
    load_event_json,
    precheck_object,
)
from .verifier import CHUNK, FIRST_CHUNK, MIN_PARALLEL, SignatureVerifier, Ticket

__all__ = ["PendingEvent", "SealedLine", "check_lines"]


@dataclass(frozen=True, slots=True)
class SealedLine:
    """A `{"sealed": {...}}` line of a batch; `value` is what `accept_sealed` takes."""

    value: Any


@dataclass(slots=True)
class PendingEvent:
    """An event that passed steps 1-9; its signature is being (or was) checked elsewhere."""

    unverified: UnverifiedEvent
    id: str
    held: bool = False
    _ticket: Ticket | None = field(default=None, repr=False)
    _slot: int = 0
    _ok: bool | None = field(default=None, repr=False)

    @property
    def order_key(self) -> tuple[str, str]:
        """PROTOCOL §5 order: (`created_at`, id), as `Event.order_key`."""
        return (self.unverified.obj["created_at"], self.id)

    def verdict(self) -> bool:
        """Whether the signature verifies (waits for it); held bytes were verified before."""
        if self.held:
            return True
        if self._ticket is not None:
            return self._ticket.result()[self._slot]
        if self._ok is None:
            self._ok = self.unverified.signature_ok()
        return self._ok

    def event(self) -> Event:
        """The verified `Event` (waits for the verdict), or `InvalidEvent("bad_signature")`."""
        return self.unverified.verified(signature_ok=self.verdict(), id=self.id)

    def assumed(self) -> Event:
        """The `Event` as if its signature verified, without waiting for the verdict.

        Only for admission that stores nothing until `verdict()` says it holds
        (node.ingest.pipeline): admission reads no signature, so its answer is the
        same, and an event whose verdict fails is never committed."""
        return self.unverified.verified(signature_ok=True, id=self.id)


Checked = PendingEvent | SealedLine | ChapterNodeError


def check_lines(lines: Iterable[bytes], *, federation: str,
                verifier: SignatureVerifier | None = None,
                held: Callable[[list[str]], set[str]] | None = None) -> list[Checked]:
    """Steps 1-9 of §2.1 for each line now, step 10 on the verifier's threads.

    `verifier`: None checks signatures on the calling thread, when `event()` is called.
    `held`: given a list of ids, the subset the store holds (e.g. `Store.known`); those are
    marked `held` and not verified again.
    """
    if isinstance(lines, Sequence) and len(lines) < MIN_PARALLEL:
        verifier = None
    out: list[Checked] = []
    chunk: list[PendingEvent] = []
    limit = FIRST_CHUNK

    def flush() -> None:
        nonlocal limit
        limit = CHUNK
        if not chunk:
            return
        known = held([p.id for p in chunk]) if held is not None else set()
        todo = []
        for pending in chunk:
            if pending.id in known:
                pending.held = True
            else:
                todo.append(pending)
        if verifier is not None and todo:
            ticket = verifier.submit([p.unverified for p in todo])
            for slot, pending in enumerate(todo):
                pending._ticket, pending._slot = ticket, slot
        chunk.clear()

    for line in lines:
        try:
            if line_too_large(line):
                raise InvalidEvent("line over the size limit", code="too_large")
            obj, text = load_event_json(line)
            if isinstance(obj, dict) and len(obj) == 1 and "sealed" in obj:
                out.append(SealedLine(obj["sealed"]))
                continue
            unverified = precheck_object(obj, federation=federation, canonical_text=text)
        except ChapterNodeError as e:
            out.append(e)
            continue
        pending = PendingEvent(unverified, event_id(unverified.signed_bytes))
        out.append(pending)
        chunk.append(pending)
        if len(chunk) >= limit:
            flush()
    flush()
    return out
