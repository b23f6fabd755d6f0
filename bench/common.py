"""What every benchmark shares: result rows, the machine, time bounds and CPU accounting."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["Row", "Context", "machine", "CpuWatch", "timed_rate", "LIBRARIES"]

LIBRARIES = ("pynacl", "aiohttp", "jsonschema", "jsonschema-rs", "orjson", "rfc8785",
             "sqlite-utils")


@dataclass(frozen=True)
class Row:
    """One figure, with the limit it is judged against (measured in the same run)."""

    benchmark: str
    figure: str
    value: float | None
    unit: str
    limit: str = ""
    limit_value: float | None = None
    target: str = ""
    note: str = ""
    ratio_override: str | None = None

    @property
    def ratio(self) -> str:
        if self.ratio_override is not None:
            return self.ratio_override
        if self.value is None or not self.limit_value:
            return ""
        return f"{self.value / self.limit_value:.1%}"

    def cells(self) -> list[str]:
        return [self.benchmark, self.figure, _num(self.value, self.unit),
                self.limit + (f": {_num(self.limit_value, '')}" if self.limit_value else ""),
                self.ratio, self.target]


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


@dataclass
class Context:
    """Sizes and shared measurements for one run."""

    smoke: bool
    workdir: str
    limits: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def size(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full

    def seconds(self, full: float, smoke: float) -> float:
        return smoke if self.smoke else full


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count() or 1,
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "libraries": versions,
    }


class CpuWatch:
    """CPU seconds the whole machine spent busy vs what this run (and its children) spent.

    The machine may be shared; the difference says how much of the run's CPU someone else took.
    """

    def __init__(self) -> None:
        self.start_wall = time.monotonic()
        self.start_busy = _machine_busy()
        self.start_own = _own_cpu()

    def report(self) -> dict[str, float]:
        wall = time.monotonic() - self.start_wall
        busy = _machine_busy() - self.start_busy
        own = _own_cpu() - self.start_own
        cores = os.cpu_count() or 1
        return {"wall_s": wall, "machine_busy_s": busy, "own_cpu_s": own,
                "others_share": max(0.0, busy - own) / (wall * cores) if wall else 0.0}


def _machine_busy() -> float:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_rate(step: Callable[[], int], seconds: float, *, min_rounds: int = 1) -> float:
    """Call `step()` (which returns how many items it did) until `seconds` pass; items/s."""
    done = rounds = 0
    start = time.perf_counter()
    while rounds < min_rounds or time.perf_counter() - start < seconds:
        done += step()
        rounds += 1
    return done / (time.perf_counter() - start)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
