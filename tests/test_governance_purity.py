"""node/governance/ is pure: no I/O, no clock imports, and nothing it is handed changes."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from node.governance import Timeline, decide

from .test_governance_properties import SIGNED, SIGNED_VOTE

PACKAGE = Path(__file__).resolve().parent.parent / "node" / "governance"
FORBIDDEN = {"time", "datetime", "os", "pathlib", "sqlite3", "sqlite_utils", "asyncio", "aiohttp",
             "socket", "random", "io", "subprocess", "threading"}


def test_no_module_reaches_for_a_clock_a_file_or_the_network() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            assert not set(names) & FORBIDDEN, f"{path.name} imports {names}"
            assert not isinstance(node, ast.Await | ast.AsyncFunctionDef), path.name
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("open", "print", "input"), path.name
        docstring = ast.get_docstring(tree) or ""
        assert "Pure decision rules: no I/O, no clock" in docstring, path.name
        assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
                   for n in tree.body), f"{path.name} has no __all__"


def test_nothing_handed_to_the_rules_is_changed() -> None:
    events = list(SIGNED.events)
    sealed = {k: list(v) for k, v in SIGNED.sealed.items()}
    before = (json.dumps([e.to_json() for e in events]), json.dumps([dict(e.body) for e in events]),
              json.dumps(sealed))
    timeline = Timeline.build(SIGNED.charter, events, sealed)
    decide(SIGNED_VOTE, events, timeline, SIGNED.charter.rules, sealed, 0)
    after = (json.dumps([e.to_json() for e in events]), json.dumps([dict(e.body) for e in events]),
             json.dumps(sealed))
    assert before == after and events == SIGNED.events
