"""The ingest pipeline: the §2.1 checks, the admission core, the commits, around one store.

PROTOCOL §2, §4, §6 in order: size → JSON → schema → federation → signature (node.ingest
checks and verifier) → admission at `created_at` and the deadline rules (node.ingest
admission, pure) → atomic store → fan-out. This module is the only one that reads the store
while a batch is judged: per step of `RECEIVE_STEP` events (nothing else runs within a
step) one look-up of the ids held, one of the proposals the events name, the registry
timeline once, and again after each commit the registry needs.

A peer's events are admitted while the workers are still verifying them: admission does not
read signatures, and nothing is committed before every event of the transaction has its
verdict (the `confirm` of `Ledger.commit`), so rows are written while the last signatures
are checked. If one fails, that transaction is rolled back and everything from its first
event is judged again with the verdicts known, as a client's events always are.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Protocol

from .. import governance as gov
from ..protocol.errors import ChapterNodeError, InvalidEvent
from ..protocol.events import Event, precheck_event
from .admission import Admission, Context, Outcome, Pending, Resolved, Snapshot
from .checks import PendingEvent, SealedLine, check_lines
from .verifier import SignatureVerifier

__all__ = ["Ledger", "RECEIVE_STEP", "ingest_steps"]

# Lines of a batch handled between two pauses (~20-50 ms of work).
RECEIVE_STEP = 250


class Ledger(Protocol):
    """What the pipeline reads and writes: the node's store, through named questions."""

    def head(self) -> int: ...
    def held(self, ids: list[str]) -> set[str]: ...
    def proposals_named(self, ids: Iterable[str]) -> dict[str, Event]: ...
    def timeline(self) -> gov.Timeline: ...
    def effect_ids(self) -> set[str]: ...
    def escalated(self, proposal: Event) -> gov.Escalated | None: ...
    def commit(self, events: list[Event], origin: str, now_ms: int,
               confirm: Callable[[], bool]) -> list[bool] | None:
        """Store `events` in one transaction if `confirm()` still says so at the end (then
        per event whether it was new), else nothing (None)."""
        ...
    def accept_sealed(self, value: Any) -> str: ...


def ingest_steps(lines: Sequence[bytes], ledger: Ledger, context: Context, *, federation: str,
                 origin: str, verifier: SignatureVerifier | None
                 ) -> Generator[None, None, list[Outcome]]:
    """Judge `lines` (a peer batch, or client bodies when `context.own_chapter` is set),
    pausing every `RECEIVE_STEP` events; store the good ones; one outcome per line."""
    from_peer = context.from_peer
    outcomes: list[Outcome | None] = [None] * len(lines)
    checked: list[tuple[int, PendingEvent]] = []
    sealed_lines: list[tuple[int, Any]] = []
    head = ledger.head()  # unchanged head: nothing was stored since `held` was read
    for start in range(0, len(lines), RECEIVE_STEP):
        if start:
            yield
        results = check_lines(lines[start:start + RECEIVE_STEP], federation=federation,
                              verifier=verifier, held=ledger.held)
        for i, item in enumerate(results, start):
            if isinstance(item, PendingEvent):
                checked.append((i, item))
                continue
            if not from_peer and (isinstance(item, SealedLine) or item.code == "too_large"):
                item = _client_refusal(lines[i], federation)  # as `parse_event` words it
            if isinstance(item, SealedLine):
                sealed_lines.append((i, item.value))
            else:
                outcomes[i] = Outcome.refused(None, item)
    checked.sort(key=lambda p: p[1].order_key)  # causes before effects (§5 order)

    def note(judged: Iterable[tuple[int, Outcome]]) -> None:
        for line, outcome in judged:
            outcomes[line] = outcome

    def flush(group: list[tuple[int, Event, Pending]]) -> bool:
        """Commit `group` once every signature in it verifies; False (nothing stored) if not."""
        if not group:
            return True
        items = [item for _, _, item in group]
        if verifier is not None:
            verifier.rebalance()  # the workers verify while the rows are written
        fresh = ledger.commit([e for _, e, _ in group], origin, context.now_ms,
                              lambda: all(p.verdict() for p in items))
        if fresh is None:
            return False
        note((line, Outcome(event.id, "stored" if new else "duplicate", event=event))
             for (line, event, _), new in zip(group, fresh))
        return True

    def snapshot(admission: Admission, resolved: Sequence[Resolved],
                 named: dict[str, Event] | None = None) -> Snapshot:
        """What the store holds for judging `resolved` (`named`: the proposals already read
        for its step: a commit since added only what the batch admitted)."""
        refs, escalating = admission.wants(resolved)
        if named is None:
            named = ledger.proposals_named(refs) if refs else {}
        return Snapshot(named=named, timeline=ledger.timeline(),
                        escalated={p.id: ledger.escalated(p) for p in escalating})

    admission = Admission(context, ledger.effect_ids(), speculate=from_peer)
    pending: list[tuple[int, Event, Pending]] = []  # admitted, not yet committed
    committed = 0  # checked[:committed] is judged for good
    pos = 0
    while True:
        restart = False
        while pos < len(checked):
            if pos:
                yield  # what is admitted stays pending until a commit point
            step = checked[pos:pos + RECEIVE_STEP]
            if verifier is not None:
                verifier.rebalance()  # replies in; kept chunks to a worker with room
            held = ledger.held([p.id for _, p in step if not p.held]) \
                if ledger.head() != head else set()
            judged: list[tuple[int, Outcome]] = []
            resolved = admission.resolve(step, held, judged)
            note(judged)
            view = snapshot(admission, resolved)
            at = 0  # resolved[:at] is judged
            while at < len(resolved):
                judgement = admission.judge(resolved[at:], view)
                note(judgement.outcomes)
                pending.extend(judgement.group)
                at += judgement.taken
                if judgement.commit:
                    if not flush(pending):
                        restart = True
                        break
                    # checked[:committed] is done: up to the place of the last line judged
                    committed = pos + _place(step, resolved[at - 1][0]) + 1
                    pending = []
                    view = snapshot(admission, resolved[at:], named=view.named)
            if restart:
                break
            pos += len(step)
        if not restart and flush(pending):
            break
        # A signature failed in the transaction: judge it all again, verdicts first.
        if not admission.speculate:  # cannot be: what was judged with its verdict verified
            raise RuntimeError("an event admitted after its verdict failed it")
        again = {i for i, _ in checked[committed:]}
        for i in again:
            outcomes[i] = None
        admission.restart({p.id for _, p in checked[:committed]}, ledger.effect_ids(), again)
        pending, pos = [], committed
    note(admission.settle())
    for i, sealed in sealed_lines:
        try:
            outcomes[i] = Outcome(ledger.accept_sealed(sealed), "stored")
        except ChapterNodeError as e:
            outcomes[i] = Outcome.refused(None, e)
    return [o if o is not None else Outcome(None, "refused", "internal", "") for o in outcomes]


def _place(step: Sequence[tuple[int, PendingEvent]], line: int) -> int:
    """Where the event of `line` sits in `step`."""
    for at, (i, _) in enumerate(step):
        if i == line:
            return at
    raise ValueError(line)  # pragma: no cover - every resolved line comes from its step


def _client_refusal(raw: bytes, federation: str) -> ChapterNodeError:
    """Why `parse_event` refuses a client body that a peer batch would read differently (a
    `sealed` line, or the size limit, worded for a single event)."""
    try:
        precheck_event(raw, federation=federation)
    except ChapterNodeError as e:
        return e
    return InvalidEvent("not an event", code="not_an_object")  # pragma: no cover
