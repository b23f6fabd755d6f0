"""Browser tests: Debian's Chromium driven by Playwright for Python, against real nodes.

The browser is the system's (`/usr/bin/chromium`, or `$CHROMIUM`), never one Playwright
downloads. Without it these tests are skipped with one line saying why — unless
`REQUIRE_BROWSER=1` (set by .ci/run, which installs Chromium), where its absence
is a failure. Screenshots go to `$SCREENSHOTS` (default `screenshots/`), kept by CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.dev.devcluster import LocalFederation, Person
from node.protocol.keys import write_key_file
from node.protocol.times import format_ms

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS", ROOT / "screenshots"))
PASSPHRASE = "correct horse battery staple"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]

AMELIE = Person("Amélie", "paris")
JONAS = Person("Jonas", "paris")
MARCO = Person("Marco", "rome")
LUCIA = Person("Lucía", "barcelona")
JEANNE = Person("Jeanne", "paris")  # a member, not a Connector
CONNECTORS = [AMELIE, JONAS, MARCO, LUCIA]
OPEN_S = 20  # the charter's shortest opening, so one test can watch a proposal close
RULES = {"min_open_hours": OPEN_S / 3600, "grace_seconds": 2, "seal_timeout_seconds": 30,
         "quorum": 0.5, "action_endorsements": 3}


def chromium_path() -> str | None:
    given = os.environ.get("CHROMIUM")
    for candidate in (given, "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (apt-get install chromium; .ci/run does)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Per module: Playwright's sync API keeps an event loop running on this thread while it
    is open, and the other test modules call asyncio.run()."""
    path = chromium_path()
    if path is None:
        _missing("Chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Paris, Rome and Barcelona on loopback, four Connectors, Jeanne a member of Paris."""
    root = tmp_path_factory.mktemp("web-federation")
    fed = LocalFederation(root, ["paris", "rome", "barcelona"], CONNECTORS, RULES,
                          pull_interval=0.3, anti_entropy_interval=2)
    fed.setup()
    fed.start_all()
    try:
        subprocess.run([sys.executable, "-m", "node", "member", "add", "--data-dir",
                        str(fed.nodes["paris"].data_dir), "--key", JEANNE.public,
                        "--name", "Jeanne Secretname", "--contact", "jeanne@example.org"],
                       check=True, capture_output=True)
        yield fed
    finally:
        fed.stop_all()


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each person's key file, sealed under PASSPHRASE, as `chapter-node keygen` writes it."""
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for person in CONNECTORS + [JEANNE]:
        path = folder / f"{person.public[:8]}.key"
        write_key_file(path, person.key, passphrase=PASSPHRASE)
        out[person.name] = path
    return out


def new_page(browser, *, width: int = 1280, height: int = 800, locale: str = "en-GB",
             javascript: bool = True):
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                  java_script_enabled=javascript, accept_downloads=True)
    page = context.new_page()
    page.problems = []  # uncaught errors and console errors, asserted empty by the tests
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    return page


def import_key(page, node_url: str, key_file: Path, passphrase: str = PASSPHRASE) -> None:
    """What a person does on the key page: choose their CLI key file, type its passphrase."""
    page.goto(node_url + "/key")
    form = page.locator('form[data-role="import"]')
    form.get_by_label("Key file").set_input_files(str(key_file))
    form.get_by_label("Passphrase", exact=True).fill(passphrase)
    form.get_by_role("button", name="Import key").click()
    page.wait_for_selector('[data-role="have-key"]:not([hidden])', timeout=60_000)


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def held(node, pid: str) -> bool:
    """Whether `node` holds proposal `pid` yet."""
    try:
        node.get(f"/api/v1/proposals/{pid}")
        return True
    except OSError:
        return False


def everywhere(fed, *pids: str) -> None:
    """Wait until every node holds every one of `pids`."""
    wait_until(lambda: all(held(node, pid) for node in fed.nodes.values() for pid in pids))


def open_proposal(fed, who, via, kind, title, *, closes_in_s=3 * 86400, **extra) -> str:
    body = {"title": title, "text": "Details in the wiki.", "kind": kind, **extra}
    if kind != "action":
        body["closes_at"] = format_ms(int(time.time() * 1000) + closes_in_s * 1000)
    status, answer, event = fed.act(who, via, "proposal", body)
    assert status == 201, answer
    return event.id


@pytest.fixture(scope="session")
def decided(federation) -> dict[str, str]:
    """A vetoed consent proposal and a vote with a delegation, closed and final everywhere."""
    fed = federation
    consent = open_proposal(fed, AMELIE, "paris", "consent", "Join the housing coalition",
                            closes_in_s=OPEN_S + 1)
    vote = open_proposal(fed, AMELIE, "paris", "vote", "Share the 2027 budget",
                         closes_in_s=OPEN_S + 1)
    everywhere(fed, consent, vote)
    for who, via, type_, body in [
            (MARCO, "rome", "veto", {"proposal": consent, "reason": "Read its charter first."}),
            (LUCIA, "barcelona", "endorse", {"proposal": consent}),
            (JONAS, "paris", "delegation", {"to": AMELIE.public, "proposal": vote}),
            (AMELIE, "paris", "vote", {"proposal": vote, "choice": "yes"}),
            (MARCO, "rome", "vote", {"proposal": vote, "choice": "no"})]:
        status, answer, _ = fed.act(who, via, type_, body)
        assert status == 201, answer
    wait_until(lambda: all(fed.proposal(slug, pid)["final"] for slug in fed.nodes
                           for pid in (consent, vote)), timeout=OPEN_S + 60)
    return {"consent": consent, "vote": vote}
