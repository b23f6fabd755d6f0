"""Every benchmark runs at tiny sizes, so none of them rots (figures are not checked here).

`python -m bench --smoke` starts real nodes on 127.0.0.1 like the full run, with a few hundred
events instead of 100,000; it prints the table and writes no RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent


def test_every_benchmark_runs_at_smoke_size() -> None:
    results = ROOT / "bench" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for name in ("limit", "ingest", "client ingest", "tally", "catch-up", "anti-entropy",
                 "convergence", "startup", "memory", "scale"):
        assert f"\n{name} " in table, (name, table)
    assert "failed" not in table
    assert set(BENCHMARKS) >= {"limits", "ingest", "client", "tally", "catch-up", "anti-entropy",
                               "convergence", "startup-memory", "scale"}
    assert (results.read_bytes() if results.exists() else None) == before  # smoke writes nothing
