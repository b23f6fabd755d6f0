"""Check it yourself, in headless Chromium: a vote with 1,000 Connectors and 10,000 acts.

The browser reads the export lines, checks every event (envelope, fields, federation, id) and
every signature (WebCrypto Ed25519), then recomputes the tally with the JavaScript rules
(node/web/static/js/check/). Beside it, in the same run, the Python audit of the same lines
(`chapter-node tally`: parse, verify, decide), the reference implementation on the same
machine. Target: < 2 s in the browser, signatures included.

Needs Chromium (`/usr/bin/chromium` or `$CHROMIUM`); without it the rows say so.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .common import Context, Row, log
from .ingest import devcluster_federation
from .web import ARGS, _chromium
from .workload import make_workload

__all__ = ["run"]

CHECK = """async ([text, pid]) => {
  const evidence = await import('/static/js/check/evidence.js');
  const rules = await import('/static/js/check/rules.js');
  const t0 = performance.now();
  const parsed = evidence.parseLines(text);
  const t1 = performance.now();
  const bad = await evidence.badSignatures(parsed.events);
  const t2 = performance.now();
  const doc = {charter: parsed.charter, events: parsed.events, sealed: parsed.sealed};
  const judged = rules.judge(doc, pid, Date.now());
  const t3 = performance.now();
  return {parse: t1 - t0, signatures: t2 - t1, rules: t3 - t2, total: t3 - t0,
          bad: bad.length, events: parsed.events.length, hash: judged.tally_hash};
}"""


def run(ctx: Context) -> list[Row]:
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        return [Row("check", "not measured: Chromium or Playwright is missing", None, "")]
    from node.operations.audit import parse_export, tally_report

    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="check-"))
    fed = None
    try:
        connectors = ctx.size(1000, 10)
        fed, seeds = devcluster_federation(root, ["paris", "rome"], connectors)
        paris = fed.start("paris")
        n = ctx.size(10_000, 60)
        log(f"check: a vote with {connectors:,} Connectors and {n:,} acts")
        work = make_workload(n, charter=fed.charter, seeds=seeds, comment_share=0)
        lines = [json.dumps({"charter": fed.charter.to_json()}, ensure_ascii=False,
                            separators=(",", ":"))] + [e.decode() for e in work.events]
        text = "\n".join(lines)
        repeats = ctx.size(5, 2)
        python, python_hash = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            report = tally_report(parse_export(lines), work.proposal_id, int(time.time() * 1000))
            python.append((time.perf_counter() - t0) * 1000)
            python_hash = report["tally_hash"]
        runs = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=path, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(paris.url + "/check")
                page.wait_for_selector("html[data-ready]", state="attached")
                for _ in range(repeats):
                    runs.append(page.evaluate(CHECK, [text, work.proposal_id]))
            finally:
                browser.close()
        last = runs[-1]
        if last["bad"] or last["hash"] != python_hash:
            raise RuntimeError(f"check: the browser disagrees with the audit: {last}")
        total = statistics.median(r["total"] for r in runs)
        note = (f"median of {len(runs)}: parse {statistics.median(r['parse'] for r in runs):.0f}"
                f" ms, {last['events']:,} signatures "
                f"{statistics.median(r['signatures'] for r in runs):.0f} ms, rules "
                f"{statistics.median(r['rules'] for r in runs):.0f} ms; same tally_hash as "
                "the audit")
        return [Row("check", f"browser check of a vote ({connectors:,} Connectors, {n:,} acts)",
                    total, "ms", "Python audit of the same lines (chapter-node tally)",
                    statistics.median(python), "< 2 s", note=note)]
    finally:
        if fed is not None:
            fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)
