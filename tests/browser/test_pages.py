"""Every page as people see it: screenshots at desktop and phone width in each language
(kept under $SCREENSHOTS for a person to look at), axe-core finding nothing serious, every
page readable without script, and keyboard-only acting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node.i18n import LANGUAGES
from node.protocol.times import format_ms

from .conftest import (
    AMELIE,
    JEANNE,
    JONAS,
    LUCIA,
    MARCO,
    SCREENSHOTS,
    everywhere,
    import_key,
    new_page,
    wait_until,
)

AXE = Path(__file__).parent / "vendor" / "axe-core@4.14.1" / "axe.min.js"
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def story(federation) -> dict[str, str]:
    """A consent proposal with a veto, a discussion with a reply and an endorsement; a vote
    with a delegation and a direct vote; a green-lit action."""
    fed = federation
    now = int(time.time() * 1000)
    closes = format_ms(now + 5 * 86400_000)

    def act(who, via, type_, body):
        status, answer, event = fed.act(who, via, type_, body)
        assert status == 201, answer
        return event.id

    consent = act(AMELIE, "paris", "proposal", {
        "title": "Adopt the 2027 gathering budget",
        "text": "The budget is in the shared sheet: https://example.org/budget-2027\n"
                "Travel grants are 40% of it.", "kind": "consent", "closes_at": closes})
    vote = act(AMELIE, "paris", "proposal", {"title": "Choose Lisbon for the 2027 gathering",
                                             "text": "Yes = Lisbon, No = Barcelona.",
                                             "kind": "vote", "closes_at": closes})
    action = act(LUCIA, "barcelona", "proposal", {"title": "Run a OuiShare Drinks in Barcelona",
                                                  "text": "Next Thursday.", "kind": "action"})
    everywhere(fed, consent, vote)
    veto = act(MARCO, "rome", "veto", {"proposal": consent,
                                        "reason": "The budget leaves out the new chapters."})
    act(LUCIA, "barcelona", "endorse", {"proposal": consent})
    question = act(JEANNE, "paris", "comment", {"proposal": consent,
                                                 "text": "How much goes to travel grants?"})
    act(AMELIE, "paris", "comment", {"proposal": consent, "text": "40%, see the sheet.",
                                     "reply_to": question})
    act(JONAS, "paris", "delegation", {"to": AMELIE.public, "proposal": vote})
    act(AMELIE, "paris", "vote", {"proposal": vote, "choice": "yes"})
    act(MARCO, "rome", "endorse", {"proposal": action})
    wait_until(lambda: fed.nodes["paris"].get(f"/api/v1/proposals/{consent}")["tally"]["vetoes"])
    return {"consent": consent, "vote": vote, "action": action, "veto": veto}


def pages(ids: dict[str, str]) -> dict[str, str]:
    return {"proposals": "/", "consent": f"/proposals/{ids['consent']}",
            "vote": f"/proposals/{ids['vote']}", "action": f"/proposals/{ids['action']}",
            "new": "/proposals/new", "receipt": f"/events/{ids['veto']}", "key": "/key",
            "delegations": "/delegations", "node": "/node", "mail": "/mail/settings",
            "check": "/check"}


def serious(page) -> list[str]:
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                           ".violations.filter(v => ['serious', 'critical'].includes(v.impact))"
                           ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))")
    return result


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_page_in_every_language_looks_right_and_passes_axe(browser, federation, story,
                                                                 key_files, width):
    fed = federation
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, bypass_csp=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    import_key(page, fed.nodes["paris"].url, key_files["Amélie"])
    for lang in LANGUAGES:
        folder = SCREENSHOTS / lang / width
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in pages(story).items():
            sep = "&" if "?" in path else "?"
            page.goto(fed.nodes["paris"].url + path + f"{sep}lang={lang}")
            page.wait_for_selector("html[data-ready]", state="attached")
            assert page.locator("html").get_attribute("lang") == lang
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            # nothing wider than the screen: a phone never scrolls sideways
            assert page.evaluate("document.documentElement.scrollWidth") <= w, (lang, name)
            if lang in ("en", "fr") or width == "desktop":
                assert serious(page) == [], (lang, width, name)
    assert problems == []
    context.close()


def test_every_page_reads_without_script(browser, federation, story):
    page = new_page(browser, javascript=False)
    base = federation.nodes["paris"].url
    page.goto(base + f"/proposals/{story['consent']}")
    text = page.inner_text("main")
    for words in ("Adopt the 2027 gathering budget", "The budget leaves out the new chapters.",
                  "How much goes to travel grants?", "40%, see the sheet.", "Marco",
                  "Acting needs JavaScript"):
        assert words in text
    page.goto(base + f"/proposals/{story['vote']}")
    assert "through 1 delegation, to" in page.inner_text("main")
    for path in pages(story).values():
        page.goto(base + path)
        assert page.locator("h1").inner_text().strip()
    page.context.close()


def test_a_connector_endorses_with_the_keyboard_only(browser, federation, story, key_files):
    fed = federation
    page = new_page(browser)
    import_key(page, fed.nodes["rome"].url, key_files["Marco"])
    page.goto(fed.nodes["rome"].url + f"/proposals/{story['consent']}")
    page.get_by_role("button", name="Endorse").wait_for()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Endorse":
            break
    else:
        raise AssertionError("Tab never reached Endorse")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="See the receipt").wait_for()
    assert page.problems == []
    page.context.close()


def test_an_insecure_page_says_plainly_that_it_cannot_sign(browser, federation):
    # a plain-http address that is not this computer's own is no secure context
    context = browser.new_context()
    port = federation.nodes["paris"].port
    page = context.new_page()
    page.route("http://paris.chapters.test/**", lambda route: route.fulfill(
        response=route.fetch(url=route.request.url.replace("paris.chapters.test",
                                                           f"127.0.0.1:{port}"))))
    page.goto("http://paris.chapters.test/key")
    notice = page.locator('[data-module="context-check"]')
    notice.wait_for()
    assert "secure" in notice.inner_text() and "https" in notice.inner_text()
    context.close()
