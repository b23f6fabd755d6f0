"""`python -m hardening`: run every campaign, seeded and bounded in time; rewrite
docs/RELIABILITY.md.

    python -m hardening                      # everything (about 30 minutes on 2 cores)
    python -m hardening --only 2 3 5         # some campaigns; the others are left out of the file
    python -m hardening --scale 0.1          # a quick pass (fewer inputs, shorter runs)
    python -m hardening --seed 7             # another seed; every campaign replays from it
    python -m hardening --only 8 9 --keep-others   # after a fix: re-run those, keep the rest

Campaigns run one after the other, the fuzzers first (two at a time, one per core), so that
the timing campaigns (resource exhaustion) do not compete with them for the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .report import Failure, Result, commit_of_tree, now_utc, write_reliability

ROOT = Path(__file__).resolve().parent.parent

NOT_DONE = [
    "8. partitions run 3 topologies per run (2 random 2/3 splits, 1 bridge) between real "
    "nodes with skewed clocks, delays and cut connections, not an open-ended random "
    "schedule (campaigns 9 and 10 cover random schedules in simulation).",
    "1. atheris runs each target in its own process for a bounded time from a seed corpus "
    "of valid inputs and near-misses: coverage guides each run, but the corpus it grows is "
    "not carried from one run to the next.",
]


def _campaigns(scale: float, fuzz_seconds: int) -> list[tuple[int, str, Callable[..., object]]]:
    from . import (
        apifuzz,
        attacks,
        bitflip,
        boundary,
        crashes,
        deadlines,
        equivocation,
        exhaustion,
        fuzz,
        partitions,
        poison,
        simulation,
    )

    return [
        (1, "coverage-guided fuzzing",
         lambda seed, progress: fuzz.run(seed, scale, progress, seconds_per_target=fuzz_seconds)),
        (2, "boundary matrix", boundary.run),
        (3, "bit flips", bitflip.run),
        (5, "peer-request attacks", attacks.run),
        (12, "poison events", poison.run),
        (6, "resource exhaustion", exhaustion.run),
        (11, "equivocation and cross-scope replay", equivocation.run),
        (7, "kill -9 during ingest", crashes.run),
        (8, "partitions", partitions.run),
        (9, "deterministic simulation", simulation.run),
        (10, "deadline races", deadlines.run),
        (4, "schemathesis", apifuzz.run),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardening", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every campaign's size (1.0: the published figures)")
    parser.add_argument("--only", type=int, nargs="*", help="campaign numbers to run")
    parser.add_argument("--fuzz-seconds", type=int, default=540,
                        help="time bound per fuzz target (each also stops at its input count)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "RELIABILITY.md")
    parser.add_argument("--keep-others", action="store_true",
                        help="with --only: keep the other campaigns' results from the last saved "
                             "run (after a fix, re-run just the campaigns it touches); the "
                             "header then names both runs")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite --out from the last run's saved results (after the "
                             "known-bug table changed), running nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    saved = Path(tempfile.gettempdir()) / "chapter-node-hardening-results.json"
    if args.render_only:
        data = json.loads(saved.read_text())
        results = [Result(**{**r, "failures": [Failure(**f) for f in r["failures"]]})
                   for r in data["results"]]
        write_reliability(args.out, results, seed=data["seed"], total_s=data["total_s"],
                          not_done=NOT_DONE, command=data["command"], date=data["date"],
                          commit=data["commit"])
        print(f"rewrote {args.out} from {saved}")
        return 0

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", flush=True)

    results: list[Result] = []
    for number, name, campaign in _campaigns(args.scale, args.fuzz_seconds):
        if args.only and number not in args.only:
            continue
        progress(f"campaign {number}: {name}")
        t0 = time.monotonic()
        try:
            out = campaign(seed=args.seed, progress=progress) if number == 1 else \
                campaign(args.seed, args.scale, progress)
        except Exception as e:  # a campaign that breaks is itself a finding; the others run
            traceback.print_exc()
            out = Result(number=number, name=name, tried="the campaign itself", count=0,
                         held="nothing: the campaign stopped",
                         failures=[Failure(f"campaign error: {type(e).__name__}: {e}", 1)])
        batch = out if isinstance(out, list) else [out]
        for r in batch:
            if not r.seconds:
                r.seconds = time.monotonic() - t0
            results.append(r)
            mark = "held" if r.ok else f"{sum(f.count for f in r.failures)} failures"
            progress(f"campaign {r.number} {r.name}: {r.count:,} tried, {mark}")
    total = time.monotonic() - started
    command = "python -m hardening" + "".join(
        f" {flag}" for flag in sys.argv[1:] if flag) if argv is None else \
        "python -m hardening " + " ".join(argv)
    date, commit = now_utc(), commit_of_tree()
    command = command.strip()
    if args.keep_others and args.only:
        earlier = json.loads(saved.read_text())
        kept = [Result(**{**r, "failures": [Failure(**f) for f in r["failures"]]})
                for r in earlier["results"] if r["number"] not in args.only]
        results = sorted(kept + results, key=lambda r: r.number)
        # the kept campaigns' share of their full run (fuzz targets ran two at a time)
        total += earlier["total_s"] - sum(r["seconds"] for r in earlier["results"]
                                       if r["number"] in set(args.only))
        command = (f"{earlier['command']} at {earlier['commit']} ({earlier['date']}); then "
                   f"campaigns {' '.join(map(str, args.only))} re-run with: {command}")
    write_reliability(args.out, results, seed=args.seed, total_s=total, not_done=NOT_DONE,
                      command=command, date=date, commit=commit)
    saved.write_text(json.dumps({"seed": args.seed, "total_s": total, "command": command,
                                 "date": date, "commit": commit,
                                 "results": [asdict(r) for r in results]}, indent=1))
    progress(f"wrote {args.out} ({total / 60:.1f} min)")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
