"""The README's CLI tour runs as written: the test copies its shell block and runs it, with
two free ports in place of 8400 and 8401, against the nodes the tour itself starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from node.dev.devcluster import free_port

README = Path(__file__).resolve().parent.parent / "README.md"


def tour() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Five-minute CLI tour"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    script = tour()
    assert "chapter-node charter new" in script and "kill $PARIS_PID $ROME_PID" in script
    paris, rome = free_port(), free_port()
    script = script.replace("8400", str(paris)).replace("8401", str(rome))
    # stop the tour's nodes whatever happens; stop at the first command that fails
    prelude = "set -euo pipefail\ntrap 'kill $PARIS_PID $ROME_PID 2>/dev/null || true' EXIT\n"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", prelude + script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "federation id" in out
    assert "The budget leaves out the new chapters." in out  # show: the veto's reason
    assert "withdrawn vetoes" in out and "Which ones?" in out and "Agreed now." in out
    assert "Amélie (paris," in out and "Jeanne" not in out.split("withdrawn vetoes")[1]
    assert '"tally_hash"' in out  # the offline audit
    assert (tmp_path / "paris-backup.db").exists()
