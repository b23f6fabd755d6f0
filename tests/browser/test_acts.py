"""People acting from a browser, through any chapter's node, against three real nodes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

from .conftest import (
    AMELIE,
    JEANNE,
    JONAS,
    MARCO,
    OPEN_S,
    PASSPHRASE,
    everywhere,
    import_key,
    new_page,
    open_proposal,
    wait_until,
)


class Requests:
    """Every request a page makes, to check that none carries the secret."""

    def __init__(self, page) -> None:
        self.seen: list[str] = []
        page.on("request", lambda r: self.seen.append(
            r.url + "\n" + json.dumps(r.headers) + "\n" + (r.post_data or "")))

    def assert_none_contains(self, *secrets: str) -> None:
        assert self.seen
        for text in self.seen:
            for secret in secrets:
                assert secret not in text


def test_a_connector_vetoes_from_rome_and_paris_sees_it_live(browser, federation, key_files):
    fed = federation
    pid = open_proposal(fed, AMELIE, "paris", "consent", "Adopt the 2027 budget",
                        closes_in_s=OPEN_S + 25)
    everywhere(fed, pid)
    paris = new_page(browser)  # someone reading the proposal on Paris's node
    paris.goto(fed.nodes["paris"].url + f"/proposals/{pid}")
    marco = new_page(browser, width=390, height=844)
    sent = Requests(marco)
    import_key(marco, fed.nodes["rome"].url, key_files["Marco"])
    marco.goto(fed.nodes["rome"].url + f"/proposals/{pid}")
    # a veto needs its reason: asked for first, nothing sent
    marco.get_by_role("button", name="Veto", exact=True).click()
    assert marco.locator("#veto-reason-error").is_visible()
    assert marco.title().startswith("Error:")
    marco.get_by_label("Reason").fill("The budget leaves out the new chapters.")
    marco.get_by_role("button", name="Veto", exact=True).click()
    marco.get_by_role("button", name="Sign and send veto").click()
    marco.get_by_role("link", name="See the receipt").wait_for()
    # Paris's open page shows the veto and its reason, without a reload
    paris.get_by_text("The budget leaves out the new chapters.").wait_for(timeout=15_000)
    assert "1 standing veto" in paris.locator('[data-role="result"]').inner_text()
    # withdrawn after the discussion
    marco.get_by_role("button", name="Withdraw veto").click()
    marco.get_by_role("link", name="See the receipt").wait_for()
    paris.get_by_role("heading", name="Withdrawn vetoes").wait_for(timeout=15_000)
    seed = bytes(MARCO.key).hex()
    from node.protocol.events import b64url
    sent.assert_none_contains(b64url(bytes(MARCO.key)), seed, PASSPHRASE)
    # after the close, all three nodes report one final tally_hash
    reports = wait_until(lambda: (r := [n.get(f"/api/v1/proposals/{pid}") for n in fed.nodes.values()])
                         and all(x["final"] for x in r) and r, timeout=OPEN_S + 60)
    assert len({r["tally_hash"] for r in reports}) == 1
    assert reports[0]["tally"]["vetoes"] == 0 and reports[0]["tally"]["outcome"] == "adopted"
    assert paris.problems == [] and marco.problems == []
    paris.context.close()
    marco.context.close()


def test_a_delegation_made_in_one_browser_moves_weight_counted_on_another_node(
        browser, federation, key_files, tmp_path):
    fed = federation
    pid = open_proposal(fed, AMELIE, "paris", "vote", "Choose Lisbon for the 2027 gathering")
    everywhere(fed, pid)
    jonas = new_page(browser)
    import_key(jonas, fed.nodes["paris"].url, key_files["Jonas"])
    jonas.goto(fed.nodes["paris"].url + f"/proposals/{pid}")
    jonas.get_by_label("Delegate my vote on this proposal to").select_option(label="Lucía (barcelona)")
    jonas.get_by_role("button", name="Delegate", exact=True).click()
    jonas.get_by_role("link", name="See the receipt").wait_for()
    receipt = jonas.get_by_role("link", name="See the receipt").get_attribute("href")

    lucia = new_page(browser, width=390, height=844)
    import_key(lucia, fed.nodes["barcelona"].url, key_files["Lucía"])
    lucia.goto(fed.nodes["barcelona"].url + f"/proposals/{pid}")
    lucia.get_by_role("button", name="Yes", exact=True).click()
    lucia.get_by_role("link", name="See the receipt").wait_for()

    # the trace on Paris's page shows Jonas's weight ending with Lucía's yes
    def jonas_row():
        row = jonas.locator(f'tr[data-connector="{JONAS.public}"]')
        return row.count() and "Yes" in row.inner_text() and "Lucía" in row.inner_text()
    wait_until(jonas_row, timeout=15)
    report = fed.nodes["rome"].get(f"/api/v1/proposals/{pid}")
    assert report["tally"]["yes"] == 2
    # his delegations page says where his weight went on this vote
    jonas.goto(fed.nodes["paris"].url + "/delegations")
    row = jonas.locator(f'tr[data-proposal="{pid}"]')
    wait_until(lambda: "Lucía" in row.locator('[data-role="ends"]').inner_text())
    assert "Lucía" in row.locator('[data-role="delegation"]').inner_text()
    assert "not delegated" in jonas.locator('[data-role="current"]').inner_text()

    # the CLI verifies what the browser signed
    event_id = receipt.rsplit("/", 1)[1]
    signed = tmp_path / "delegation.json"
    with urllib.request.urlopen(fed.nodes["paris"].url + f"/api/v1/events/{event_id}") as r:
        signed.write_bytes(r.read())
    charter = fed.root / "charter.json"
    check = subprocess.run([sys.executable, "-m", "node", "verify", str(signed), "--charter",
                            str(charter)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert jonas.problems == [] and lucia.problems == []
    jonas.context.close()
    lucia.context.close()


def test_an_act_altered_in_flight_is_refused_and_the_page_says_why(browser, federation,
                                                                   key_files):
    fed = federation
    pid = open_proposal(fed, AMELIE, "paris", "consent", "Move the newsletter to Mondays")
    everywhere(fed, pid)
    page = new_page(browser)
    import_key(page, fed.nodes["rome"].url, key_files["Marco"])
    page.goto(fed.nodes["rome"].url + f"/proposals/{pid}")

    def tamper(route):
        body = route.request.post_data.replace("Mondays are too busy", "I agree, go ahead")
        route.continue_(post_data=body)

    page.route("**/api/v1/events", tamper)
    page.get_by_label("Reason").fill("Mondays are too busy")
    page.get_by_role("button", name="Veto", exact=True).click()
    page.get_by_role("button", name="Sign and send veto").click()
    summary = page.locator('[data-role="errors"]')
    summary.wait_for()
    assert "signature does not match" in summary.inner_text()
    assert page.title().startswith("Error:")
    assert page.get_by_label("Reason").input_value() == "Mondays are too busy"  # kept
    activity = fed.nodes["rome"].get(f"/api/v1/proposals/{pid}/activity")
    assert activity["acts"] == []  # nothing stored
    page.context.close()


def test_a_member_comments_and_has_no_veto_or_vote(browser, federation, key_files):
    fed = federation
    consent = open_proposal(fed, AMELIE, "paris", "consent", "Adopt a code of conduct")
    vote = open_proposal(fed, AMELIE, "paris", "vote", "Pick the 2028 host city")
    page = new_page(browser)
    import_key(page, fed.nodes["paris"].url, key_files["Jeanne"])
    page.goto(fed.nodes["paris"].url + f"/proposals/{consent}")
    page.get_by_label("Comment").wait_for()
    assert page.get_by_role("button", name="Veto").count() == 0
    assert page.get_by_role("button", name="Endorse").count() == 0
    page.get_by_label("Comment").fill("Could we add a section on events?")
    page.get_by_role("button", name="Comment").click()
    page.get_by_text("Could we add a section on events?").wait_for(timeout=10_000)
    # her comment names her by key, never by the name only her chapter knows
    assert "Secretname" not in page.content()
    page.goto(fed.nodes["paris"].url + f"/proposals/{vote}")
    page.get_by_label("Comment").wait_for()
    for name in ("Yes", "No", "Abstain", "Delegate"):
        assert page.get_by_role("button", name=name, exact=True).count() == 0
    assert page.problems == []
    page.context.close()


def test_a_new_key_must_be_backed_up_before_the_first_act(browser, federation):
    fed = federation
    page = new_page(browser)
    page.goto(fed.nodes["paris"].url + "/key")
    create = page.locator('form[data-role="create"]')
    create.get_by_label("Passphrase", exact=True).fill("short")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#create-passphrase-error").is_visible()
    create.get_by_label("Passphrase", exact=True).fill("a long enough passphrase")
    create.get_by_label("Passphrase again").fill("a long enough passphrase")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_selector('[data-role="have-key"]:not([hidden])', timeout=60_000)
    public = page.locator('[data-role="public"]').inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", public)
    assert "not known yet" in page.locator('[data-role="identity"]').inner_text()
    pid = open_proposal(fed, AMELIE, "paris", "consent", "Adopt the logo")
    page.goto(fed.nodes["paris"].url + f"/proposals/{pid}")
    page.get_by_label("Comment").fill("Nice logo")
    page.get_by_role("button", name="Comment").click()
    assert "backup" in page.locator('[data-role="errors"]').inner_text()
    # the backup is the CLI's own key file
    page.goto(fed.nodes["paris"].url + "/key")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download key backup").click()
    doc = json.loads(open(download.value.path()).read())
    assert doc["type"] == "chapter-node-key" and doc["public"] == public and "box" in doc
    page.wait_for_selector('[data-role="backup-needed"]', state="hidden")  # the warning goes
    page.context.close()


def test_a_member_sets_their_email_by_signing_in_the_browser(browser, federation, key_files):
    fed = federation
    page = new_page(browser)
    sent = Requests(page)
    import_key(page, fed.nodes["paris"].url, key_files["Jeanne"])
    page.goto(fed.nodes["paris"].url + "/mail/settings")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Sign and save").click()
    assert page.locator("#mail-address-error").is_visible()
    page.get_by_label("Email address").fill("jeanne@example.org")
    page.get_by_label("One email a day").check()
    page.get_by_label("Language of the emails").select_option("it")
    page.get_by_role("button", name="Sign and save").click()
    page.get_by_text("Saved on your chapter's node").wait_for()
    from node.store import open_store

    store = open_store(fed.nodes["paris"].data_dir / "node.db")
    try:
        who = store.mail_recipient(JEANNE.public)
    finally:
        store.close()
    assert (who["address"], who["mode"], who["lang"]) == ("jeanne@example.org", "digest", "it")
    from node.protocol.events import b64url
    sent.assert_none_contains(b64url(bytes(JEANNE.key)), PASSPHRASE)
    assert page.problems == []
    page.context.close()
