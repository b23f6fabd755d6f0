"""Client ingest: events/s through `POST /api/v1/events`, against an empty aiohttp handler.

A real node (`python -m node run`, started by `node.dev.devcluster`) takes person-signed events
from clients: one keep-alive connection posting one event after another, then 16 concurrent
connections. Every event is new, dated within the node's grace window and of its own chapter,
so each one goes the whole way (parse, verify, admit, store: one transaction per event).

The limit beside it: an aiohttp app whose handler reads the body and answers 201 with a small
JSON body, driven by the same client code with the same number of connections, in the same run.
The client runs on the same two cores as the server, for both.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .common import Context, Row, log
from .ingest import devcluster_federation
from .limits import empty_handler_rates, http_load
from .workload import make_workload

__all__ = ["run"]


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    seconds = ctx.seconds(30, 3)
    plan = ((1, ctx.size(10_000, 60), 1), (16, ctx.size(30_000, 120), 2))
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="client-"))
    fed = None
    measured: list[tuple[int, int, float]] = []
    try:
        fed, seeds = devcluster_federation(root, ["paris", "rome"], 1000)
        paris = fed.start("paris")
        url = paris.url + "/api/v1/events"
        for connections, n, seed in plan:
            log(f"client ingest: signing {n:,} events, {connections} connection(s)")
            # Dated within the last ~150 s: still inside the 300 s grace when posted.
            workload = make_workload(n, charter=fed.charter, seeds=seeds, chapter="paris",
                                     opened_ago_ms=160_000, window_ms=150_000, seed=seed)
            first = http_load(url, workload.events[:1], connections=1, seconds=5)
            if first.statuses != {201: 1}:
                raise RuntimeError(f"the proposal was refused: {first.statuses}")
            result = http_load(url, workload.events[1:], connections=connections, seconds=seconds)
            if set(result.statuses) != {201}:
                raise RuntimeError(f"client ingest: unexpected statuses {result.statuses}")
            measured.append((connections, result.done, result.rate))
    finally:
        if fed is not None:
            fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    log("client ingest: the empty handler, same connections")
    empty = empty_handler_rates([c for c, _, _ in measured], ctx.size(20_000, 200), seconds)
    for connections, done, rate in measured:
        rows.append(Row("client ingest", f"`POST /api/v1/events`, {connections} keep-alive "
                        f"connection{'s' if connections > 1 else ''} ({done:,} events)",
                        rate, "events/s", "empty aiohttp handler", empty[connections],
                        "≥ 2,500 events/s" if connections == 16 else ""))
    return rows
