"""Campaign 4: schemathesis over `docs/openapi.yaml` against a running node.

The node holds a few events first (so ids in paths can resolve). Peer routes are signed by
Rome's node key through `hardening.st_hooks` (a requests auth that signs the request as it
goes on the wire), so generated cases are judged on their content. Checks: every one
schemathesis has except `positive_data_acceptance`, which cannot apply to this API: a
schema-valid event, Negentropy message or feed cursor that schemathesis makes up is still not
signed by anyone, not a well-formed message, or past the feed's head, and must be refused.
The bar: 0 responses 5xx, 0 responses that break the documented schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .live import CONNECTORS, federation, request
from .report import Failure, Result

__all__ = ["run", "schemathesis_run"]

ROOT = Path(__file__).resolve().parent.parent
CHECKS_EXCLUDED = ("positive_data_acceptance",)


def _preload(fed) -> None:
    now = int(time.time() * 1000)
    proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                          created_at=format_ms(now),
                          body={"title": "Adopt the budget", "text": "", "kind": "action"},
                          signing_key=CONNECTORS[0].key)
    request(fed.nodes["paris"].port, "POST", "/api/v1/events", proposal.canonical)
    comment = sign_event(federation=fed.charter.id, type="comment", chapter="paris",
                         created_at=format_ms(now + 1), body={"proposal": proposal.id, "text": "ok"},
                         signing_key=CONNECTORS[1].key)
    request(fed.nodes["paris"].port, "POST", "/api/v1/events", comment.canonical)


def schemathesis_run(seconds: int, seed: int, progress: Callable[[str], None] = print
                     ) -> tuple[int, Counter[str], Counter[tuple[str, str, str]], int, str]:
    """(responses, statuses, failures by (check, operation, message), 5xx, log tail)."""
    report_dir = Path(tempfile.mkdtemp(prefix="hardening-st-"))
    with federation(("paris", "rome"), start=("paris",)) as fed:
        _preload(fed)
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "hardening.st_hooks",
               "HARDENING_PEER_SEED": bytes(fed.nodes["rome"].key).hex(),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", str(ROOT / "docs" / "openapi.yaml"),
               "--url", f"http://127.0.0.1:{fed.nodes['paris'].port}", "--checks", "all",
               "--exclude-checks", ",".join(CHECKS_EXCLUDED), "--max-time", str(seconds),
               "--seed", str(seed), "--workers", "1", "--report", "ndjson",
               "--report-dir", str(report_dir)]
        progress(f"schemathesis: {seconds} s against {fed.nodes['paris'].url}")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=report_dir,
                              timeout=seconds + 300)
        alive = request(fed.nodes["paris"].port, "GET", "/api/v1/status").status == 200
    statuses: Counter[str] = Counter()
    failures: Counter[tuple[str, str, str]] = Counter()
    responses = server_errors = 0
    for path in report_dir.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            for interaction in (recorder.get("interactions") or {}).values():
                status = (interaction.get("response") or {}).get("status_code")
                if status is None:
                    continue
                responses += 1
                statuses[str(status)] += 1
                server_errors += status >= 500
            for checks in (recorder.get("checks") or {}).values():
                for check in checks:
                    if check.get("status") == "failure":
                        info = check["failure_info"]["failure"]
                        failures[(check["name"], info["operation"],
                                  info["message"].strip().split("\n")[-1][:140])] += 1
    if not alive:
        failures[("node", "GET /api/v1/status", "the node stopped answering")] += 1
    return responses, statuses, failures, server_errors, proc.stdout[-3000:]


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    seconds = max(30, int(120 * scale))
    responses, statuses, failures, server_errors, tail = schemathesis_run(seconds, seed + 1,
                                                                          progress)
    # A peer batch answers 200 with one outcome per line, even when every line is refused
    # (docs/protocol.md §7): "schema-violating batch accepted" is that design, not a bug.
    by_design = {k: n for k, n in failures.items()
                 if k[0] == "negative_data_rejection" and k[1] == "POST /federation/v1/events"}
    fails = [Failure(f"{check} on {op}: {msg}", n) for (check, op, msg), n in failures.items()
             if (check, op, msg) not in by_design]
    if responses == 0:
        fails.append(Failure("schemathesis made no request", 1, [tail[-300:]]))
    top = ", ".join(f"{n:,}× {s}" for s, n in statuses.most_common(6))
    return Result(
        number=4, name="schemathesis over docs/openapi.yaml",
        tried=f"{seconds} s of schemathesis (examples, coverage, fuzzing, stateful phases; all "
              f"checks but {', '.join(CHECKS_EXCLUDED)}) against a running node, peer routes "
              "signed by a registered peer's key",
        count=responses,
        held=f"{server_errors} responses 5xx; statuses {top}",
        failures=fails,
        seconds=time.monotonic() - started,
        notes=("by design, not counted: " + "; ".join(
            f"{n}× {check} on {op} ({msg})" for (check, op, msg), n in by_design.items())
            + ". A peer batch is 200 with per-line outcomes; the OpenAPI document marks its "
              "body `required` while an empty batch is answered 200 with no results.")
        if by_design else "",
    )
