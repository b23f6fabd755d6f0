"""Auditing an export file (§7): `chapter-node tally` and `chapter-node proposals`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.audit import proposals_command, tally_command
from node.operations.audit import read_export, tally_report
from node.protocol.errors import InvalidEvent, NotFound

from .governance_story import Story


def export_lines(story: Story) -> list[str]:
    """What `chapter-node export` writes: charter, events, then one sealed line per seal."""
    lines = [json.dumps({"charter": story.charter.to_json()}, ensure_ascii=False)]
    lines += [e.canonical.decode("utf-8") for e in story.events]
    lines += [json.dumps({"sealed": {"seal": s, "acts": sorted(acts)}})
              for s, acts in story.sealed.items()]
    return lines


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "federation.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def the_fee_vote() -> tuple[Story, object, object]:
    """A vetoed consent proposal, sealed by every chapter, and its escalation to a vote."""
    story = Story()
    fee = story.propose("amelie", "consent", title="A membership fee",
                        at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", fee, at="2026-11-25 09:00", reason="fees exclude people")
    for chapter in ("paris", "rome", "barcelona", "berlin"):
        story.seal(chapter, fee, at="2026-11-27 10:05")
    vote = story.propose("amelie", "vote", title="A membership fee (vote)",
                         at="2026-11-27 11:00", closes="2026-11-30 11:00", escalated_from=fee)
    story.delegate("lucia", "amelie", at="2026-11-20 08:00")
    story.delegate("jonas", "lucia", at="2026-11-28 09:00", proposal=vote)
    story.vote("amelie", vote, "yes", at="2026-11-28 12:00")
    story.vote("marco", vote, "no", at="2026-11-28 13:00")
    story.vote("marco", vote, "abstain", at="2026-11-30 11:00:01")  # after the close: not counted
    return story, fee, vote


def run(command, *args: str):
    return CliRunner().invoke(command, list(args), catch_exceptions=True)


def test_the_tally_command_prints_what_the_engine_computes(tmp_path: Path) -> None:
    story, fee, vote = the_fee_vote()
    path = write(tmp_path, export_lines(story))
    for proposal in (fee, vote):
        result = run(tally_command, "--events", str(path), "--proposal", proposal.id)
        assert result.exit_code == 0, result.output
        engine = story.decide(proposal)
        assert json.loads(result.output) == {"tally": engine.tally.to_json(),
                                             "tally_hash": engine.tally_hash}
    assert json.loads(run(tally_command, "--events", str(path), "--proposal", vote.id).output)[
        "tally"]["yes"] == 3


def test_the_trace_shows_where_each_connectors_weight_went(tmp_path: Path) -> None:
    story, fee, vote = the_fee_vote()
    path = write(tmp_path, export_lines(story))
    out = json.loads(run(tally_command, "--events", str(path), "--proposal", vote.id, "--trace").output)
    weights = {w["name"]: (w["reason"], w["counted_as"], len(w["path"])) for w in out["trace"]["weights"]}
    assert weights == {"Amélie": ("direct", "yes", 0), "Marco": ("direct", "no", 0),
                       "Lucía": ("delegated", "yes", 1), "Jonas": ("delegated", "yes", 2),
                       "Sofia": ("no_vote", "not_cast", 0)}
    sealed = json.loads(run(tally_command, "--events", str(path), "--proposal", fee.id, "--trace").output)
    assert [s["status"] for s in sealed["trace"]["seals"]] == ["counted"] * 4


def test_a_tampered_sealed_list_is_detected(tmp_path: Path) -> None:
    story, fee, _ = the_fee_vote()
    lines = export_lines(story)
    veto = next(e for e in story.events if e.type == "veto")
    number, line = next((i, l) for i, l in enumerate(lines, 1) if l.startswith('{"sealed"'))
    sealed = json.loads(line)
    sealed["sealed"]["acts"] = [a for a in sealed["sealed"]["acts"] if a != veto.id]  # hide the veto
    lines[number - 1] = json.dumps(sealed)
    result = run(tally_command, "--events", str(write(tmp_path, lines)), "--proposal", fee.id)
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidEvent)
    assert result.exception.code == "sealed_list_mismatch"
    assert f"line {number}:" in result.exception.message


def test_a_bad_line_is_named_by_its_number(tmp_path: Path) -> None:
    story, _, _ = the_fee_vote()
    lines = export_lines(story)
    forged = json.loads(lines[3])
    forged["created_at"] = "2026-11-25T09:00:00.001Z"  # the signature no longer matches
    cases = {
        4: (json.dumps(forged), "bad_signature"),
        5: ("{not json", "not_json"),
        6: (lines[0], "bad_export"),  # a second charter
    }
    for number, (bad, code) in cases.items():
        broken = list(lines)
        broken[number - 1] = bad
        with pytest.raises(InvalidEvent) as refused:
            read_export(write(tmp_path, broken))
        assert refused.value.code == code and refused.value.message.startswith(f"line {number}: ")
    with pytest.raises(InvalidEvent) as refused:
        read_export(write(tmp_path, lines[1:]))
    assert refused.value.message.startswith("line 1: ")


def test_an_unknown_proposal_is_not_found(tmp_path: Path) -> None:
    story, _, _ = the_fee_vote()
    export = read_export(write(tmp_path, export_lines(story)))
    with pytest.raises(NotFound):
        tally_report(export, "0" * 64, 0)


def test_the_proposals_command_lists_states_and_outcomes(tmp_path: Path) -> None:
    story, fee, vote = the_fee_vote()
    path = write(tmp_path, export_lines(story))
    result = run(proposals_command, "--events", str(path), "--json", "--now", "2026-11-29T00:00:00.000Z")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: (r["kind"], r["state"], r["outcome"]) for r in json.loads(result.output)}
    assert rows == {fee.id: ("consent", "final", "vetoed"), vote.id: ("vote", "open", "adopted")}
    table = run(proposals_command, "--events", str(path), "--now", "2026-12-01T00:00:00.000Z")
    assert table.exit_code == 0 and "A membership fee" in table.output and "closed" in table.output


def test_every_audit_command_has_help_with_an_example() -> None:
    for command in (tally_command, proposals_command):
        assert "Example" in (command.help or "")
        assert all(p.help for p in command.params if hasattr(p, "help"))


def test_the_main_cli_turns_refusals_into_one_line(tmp_path: Path) -> None:
    from node.cli import _register, cli

    _register()
    story, _, _ = the_fee_vote()
    path = write(tmp_path, export_lines(story))
    result = CliRunner().invoke(cli, ["tally", "--events", str(path), "--proposal", "0" * 64])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
