"""Audit an exported federation log with no node running (PROTOCOL §7).

An export is JSON Lines: first `{"charter": {...}}`, then one event per line (seals included),
then one `{"sealed": {"seal": "<seal id>", "acts": [...]}}` line per seal held. Every event is
re-verified (schema, federation, signature) against the charter on line 1; a bad line is
refused with its line number. The tally then follows §7: where the file holds counted seals
for the proposal, each id list is checked against its seal's `acts_root` and only the union of
those lists counts; otherwise every act with created_at <= closes_at counts. A sealed list
that does not match its seal means the file was tampered with: the audit refuses it.

The rules themselves live in node.governance; this module only reads the file and reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..governance import (
    Decision,
    Timeline,
    closes_ms,
    decide,
    dedupe,
    escalated_from,
    evaluate,
    final_acts,
    refusal,
)
from ..protocol.charter import Charter, charter_from_object
from ..protocol.errors import ChapterNodeError, ConfigError, InvalidEvent, NotFound
from ..protocol.events import (
    Event,
    event_from_object,
    is_event_id,
    line_too_large,
    loads_strict,
)

__all__ = ["Export", "read_export", "parse_export", "audit_proposal", "tally_report",
           "proposals_report", "explain"]

@dataclass(frozen=True, slots=True)
class Export:
    charter: Charter
    events: tuple[Event, ...]  # one per id, in (created_at, id) order
    sealed: Mapping[str, tuple[str, ...]]  # seal id -> its sealed act ids
    lines: Mapping[str, int]  # event or sealed-list id -> line number, for messages

    def proposal(self, proposal_id: str) -> Event:
        for event in self.events:
            if event.id == proposal_id and event.type == "proposal":
                return event
        raise NotFound(f"proposal {proposal_id} is not in this export", code="unknown_proposal")

    def proposals(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.type == "proposal")


def read_export(path: str | Path) -> Export:
    """Read and verify an export file; `InvalidEvent` naming the line of the first bad line."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}", code="unreadable_export") from e
    return parse_export(data.split(b"\n"))


def parse_export(lines: Iterable[bytes | str]) -> Export:
    """Parse export lines (without their line ends); see `read_export`."""
    charter: Charter | None = None
    events: list[Event] = []
    sealed: dict[str, tuple[str, ...]] = {}
    where: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            if line_too_large(line):
                raise InvalidEvent(f"{len(line)} bytes is over the line limit (256 KiB for an "
                                   "event, 16 MiB for a sealed list)", code="too_large")
            obj = loads_strict(line)
            if charter is None:
                charter = _charter_line(obj)
            elif isinstance(obj, dict) and "charter" in obj:
                raise InvalidEvent("only the first line may hold the charter", code="bad_export")
            elif isinstance(obj, dict) and "sealed" in obj:
                seal_id, acts = _sealed_line(obj)
                if seal_id in sealed and sealed[seal_id] != acts:
                    raise InvalidEvent(f"seal {seal_id} has two different sealed lists",
                                       code="bad_export")
                sealed[seal_id] = acts
                where[f"sealed:{seal_id}"] = number
            else:
                event = event_from_object(obj, federation=charter.id)
                events.append(event)
                where.setdefault(event.id, number)
        except ChapterNodeError as e:
            raise InvalidEvent(f"line {number}: {e.message}", code=e.code) from e
    if charter is None:
        raise InvalidEvent("line 1: the export is empty; it starts with a charter line",
                           code="bad_export")
    return Export(charter, dedupe(events), sealed, where)


def _charter_line(obj: Any) -> Charter:
    if not isinstance(obj, dict) or set(obj) != {"charter"}:
        raise InvalidEvent('an export starts with {"charter": {...}}', code="bad_export")
    try:
        return charter_from_object(obj["charter"])
    except ConfigError as e:
        raise InvalidEvent(e.message, code="bad_charter") from e


