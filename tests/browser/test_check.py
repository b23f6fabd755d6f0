"""Check it yourself: the browser recomputes a result from signed evidence, trusting no node.

The `decided` proposals (conftest): a vetoed consent proposal and a vote with a delegation.

Real nodes, real Chromium. Tampering is done in flight, between the node and the page
(Playwright's request routing), as a hostile node or a hostile network would: a dropped
veto, a changed vote, a sealed list that does not match its root, a false result.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from node.operations.audit import parse_export, proposals_report

from .conftest import MARCO, SCREENSHOTS, new_page, wait_until


def run_check(page, url: str) -> str:
    page.goto(url)
    page.wait_for_selector("html[data-ready]")
    page.locator('[data-role="run-check"]').click()  # "Check this result", in any language
    page.wait_for_selector('[data-module="check"][data-checked]', timeout=30_000)
    return page.locator('[data-role="check-result"]').inner_text()


def test_a_person_checks_a_final_result_in_their_browser(browser, federation, decided):
    paris = federation.nodes["paris"].url
    page = new_page(browser)
    words = run_check(page, f"{paris}/proposals/{decided['consent']}")
    assert page.get_by_role("button", name="Check this result").is_visible()
    assert page.locator('[data-module="check"]').get_attribute("data-checked") == "trusted"
    assert "the result matches" in words and "Vetoed" in words
    report = federation.proposal("paris", decided["consent"])
    assert report["tally_hash"][:12] in words
    words = run_check(page, f"{paris}/proposals/{decided['vote']}")
    assert "the result matches" in words and "Adopted" in words
    assert "Yes 2" in words and "No 1" in words  # Jonas's weight reached Amélie's yes
    assert page.problems == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for lang, width in (("en", 1280), ("fr", 390)):
        shot = new_page(browser, width=width, height=900)
        run_check(shot, f"{paris}/proposals/{decided['vote']}?lang={lang}")
        shot.locator('[data-module="check"]').scroll_into_view_if_needed()
        shot.screenshot(path=str(SCREENSHOTS / f"check-matches-{lang}-{width}.png"))
        shot.context.close()
    page.context.close()


def _tamper(page, path_part: str, change) -> None:
    """Alter the node's answers for URLs containing `path_part`, in flight."""
    def handle(route):
        response = route.fetch()
        route.fulfill(response=response, body=change(response.text()))
    page.route(f"**{path_part}", handle)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _join(objs: list[dict]) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) for o in objs)


def test_altered_evidence_is_caught_and_named(browser, federation, decided):
    paris = federation.nodes["paris"].url
    consent, vote = decided["consent"], decided["vote"]

    def drop_veto(text: str) -> str:
        return _join([o for o in _lines(text) if o.get("type") != "veto"])

    def change_vote(text: str) -> str:
        objs = _lines(text)
        for o in objs:
            if o.get("type") == "vote" and o["author"] == MARCO.public:
                o["body"]["choice"] = "yes"
        return _join(objs)

    def shorten_list(text: str) -> str:
        objs = _lines(text)
        for o in objs:
            if "sealed" in o and o["sealed"]["acts"]:
                o["sealed"]["acts"] = o["sealed"]["acts"][1:]
                break
        return _join(objs)

    def false_result(text: str) -> str:
        report = json.loads(text)
        report["tally"]["outcome"] = "adopted"
        report["tally"]["vetoes"] = 0
        report["tally_hash"] = "0" * 64
        return json.dumps(report)

    cases = [
        (consent, "/evidence", drop_veto, "lists acts this node does not show"),
        (vote, "/evidence", change_vote, "the signature of a vote does not match"),
        (vote, "/evidence", shorten_list, "does not match its list of acts"),
        (consent, f"/api/v1/proposals/{consent}", false_result,
         "The node reports Adopted; your browser counts Vetoed."),
    ]
    for pid, part, change, expected in cases:
        page = new_page(browser)
        _tamper(page, part, change)
        words = run_check(page, f"{paris}/proposals/{pid}")
        assert page.locator('[data-module="check"]').get_attribute("data-checked") == "untrusted"
        assert "This result cannot be trusted" in words, words
        assert expected in words, (change.__name__, words)
        if change is change_vote:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "check-altered-en-1280.png"), full_page=True)
        page.context.close()


def _export(federation, tmp_path: Path) -> Path:
    url = federation.nodes["rome"].url + "/api/v1/export"
    with urllib.request.urlopen(url, timeout=10) as resp:
        data = resp.read()
    path = tmp_path / "federation.jsonl"
    path.write_bytes(data)
    return path


def test_an_export_file_is_checked_in_the_browser_alone(browser, federation, decided, tmp_path):
    export = _export(federation, tmp_path)
    page = new_page(browser)
    page.goto(federation.nodes["paris"].url + "/check")
    page.wait_for_selector("html[data-ready]")
    page.get_by_label("Export file").set_input_files(str(export))
    page.wait_for_selector('[data-module="check-file"][data-checked]', timeout=30_000)
    assert page.locator('[data-module="check-file"]').get_attribute("data-checked") == "trusted"
    rows = page.locator('[data-role="file-proposals"] tbody tr')
    python = {r["title"]: r for r in proposals_report(parse_export(export.read_bytes()
                                                                   .split(b"\n")), 0)}
    assert rows.count() == len(python)
    consent_row = rows.filter(has_text="Join the housing coalition")
    assert "Vetoed" in consent_row.inner_text()
    assert "3 of 3 seals agree" in consent_row.inner_text()
    assert python["Join the housing coalition"]["tally_hash"][:12] in consent_row.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "check-file-en-1280.png"), full_page=True)
    # one vote changed in the file: named by its line, nothing else trusted
    lines = export.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if '"type":"vote"' in line
                  and MARCO.public in line)
    lines[number] = lines[number].replace('"choice":"no"', '"choice":"yes"')
    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join(lines))
    page.get_by_label("Export file").set_input_files(str(altered))
    wait_until(lambda: page.locator('[data-module="check-file"]')
               .get_attribute("data-checked") == "untrusted")
    words = page.locator('[data-role="check-result"]').inner_text()
    assert f"Line {number + 1}: the signature of a vote does not match" in words
    assert page.problems == []
    page.context.close()
