"""The web app in headless Chromium (Debian's, driven by Playwright): what a person waits for.

- first load of a proposal page in a fresh browser (no cache): bytes transferred (headers and
  bodies as sent, compressed where the node compresses), requests, and time until the page is
  interactive (`performance.mark('chapter-node-ready')`, set once every behaviour is attached);
  beside it, the same browser loading the node's smallest answer (`/healthz`), the floor of a
  navigation on this machine.
- click to stored: a Connector with their key in the browser clicks a vote button; the time
  until the node answers 201 (signed in the page, sent, verified, admitted, committed). Beside
  it, the page's own `fetch` of the same endpoint with an act already held (200): the round
  trip alone.
- a large proposal (1,000 Connectors, ~10,000 acts and ~1,000 comments, pushed as a peer
  would): time until its page is interactive, beside the small proposal's.

Needs Chromium (`/usr/bin/chromium` or `$CHROMIUM`); without it the rows say so.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .common import Context, Row, log
from .ingest import devcluster_federation, post_batches
from .workload import make_workload

__all__ = ["run"]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
READY = "performance.getEntriesByName('chapter-node-ready')[0].startTime"


def _chromium() -> str | None:
    import os

    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def run(ctx: Context) -> list[Row]:
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        return [Row("web", "not measured: Chromium or Playwright is missing", None, "")]
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="web-"))
    fed = None
    try:
        connectors = ctx.size(1000, 10)
        fed, seeds = devcluster_federation(root, ["paris", "rome"], connectors)
        paris = fed.start("paris")
        from node.dev.devcluster import Person
        from node.protocol.keys import write_key_file
        from node.protocol.times import format_ms

        voter = Person("C1", fed.chapters[1 % 2])  # devcluster_federation's naming
        key_file = root / "voter.key"
        write_key_file(key_file, voter.key, passphrase="bench passphrase")
        now = int(time.time() * 1000)
        status, _, small = fed.act(Person("C0", "paris"), "paris", "proposal", {
            "title": "Adopt the 2027 budget", "text": "A short proposal, as most are.",
            "kind": "vote", "closes_at": format_ms(now + 3 * 3_600_000)})
        assert status == 201
        n = ctx.size(11_000, 60)  # 10,000 acts and 1,000 comments
        log(f"web: pushing a proposal with {n:,} acts and comments, as a peer would")
        big = make_workload(n, charter=fed.charter, seeds=seeds, opened_ago_ms=1_800_000,
                            comment_share=1 / 11)
        done, statuses = asyncio.run(post_batches(paris.url, big.events, bytes(fed.nodes["rome"].key),
                                                  deadline=time.monotonic() + 300))
        stored = statuses.get("stored", 0)
        comments = sum(1 for e in big.events if b'"type":"comment"' in e)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=path, args=ARGS)
            try:
                rows = _measure(browser, paris.url, small.id, big.proposal_id, key_file,
                                repeats=ctx.size(10, 2))
            finally:
                browser.close()
        acts = stored - 1 - comments
        for i, row in enumerate(rows):
            if row.figure.startswith("large"):
                rows[i] = Row(row.benchmark, f"large proposal page interactive ({connectors:,} "
                              f"Connectors, {acts:,} acts, {comments:,} comments)", row.value,
                              row.unit, row.limit, row.limit_value, row.target, row.note)
        return rows
    finally:
        if fed is not None:
            fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _first_load(browser, url: str) -> tuple[int, int, float]:
    context = browser.new_context()
    page = context.new_page()
    requests = []
    page.on("requestfinished", lambda r: requests.append(r))
    page.goto(url)
    page.wait_for_selector("html[data-ready]", state="attached")
    ready = page.evaluate(READY)
    page.wait_for_timeout(300)  # late requests (the clock check) are part of the first load
    total = 0
    for r in requests:
        sizes = r.sizes()
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"] + sizes["requestHeadersSize"]
    count = len(requests) + 1  # and the live stream, which never finishes
    context.close()
    return total, count, ready


def _measure(browser, base: str, small: str, big: str, key_file: Path, *, repeats: int) -> list[Row]:
    log("web: first loads")
    loads = [_first_load(browser, f"{base}/proposals/{small}") for _ in range(repeats)]
    total, count, _ = loads[-1]
    ready = statistics.median(t for _, _, t in loads)
    floor = []
    for _ in range(repeats):
        context = browser.new_context()
        page = context.new_page()
        page.goto(base + "/healthz")
        floor.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        context.close()

    log("web: click to stored")
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + "/key")
    form = page.locator('form[data-role="import"]')
    form.get_by_label("Key file").set_input_files(str(key_file))
    form.get_by_label("Passphrase", exact=True).fill("bench passphrase")
    form.get_by_role("button", name="Import key").click()
    page.wait_for_selector('[data-role="have-key"]:not([hidden])', timeout=60_000)
    page.goto(f"{base}/proposals/{small}")
    page.wait_for_selector("html[data-ready]", state="attached")
    clicks = []
    choices = ["Yes", "No"]
    last_body = None
    for i in range(repeats * 2):
        button = page.get_by_role("button", name=choices[i % 2], exact=True)
        with page.expect_response(lambda r: r.url.endswith("/api/v1/events")
                                  and r.request.method == "POST") as answer:
            t0 = time.perf_counter()
            button.click()
        response = answer.value
        clicks.append((time.perf_counter() - t0) * 1000)
        if response.status != 201:
            raise RuntimeError(f"web: the vote was refused: {response.status} {response.text()}")
        last_body = response.request.post_data
        page.get_by_role("link", name="See the receipt").wait_for()
    round_trip = page.evaluate("""async (body) => {
        const times = [];
        for (let i = 0; i < 10; i++) {
          const t0 = performance.now();
          const r = await fetch('/api/v1/events', {method: 'POST', body,
                                 headers: {'Content-Type': 'application/json'}});
          await r.json();
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        return times[5];
    }""", last_body)
    context.close()

    log("web: the large proposal")
    big_ready = []
    small_ready = []
    for _ in range(max(2, repeats // 3)):
        for pid, out in ((big, big_ready), (small, small_ready)):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{base}/proposals/{pid}", timeout=60_000)
            page.wait_for_selector("html[data-ready]", state="attached", timeout=60_000)
            out.append(page.evaluate(READY))
            context.close()
    return [
        Row("web", "first load of a proposal page: bytes transferred", total, "bytes",
            target="< 200 KB", note=f"{count} requests, the live stream included; fresh browser"),
        Row("web", "first load of a proposal page: interactive", ready, "ms",
            "the same browser loading /healthz", statistics.median(floor),
            note="median of fresh-browser loads on loopback"),
        Row("web", "click on a vote button → act stored (201)", statistics.median(clicks), "ms",
            "the page's fetch of a held act (200), round trip", round_trip, "< 300 ms",
            note=f"median of {len(clicks)} clicks: signed in the page (WebCrypto Ed25519), "
                 "sent, verified, admitted, committed"),
        Row("web", "large proposal page interactive", statistics.median(big_ready), "ms",
            "the small proposal's page, same run", statistics.median(small_ready), "< 1 s",
            note="server render of every comment and the delegation trace, then the scripts"),
    ]