def _sealed_line(obj: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    inner = obj.get("sealed")
    if (set(obj) != {"sealed"} or not isinstance(inner, dict) or set(inner) != {"seal", "acts"}
            or not is_event_id(inner["seal"])
            or not isinstance(inner["acts"], list)
            or not all(is_event_id(a) for a in inner["acts"])):
        raise InvalidEvent('a sealed line is {"sealed": {"seal": "<id>", "acts": ["<id>", ...]}}',
                           code="bad_export")
    return inner["seal"], tuple(inner["acts"])


# --- auditing ---------------------------------------------------------------------------


def timeline_of(export: Export) -> Timeline:
    return Timeline.build(export.charter, export.events, export.sealed)


def not_admitted(export: Export, proposal: Event, timeline: Timeline) -> str | None:
    """Why the file's own registry refuses `proposal` (§4), or None. An export holds every
    event its node kept, and a node keeps relayed events it cannot admit (docs/protocol.md
    §5); an auditor, trusting no node, judges each proposal again anyway."""
    by_id = {e.id: e for e in export.events}

    def outcome(source: Event) -> str:  # as at its close: an audit has no clock
        return decide(source, export.events, timeline, export.charter.rules, export.sealed,
                      closes_ms(source) or source.created_ms).tally.outcome

    escalated = escalated_from(proposal, by_id.get,
                               lambda source: not_admitted(export, source, timeline) is None,
                               outcome)
    return refusal(proposal, registry=timeline.at(proposal.created_ms),
                   rules=export.charter.rules, escalated=escalated)


def audit_proposal(export: Export, proposal_id: str, now_ms: int,
                   timeline: Timeline | None = None) -> Decision:
    """Decide one proposal from the file alone; refuse a sealed list that does not match."""
    proposal = export.proposal(proposal_id)
    timeline = timeline or timeline_of(export)
    refused = not_admitted(export, proposal, timeline)
    if refused is not None:
        raise NotFound(f"proposal {proposal_id} is in the export but not admitted ({refused}): "
                       "it counts for nothing", code="not_admitted")
    decision = decide(proposal, export.events, timeline, export.charter.rules, export.sealed, now_ms)
    if decision.seals is not None and decision.seals.mismatched:
        bad = decision.seals.mismatched[0]
        line = export.lines.get(f"sealed:{bad.seal}", "?")
        raise InvalidEvent(
            f"line {line}: the sealed list of seal {bad.seal} ({bad.chapter}) does not match its "
            f"acts_root and acts_count: the file was altered", code="sealed_list_mismatch")
    return decision


def tally_report(export: Export, proposal_id: str, now_ms: int, *,
                 trace: bool = False) -> dict[str, Any]:
    """`chapter-node tally` output: {"tally", "tally_hash"} (+ "trace")."""
    timeline = timeline_of(export)
    decision = audit_proposal(export, proposal_id, now_ms, timeline)
    report: dict[str, Any] = {"tally": decision.tally.to_json(), "tally_hash": decision.tally_hash}
    if trace:
        report["trace"] = explain(export, decision.proposal, timeline, now_ms)
    return report


def explain(export: Export, proposal: Event, timeline: Timeline, now_ms: int) -> dict[str, Any]:
    """Who counted for what, from the proposal's one report (governance.evaluate, the same the
    API answers): per-Connector weights (vote), the acts counted in order (consent, action);
    the seals and how each was judged, the chapters whose seal is missing, equivocations."""
    result = evaluate(timeline, proposal, export.events, (), export.sealed,
                      now_ms=now_ms)
    out: dict[str, Any] = {"kind": result.kind, "acts_counted": result.acts_counted}
    if result.trace is not None:
        names = {k: c.name for k, c in timeline.at_close(proposal).connectors.items()}
        out["weights"] = [{**w, "name": names.get(w["connector"])} for w in result.trace]
    else:
        acts = final_acts(proposal, export.events, result.decision.seals)
        out["acts"] = [{"id": a.id, "type": a.type, "author": a.author,
                        "created_at": a.created_at} for a in acts]
        if result.adopted_at:
            out["adopted_at"] = result.adopted_at
    if result.kind != "action":
        out["seals"] = result.seals
        out["missing_seals"] = result.missing_seals
        out["equivocations"] = result.equivocations
    return out


def proposals_report(export: Export, now_ms: int) -> list[dict[str, Any]]:
    """`chapter-node proposals` output: every proposal with its kind, title, state, outcome."""
    timeline = timeline_of(export)
    rows = []
    for proposal in export.proposals():
        if not_admitted(export, proposal, timeline) is not None:
            continue
        decision = decide(proposal, export.events, timeline, export.charter.rules,
                          export.sealed, now_ms)
        problems = [f"sealed list of {s.chapter} does not match its seal"
                    for s in (decision.seals.mismatched if decision.seals else ())]
        rows.append({
            "id": proposal.id, "kind": decision.tally.kind, "title": proposal.body["title"],
            "created_at": proposal.created_at, "closes_at": proposal.body.get("closes_at"),
            "state": decision.state.state, "outcome": decision.tally.outcome,
            "tally_hash": decision.tally_hash, "problems": problems,
        })
    return rows
