"""A node holding a large store: startup time and peak memory while serving and syncing.

The store: N signed events (the ingest workload: votes, delegations and comments on one vote
proposal), written straight into a fresh node's store with `Store.insert_events` in large
batches (ingest itself is measured elsewhere; here only the result matters). Then:

- startup: `python -m node run` until it answers `GET /healthz`, and until `GET /api/v1/status`
  (which counts the events) answers;
- serving and syncing: a peer (signed requests, RFC 9421) reads 20 pages of the changes feed,
  fetches 2,000 events by id, and runs one whole Negentropy reconciliation against the node as
  responder (the peer lacks 1,000 of the events); clients read the status;
- memory: the node process's peak RSS (`VmHWM`) at the end, beside the bytes of raw
  (canonical) event data the store holds.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from yarl import URL

from .common import Context, Row, log
from .ingest import devcluster_federation
from .workload import make_workload

__all__ = ["run"]


def _peak_rss(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) in bytes of a live process."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0]) * 1024
    return values.get("VmHWM", 0), values.get("VmRSS", 0)


def _fill(data_dir: Path, events: list[bytes]) -> int:
    from node.operations.datadir import DataDir
    from node.protocol.events import event_from_stored

    store = DataDir(data_dir).store()
    now = int(time.time() * 1000)
    for i in range(0, len(events), 10_000):
        store.insert_events([event_from_stored(raw) for raw in events[i:i + 10_000]],
                            origin="seed", received_ms=now)
    count = store.count()
    store.close()
    return count


async def _as_peer(url: str, seed: bytes, items: list[tuple[int, bytes]], ids: list[str],
                   pages: int) -> dict[str, float]:
    from node.federation.httpsig import sign_request
    from node.federation.negentropy import Negentropy, VectorStorage

    async def call(session: aiohttp.ClientSession, method: str, path: str,
                   body: bytes = b"", ctype: str = "application/json") -> bytes:
        target = url + path
        headers = sign_request(method, target, body, seed, now=time.time())
        headers["Content-Type"] = ctype
        async with session.request(method, URL(target, encoded=True), data=body,
                                   headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: HTTP {resp.status} {data[:200]!r}")
            return data

    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        after = 0
        for _ in range(pages):
            async with session.get(url + "/healthz"):
                pass
            body = await call(session, "GET", f"/federation/v1/changes?after={after}&limit=5000")
            after += body.count(b"\n")
        out["feed_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, len(ids), 2000):
            await call(session, "POST", "/federation/v1/fetch",
                       json.dumps({"ids": ids[i:i + 2000]}).encode())
        out["fetch_s"] = time.perf_counter() - t0
        storage = VectorStorage(items)
        storage.seal()
        neg = Negentropy(storage, 256 * 1024, max_message_size=1 << 20)
        msg: bytes | None = neg.initiate()
        t0 = time.perf_counter()
        rounds = need = 0
        while msg is not None:
            rounds += 1
            reply = await call(session, "POST", "/federation/v1/negentropy", msg,
                               "application/octet-stream")
            msg, _, n = neg.reconcile_initiator(reply)
            need += len(n)
        out["reconcile_s"] = time.perf_counter() - t0
        out["rounds"] = rounds
        out["need"] = need
    return out


def run(ctx: Context) -> list[Row]:
    from node.protocol.events import event_id

    n = ctx.size(1_000_000, 2_000)
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="scale-"))
    fed = None
    try:
        fed, seeds = devcluster_federation(root, ["paris", "rome"], 1000)
        log(f"scale: signing {n:,} events")
        t0 = time.monotonic()
        workload = make_workload(n - 1, charter=fed.charter, seeds=seeds, opened_ago_ms=3_000_000)
        log(f"scale: signed in {time.monotonic() - t0:.0f} s; writing the store")
        t0 = time.monotonic()
        held = _fill(fed.nodes["paris"].data_dir, workload.events)
        log(f"scale: {held:,} events written in {time.monotonic() - t0:.0f} s")
        raw_bytes = workload.raw_bytes
        ids = [event_id(raw) for raw in workload.events[:: max(1, n // 2000)]][:2000]
        created = [json.loads(raw)["created_at"] for raw in workload.events]
        from node.protocol.times import parse_ms

        items = [(parse_ms(c) // 1000, bytes.fromhex(event_id(raw)))
                 for c, raw in zip(created, workload.events)]
        items = items[: len(items) - min(1000, len(items) // 10)]  # the peer lacks the last ones
        del workload, created
        node = fed.nodes["paris"]
        t0 = time.perf_counter()
        fed.start("paris", wait=False)
        deadline = time.monotonic() + ctx.seconds(120, 30)
        while True:
            try:
                with urllib.request.urlopen(node.url + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("the node did not answer /healthz") from None
                time.sleep(0.02)
        healthz_s = time.perf_counter() - t0
        with urllib.request.urlopen(node.url + "/api/v1/status", timeout=60) as resp:
            status = json.loads(resp.read())
        status_s = time.perf_counter() - t0
        assert status["events"] == held, status["events"]
        assert node.process is not None
        after_start = _peak_rss(node.process.pid)
        log("scale: serving and syncing")
        sync = asyncio.run(_as_peer(node.url, bytes(fed.nodes["rome"].key), items, ids,
                                    pages=ctx.size(20, 3)))
        peak, rss = _peak_rss(node.process.pid)
        rows = [
            Row("startup", f"`chapter-node run` on a {held:,}-event store until /healthz answers",
                healthz_s, "s", target="< 2 s",
                note=f"/api/v1/status (counts the events) answered after {status_s:.2f} s"),
            Row("memory", f"peak RSS of a node holding {held:,} events, serving and syncing",
                peak / 2**20, "MiB", "raw event data held (MiB)", raw_bytes / 2**20, "< 200 MB",
                ratio_override=f"{peak / raw_bytes:.2f} × raw data",
                note=(f"RSS after startup {after_start[1] / 2**20:.0f} MiB; one Negentropy "
                      f"reconciliation as responder took {sync['reconcile_s']:.1f} s over "
                      f"{sync['rounds']:.0f} round trips ({sync['need']:.0f} ids found); "
                      f"changes feed {sync['feed_s']:.1f} s, fetch {sync['fetch_s']:.1f} s")),
        ]
        return rows
    finally:
        if fed is not None:
            fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)
