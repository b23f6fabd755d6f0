"""Catch-up: a fresh node pulling a peer's whole history, against the ingest ceiling.

Two real nodes on loopback (`node.dev.devcluster`): rome already holds N events (ingested
in-process into its store before it starts), paris is new. Both start; paris reads rome's
changes feed (`GET /federation/v1/changes`, 500 events a page) and, at the same time, rome
pushes its outbox to paris (`POST /federation/v1/events`): a joining node gets each event
twice, once stored and once as a duplicate, which is what the real sync does. Measured: from
paris answering to paris holding all N events.

The limit beside it: the in-process ingest rate of the ingest benchmark (same run).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from .common import Context, Row, log
from .ingest import BATCH, devcluster_federation
from .workload import make_workload

__all__ = ["run"]


def _held(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("select max(seq) from events").fetchone()[0] or 0
    finally:
        conn.close()


def run(ctx: Context) -> list[Row]:
    from node.chapter.chapter_node import ChapterNode
    from node.operations.datadir import DataDir

    n = ctx.size(100_000, 300)
    bound = ctx.seconds(240, 30)
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="catchup-"))
    fed = None
    try:
        fed, seeds = devcluster_federation(root, ["paris", "rome"], 1000)
        log(f"catch-up: signing {n:,} events and filling rome's store")
        workload = make_workload(n, charter=fed.charter, seeds=seeds, opened_ago_ms=3_000_000)
        rome_dir = DataDir(fed.nodes["rome"].data_dir)
        store = rome_dir.store()
        node = ChapterNode(store, rome_dir.charter(), "rome", rome_dir.node_key())
        now = int(time.time() * 1000)
        for i in range(0, len(workload.events), BATCH):
            node.receive(workload.events[i:i + BATCH], origin="seed", now_ms=now)
        total = store.count()
        store.close()
        assert total == len(workload.events), total
        fed.start("rome")
        log("catch-up: paris starts empty and pulls")
        t0 = time.perf_counter()
        fed.start("paris")
        ready = time.perf_counter() - t0
        db = fed.nodes["paris"].data_dir / "node.db"
        held = 0
        while held < total and time.perf_counter() - t0 < bound:
            time.sleep(0.1)
            held = _held(db)
        seconds = time.perf_counter() - t0  # from the process start: startup counts too
        rate = held / seconds if seconds > 0 else 0.0
        done = "" if held >= total else f" (stopped at the {bound:.0f} s bound)"
        return [Row("catch-up", f"fresh node pulls {total:,} events from a peer, real nodes"
                                f"{done}", rate, "events/s", "in-process ingest",
                    ctx.limits.get("ingest"), "≥ 40 %",
                    note=f"{held:,} held {seconds:.1f} s after paris started (it answered after "
                         f"{ready:.1f} s)")]
    finally:
        if fed is not None:
            fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)
