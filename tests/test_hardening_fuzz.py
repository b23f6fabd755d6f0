"""Campaign 1, fast slice: a few thousand mutated inputs per door (the same targets and seeds
`make hardening` hands to atheris), with a seeded mutator so `make test` needs no atheris.

Invariant at every door: a result or a specific refusal, never another exception; nothing
stored that nobody signed. Known, pinned bugs (hardening/known.py) are told apart so that
a new failure shows up as new."""

from __future__ import annotations

import pytest

from hardening.fuzz import TARGETS, make_target, mutational, seeds
from hardening.known import KNOWN_BUGS


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_slice(name: str) -> None:
    target, close = make_target(name)
    try:
        runs, findings = mutational(target, seeds(name), 3000, seed=20_261_125,
                                    structured=name == "signed_event")
    finally:
        close()
    assert runs > 3000
    new = [(f.signature, f.detail[-400:]) for _, f in findings
           if not (f.bug and KNOWN_BUGS[f.bug].open)]
    assert new == []


def test_the_targets_can_fail() -> None:
    """The parse target reports an event nobody signed: a check that cannot fail is no check."""
    from hardening.fuzz import _parse_target
    from hardening.kit import Kit, signing_key
    from node.protocol.events import sign_event

    kit = Kit()
    forged = sign_event(federation=kit.federation, type="proposal", chapter="paris",
                        created_at="2026-02-01T00:00:00.000Z",
                        body={"title": "Not in any corpus", "text": "", "kind": "action"},
                        signing_key=signing_key("amelie"))
    finding = _parse_target(kit)(forged.canonical)
    assert finding is not None and finding.kind == "invariant"
