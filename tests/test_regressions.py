"""Every input that ever broke something (tests/regressions/), replayed through the door it broke.

An entry whose bug is still open (hardening/known.py) is `xfail(strict=True)`: it must still
fail, so the fix that makes it pass also flips the flag.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardening.kit import NOW_MS, InProcessNode, Kit
from hardening.known import KNOWN_BUGS
from hardening.regressions import entries, replay


def _params() -> list:
    out = []
    for entry in entries():
        bug = KNOWN_BUGS.get(entry.bug) if entry.bug else None
        marks = [pytest.mark.xfail(strict=True, reason=f"{bug.id}: {bug.summary}")] \
            if bug is not None and bug.open else []
        out.append(pytest.param(entry, id=entry.name, marks=marks))
    return out


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit()


@pytest.fixture(scope="module")
def node(kit: Kit) -> Iterator[InProcessNode]:
    """A node holding the kit's whole story, so inputs meet real state."""
    with InProcessNode.temporary(kit) as node:
        assert {o.status for o in node.node.receive(kit.story, origin="rome", now_ms=NOW_MS)} == {
            "stored"}
        yield node


def test_every_regression_file_is_indexed() -> None:
    from hardening.regressions import DIR

    indexed = {e.file for e in entries()}
    on_disk = {p.name for p in DIR.iterdir() if p.name not in ("index.json", "README.md")}
    assert on_disk == indexed


@pytest.mark.parametrize("entry", _params())
def test_regression(entry, kit: Kit, node: InProcessNode) -> None:
    assert replay(entry, kit, node) == []
