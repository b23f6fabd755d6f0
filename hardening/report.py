"""Campaign results and `docs/RELIABILITY.md`, the table `python -m hardening` rewrites."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .known import KNOWN_BUGS

__all__ = ["Failure", "Result", "write_reliability", "machine", "commit_of_tree", "now_utc"]


@dataclass(slots=True)
class Failure:
    """One kind of failure: a known bug id (see `known.py`) or a short description."""

    bug: str
    count: int
    examples: list[str] = field(default_factory=list)

    def describe(self) -> str:
        known = KNOWN_BUGS.get(self.bug)
        if known is None:
            return f"{self.count} × NEW: {self.bug} (e.g. {'; '.join(self.examples[:2])})"
        state = "open, fix proposed" if known.open else "fixed"
        return (f"{self.count} × `{known.id}` in {known.where} ({state}); pinned by "
                f"{_pin(known.regression)}")


@dataclass(slots=True)
class Result:
    number: int  # the campaign's number in issue 7
    name: str
    tried: str
    count: int
    held: str
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    notes: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures


def machine() -> str:
    cpus = os.cpu_count()
    try:
        model = next(line.split(":", 1)[1].strip()
                     for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
        mem = f", {mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        mem = ""
    return (f"{platform.system()} {platform.machine()}, {cpus} cores ({model}){mem}, "
            f"Python {platform.python_version()}")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def commit_of_tree() -> str:
    return _commit()


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                               timeout=5, check=False)
        return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _pin(regression: str) -> str:
    """A test id in code font; a sentence (a campaign that pins it) as it is."""
    return f"`{regression}`" if regression.startswith("tests/") else regression


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def write_reliability(path: Path, results: list[Result], *, seed: int, total_s: float,
                      not_done: list[str], command: str, date: str | None = None,
                      commit: str | None = None) -> None:
    now = date or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability: what the hardening campaigns tried and what held",
        "",
        "Rewritten by `make hardening` (`python -m hardening`); do not edit by hand. Issue 7 lists",
        "the campaigns and their bars. A small slice of each campaign runs in `make test`",
        "(`tests/test_hardening_*.py`); every input that ever broke something is kept in",
        "`tests/regressions/` and replayed by `make test`.",
        "",
        f"- **Date:** {now}",
        f"- **Machine:** {machine()}",
        f"- **Commit:** {commit or _commit()}",
        f"- **Command:** `{command}` (seed {seed}); whole run {total_s / 60:.1f} min",
        "",
        "| # | campaign | what was tried | how many | what held | what failed (and the test that pins it) | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: r.number):
        failed = "; ".join(f.describe() for f in r.failures) or "nothing"
        lines.append(f"| {r.number} | {_cell(r.name)} | {_cell(r.tried)} | {r.count:,} | "
                     f"{_cell(r.held)} | {_cell(failed)} | {r.seconds:.0f} s |")
    notes = [r for r in results if r.notes]
    if notes:
        lines += ["", "## Notes", ""]
        for r in sorted(notes, key=lambda r: r.number):
            lines.append(f"- **{r.number}. {r.name}:** {r.notes}")
    bugs = list(KNOWN_BUGS.values())
    lines += ["", "## Bugs found", "",
              "| bug | where | what | pinned by | state |", "|---|---|---|---|---|"]
    for b in bugs:
        lines.append(f"| `{b.id}` | {_cell(b.where)} | {_cell(b.summary)} | {_pin(b.regression)} | "
                     f"{'open (fix proposed)' if b.open else 'fixed'} |")
    lines += ["", "## Not done yet", ""]
    lines += [f"- {item}" for item in not_done] or ["- nothing"]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
