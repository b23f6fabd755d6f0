"""Campaign 2 in full (it is fast): every input at a §2.1 limit gets its one outcome, at both
doors for untrusted bytes (`parse_event` and a peer batch), and a refusal stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardening.boundary import Case, cases, judge
from hardening.kit import InProcessNode, Kit
from hardening.known import KNOWN_BUGS

KIT = Kit()


def _params() -> list:
    out = []
    for case in cases(KIT):
        bug = KNOWN_BUGS.get(case.bug) if case.bug else None
        marks = [pytest.mark.xfail(strict=True, reason=bug.id)] if bug and bug.open else []
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode.temporary(KIT) as node:
        yield node


def test_the_matrix_covers_every_parse_code() -> None:
    codes = {c.expect for c in cases(KIT)}
    assert codes >= {
        "accepted", "too_large", "not_json", "too_deep", "duplicate_key", "bad_number",
        "integer_out_of_range", "not_an_object", "unknown_field", "unsupported_version",
        "bad_base64", "bad_key_length", "bad_signature_length", "schema_violation",
        "wrong_federation", "bad_signature"}


@pytest.mark.parametrize("case", _params())
def test_boundary(case: Case, node: InProcessNode) -> None:
    for verdict in judge(case, node, KIT):
        assert (verdict.door, verdict.got) == (verdict.door, case.expect)
        assert verdict.stored == 0
