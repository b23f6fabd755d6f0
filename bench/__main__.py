"""Run every benchmark, print the table, rewrite bench/RESULTS.md (issue 6).

    python -m bench                   # full sizes (~10 minutes on 2 cores); rewrites RESULTS.md
    python -m bench --smoke           # tiny sizes, a few seconds; prints, writes nothing
    python -m bench --only ingest,anti-entropy --out /tmp/r.md

Every figure is printed beside the limit it is judged against, measured in the same run (the
limits benchmark runs first). Every benchmark is bounded in time and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .common import Context, CpuWatch, Row, log, machine

__all__ = ["BENCHMARKS", "main"]

# name -> module (each has `run(ctx) -> list[Row]`), in the order they run
BENCHMARKS = {
    "limits": "bench.limits",
    "ingest": "bench.ingest",
    "client": "bench.client",
    "tally": "bench.tally",
    "catch-up": "bench.catchup",
    "anti-entropy": "bench.antientropy",
    "convergence": "bench.convergence",
    "startup-memory": "bench.bigstore",
    "scale": "bench.scale",
    "web": "bench.web",
    "mail": "bench.mail",
    "check": "bench.check",
}

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADERS = ["benchmark", "figure", "value", "limit (same run)", "ratio", "target"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; writes no RESULTS.md")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", default=None, help="where to write the results (default: "
                        "bench/RESULTS.md for a full run, nowhere for --smoke)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if "limits" not in names:
        names.insert(0, "limits")  # every ratio needs its limit from the same run
    out = Path(args.out) if args.out else (None if args.smoke else RESULTS)

    workdir = tempfile.mkdtemp(prefix="chapter-node-bench-")
    ctx = Context(smoke=args.smoke, workdir=workdir)
    watch = CpuWatch()
    rows: list[Row] = []
    failures: list[str] = []
    timings: dict[str, float] = {}
    try:
        for name in names:
            t0 = time.monotonic()
            try:
                rows.extend(importlib.import_module(BENCHMARKS[name]).run(ctx))
            except Exception as e:  # one broken benchmark must not hide the others' figures
                if args.smoke:
                    raise
                failures.append(f"{name}: {type(e).__name__}: {e}")
                log(traceback.format_exc())
                rows.append(Row(name, f"failed: {type(e).__name__}: {e}"[:200], None, ""))
            timings[name] = time.monotonic() - t0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = watch.report()
    print(render_table(rows))
    print(f"\n{load['wall_s']:.0f} s; other processes used {load['others_share']:.0%} of the "
          f"machine's CPU meanwhile")
    if out is not None:
        out.write_text(render_markdown(rows, machine(), load, timings, args.smoke),
                       encoding="utf-8")
        print(f"wrote {out}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def render_table(rows: list[Row]) -> str:
    cells = [HEADERS] + [r.cells() for r in rows]
    widths = [min(70, max(len(c[i]) for c in cells)) for i in range(len(HEADERS))]
    lines = []
    for j, c in enumerate(cells):
        lines.append("  ".join(x[:70].ljust(w) for x, w in zip(c, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[Row], info: dict, load: dict, timings: dict[str, float],
                    smoke: bool) -> str:
    from .notes import NOTES

    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    out = [
        "# Benchmark results",
        "",
        "Written by `python -m bench` (`make bench`); every figure is beside the limit it is "
        "judged against, measured in the same run. Do not edit by hand: change `bench/` and "
        "run it again.",
        "",
        f"- **date**: {info['date']}" + (" — **smoke sizes, not real figures**" if smoke else ""),
        f"- **machine**: {info['cores']} cores, {info['cpu']}; {info['os']}",
        f"- **python**: {info['python']}",
        f"- **libraries**: {libs}",
        f"- **run**: {load['wall_s']:.0f} s wall, "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; other processes used {load['others_share']:.0%} of the machine's CPU during the "
        "run (the machine is shared; parallel figures suffer most when this is high)",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |")
    noted = [r for r in rows if r.note]
    if noted:
        out += ["", "Details:", ""]
        out += [f"- {r.benchmark} — {r.figure}: {r.note}" for r in noted]
    out += ["", NOTES.strip(), ""]
    return "\n".join(out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
