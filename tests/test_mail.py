"""Email to the chapter's own people, through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from node.chapter.chapter_node import ChapterNode
from node.dev.devcluster import LocalFederation, Person, free_port
from node.notices.mail import Smtp, deliver_mail_due, unsubscribe_token
from node.notices.webhooks import Notices
from node.operations.datadir import DataDir, init_data_dir
from node.protocol.events import sign_event
from node.protocol.keys import write_key_file
from node.protocol.times import format_ms

from .conftest import person_key, pub, small_charter


class Inbox:
    """An SMTP server's handler: keeps what it accepts; refuses one address for good."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def paris(tmp_path: Path) -> ChapterNode:
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter(min_open_hours=1)))
    key = tmp_path / "paris-node.key"
    write_key_file(key, person_key("node paris"))
    d = init_data_dir(tmp_path / "paris", charter, "paris", key)
    store = d.store()
    node = ChapterNode(store, d.charter(), "paris", d.node_key())
    now = node.clock()
    node.member_add(pub("amelie"), "Amélie", "amelie@example.org", now)
    node.member_add(pub("jeanne"), "Jeanne", "jeanne@example.org", now)
    node.member_add(pub("jonas"), "Jonas", "jonas@example.org", now)
    node.member_add(pub("nomail"), "Sans adresse", "", now)
    node.store.set_mail(pub("jeanne"), lang="fr", now_ms=now)
    return node


def act(node: ChapterNode, who: str, type_: str, body: dict) -> str:
    event = sign_event(federation=node.charter.id, type=type_, chapter="paris",
                       created_at=format_ms(node.clock()), body=body, signing_key=person_key(who))
    node.submit(event.canonical, node.clock())
    return event.id


def smtp(port: int) -> Smtp:
    return Smtp("127.0.0.1", port, "none", None, None, "OuiShare Paris <paris@example.org>")


BASE = "https://paris.example.org"


async def test_a_new_proposal_reaches_each_member_with_an_address_in_their_language(paris, inbox):
    box, port = inbox
    notices = Notices(paris.store, "paris", [], mail=True)
    pid = act(paris, "amelie", "proposal", {"title": "Adopt the 2027 budget", "text": "…",
                                            "kind": "consent",
                                            "closes_at": format_ms(paris.clock() + 5 * 86400_000)})
    notices.collect(paris.clock())
    assert await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock()) == 3
    assert await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock()) == 0  # once
    assert sorted(r[0] for r, _ in box.messages) == ["amelie@example.org", "jeanne@example.org",
                                                      "jonas@example.org"]
    (jeanne,) = box.to("jeanne@example.org")
    assert jeanne["Subject"] == "Nouvelle proposition : Adopt the 2027 budget"
    assert jeanne["To"] == "jeanne@example.org"  # nobody else's address
    assert jeanne["References"] == f"<proposal-{pid}@paris.example.org>"
    assert jeanne["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe_token(paris.store, pub("jeanne"))
    assert token in jeanne["List-Unsubscribe"]
    text = jeanne.get_body(("plain",)).get_content()
    html = jeanne.get_body(("html",)).get_content()
    assert f"{BASE}/proposals/{pid}?lang=fr" in text and f"{BASE}/proposals/{pid}" in html
    assert "<img" not in html  # no tracking pixel
    ids = {m["Message-ID"] for _, m in box.messages}
    assert len(ids) == 3


async def test_closing_soon_goes_only_to_those_who_have_not_acted(paris, inbox):
    box, port = inbox
    notices = Notices(paris.store, "paris", [], mail=True)
    pid = act(paris, "amelie", "proposal", {"title": "Pick a logo", "text": "", "kind": "consent",
                                            "closes_at": format_ms(paris.clock() + 2 * 3600_000)})
    act(paris, "jeanne", "comment", {"proposal": pid, "text": "The blue one."})
    notices.collect(paris.clock())
    await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock())
    closing = [rcpt[0] for rcpt, m in box.messages
               if m["Subject"].startswith(("Closing", "Clôture"))]
    assert sorted(closing) == ["amelie@example.org", "jonas@example.org"]


async def test_a_server_down_then_back_delivers_everything_once(paris, inbox):
    box, port = inbox
    notices = Notices(paris.store, "paris", [], mail=True)
    act(paris, "amelie", "proposal", {"title": "Move the meetup", "text": "", "kind": "action"})
    notices.collect(paris.clock())
    down = smtp(free_port())  # nothing listens there
    now = paris.clock()
    assert await deliver_mail_due(paris.store, down, BASE, now) == 0
    assert await deliver_mail_due(paris.store, smtp(port), BASE, now) == 0  # backing off
    assert await deliver_mail_due(paris.store, smtp(port), BASE, now + 5_000) == 3
    assert await deliver_mail_due(paris.store, smtp(port), BASE, now + 60_000) == 0
    assert len(box.messages) == 3


async def test_an_address_refused_for_good_is_marked_and_not_retried(paris, inbox):
    box, port = inbox
    paris.member_add(pub("gone"), "Gone", "gone@example.org", paris.clock())
    notices = Notices(paris.store, "paris", [], mail=True)
    act(paris, "amelie", "proposal", {"title": "Plant a tree", "text": "", "kind": "action"})
    notices.collect(paris.clock())
    assert await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock()) == 3
    row = paris.store.db.execute("select failed_ms, last_error from deliveries where target = ?",
                                 [f"mail:{pub('gone')}"]).fetchone()
    assert row[0] is not None and row[1].startswith("refused: 550")
    assert await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock() + 86400_000) == 0


async def test_unsubscribe_by_the_link_stops_the_next_notice_and_a_forged_one_is_refused(
        client, inbox):
    from node.federation.api import NODE

    box, port = inbox
    node = client.app[NODE]
    node.member_add(pub("jeanne"), "Jeanne", "jeanne@example.org", node.clock())
    token = unsubscribe_token(node.store, pub("jeanne"))
    link = f"/mail/unsubscribe?key={pub('jeanne')}&token="
    page = await client.get(link + token)
    assert page.status == 200 and "Stop these emails" in await page.text()
    forged = await client.post(link + "0" * 32, data={"List-Unsubscribe": "One-Click"})
    assert forged.status == 401
    for odd in ("%C3%A9" * 16, "%ED%A0%80", "%00"):  # any text in a link is judged, not a 500
        for method in (client.get, client.post):
            assert (await method(link + odd)).status == 401
    assert (await client.get(f"/mail/unsubscribe?key=%C3%A9&token={token}")).status == 401
    wrong = await client.get(link + "0" * 32 + "&lang=fr")  # from an email: in their words
    assert "utilisez le lien de" in await wrong.text() and wrong.status == 401
    other = await client.post(f"/mail/unsubscribe?key={pub('jonas')}&token={token}")
    assert other.status == 401  # one person's token does not unsubscribe another
    assert node.store.mail_recipient(pub("jeanne"))["mode"] == "each"
    done = await client.post(link + token, data={"List-Unsubscribe": "One-Click"})
    assert done.status == 200
    assert node.store.mail_recipient(pub("jeanne"))["mode"] == "none"
    notices = Notices(node.store, "paris", [], mail=True)
    act(node, "amelie", "proposal", {"title": "After unsubscribing", "text": "", "kind": "action"})
    notices.collect(node.clock())
    await deliver_mail_due(node.store, smtp(port), BASE, node.clock())
    assert box.to("jeanne@example.org") == []


def test_a_proposal_opened_in_rome_reaches_paris_members_from_paris_node(tmp_path, inbox):
    box, port = inbox
    amelie, marco = Person("Amélie", "paris"), Person("Marco", "rome")
    fed = LocalFederation(tmp_path, ["paris", "rome"], [amelie, marco], {"min_open_hours": 1},
                          pull_interval=0.3, anti_entropy_interval=2)
    fed.node_env["paris"] = {"CHAPTER_NODE_SMTP_URL": f"smtp://127.0.0.1:{port}",
                             "CHAPTER_NODE_SMTP_FROM": "OuiShare Paris <paris@example.org>",
                             "CHAPTER_NODE_DUTY_INTERVAL": "0.3"}
    fed.setup()
    paris = fed.nodes["paris"]
    subprocess.run([sys.executable, "-m", "node", "member", "add", "--data-dir",
                    str(paris.data_dir), "--key", pub("jeanne"), "--name", "Jeanne",
                    "--contact", "jeanne@example.org"], check=True, capture_output=True)
    fed.start_all()
    try:
        status, _, event = fed.act(marco, "rome", "proposal", {
            "title": "A Rome proposal", "text": "", "kind": "action"})
        assert status == 201
        deadline = time.monotonic() + 20
        while not box.to("jeanne@example.org") and time.monotonic() < deadline:
            time.sleep(0.2)
        (mail,) = box.to("jeanne@example.org")
        assert mail["Subject"] == "New proposal: A Rome proposal"
        assert f"{paris.url}/proposals/{event.id}" in mail.get_body(("plain",)).get_content()
        # the address never left Paris: it is in Paris's store, not in Rome's
        def holds(slug: str) -> bool:
            files = list(fed.nodes[slug].data_dir.glob("node.db*"))
            assert files
            return any(b"jeanne@example.org" in f.read_bytes() for f in files)

        assert holds("paris") and not holds("rome")
    finally:
        fed.stop_all()


async def test_the_admin_sees_what_was_sent_and_what_failed(paris, inbox, tmp_path):
    from click.testing import CliRunner

    from node.cli import _register, cli

    _register()
    box, port = inbox
    runner = CliRunner()
    data = str(tmp_path / "paris")
    changed = runner.invoke(cli, ["member", "mail", "--data-dir", data, "--key", pub("jonas"),
                                  "--contact", "gone@example.org", "--lang", "it"])
    assert changed.exit_code == 0, changed.output
    assert "each notice by email to gone@example.org, in it" in changed.output
    bad = runner.invoke(cli, ["member", "mail", "--data-dir", data, "--key", pub("jonas"),
                              "--contact", "not an address"])
    assert bad.exit_code == 2
    notices = Notices(paris.store, "paris", [], mail=True)
    act(paris, "amelie", "proposal", {"title": "Paint the door", "text": "", "kind": "action"})
    notices.collect(paris.clock())
    assert await deliver_mail_due(paris.store, smtp(port), BASE, paris.clock()) == 2
    shown = runner.invoke(cli, ["notices", "--data-dir", data])
    assert shown.exit_code == 0, shown.output
    assert "proposal_opened" in shown.output and "2/0/1" in shown.output  # sent/waiting/failed
    assert "gone@example.org" in shown.output and "refused: 550" in shown.output


def test_doctor_checks_the_mail_server_answers_and_takes_the_sender(paris, inbox, tmp_path):
    from node.operations.doctor import diagnose

    box, port = inbox
    data = tmp_path / "paris"
    (data / "config.toml").write_text(f'smtp_url = "smtp://127.0.0.1:{port}"\n'
                                      'smtp_from = "OuiShare Paris <paris@example.org>"\n')
    (finding,) = [f for f in diagnose(data) if f.check == "email"]
    assert finding.level == "ok" and "paris@example.org" in finding.detail
    (data / "config.toml").write_text(f'smtp_url = "smtp://127.0.0.1:{free_port()}"\n'
                                      'smtp_from = "paris@example.org"\n')
    (finding,) = [f for f in diagnose(data) if f.check == "email"]
    assert finding.level == "fail" and "refused" in finding.detail and finding.fix
    assert box.messages == []  # nothing was sent


async def test_a_digest_collects_a_days_notices_into_one_mail(paris, inbox):
    box, port = inbox
    now = paris.clock()
    paris.store.set_mail(pub("jonas"), mode="digest", now_ms=now)
    notices = Notices(paris.store, "paris", [], mail=True)
    for title in ("Paint the door", "Plant a tree"):
        act(paris, "amelie", "proposal", {"title": title, "text": "", "kind": "action"})
    notices.collect(now)
    await deliver_mail_due(paris.store, smtp(port), BASE, now)
    assert box.to("jonas@example.org") == []  # nothing before the day is over
    assert len(box.to("jeanne@example.org")) == 2  # who wants each notice gets each
    later = now + 86_400_000
    assert await deliver_mail_due(paris.store, smtp(port), BASE, later) == 1
    (digest,) = box.to("jonas@example.org")
    assert digest["Subject"] == "Your day in the federation: 2 notices"
    text = digest.get_body(("plain",)).get_content()
    assert "New proposal: Paint the door" in text and "New proposal: Plant a tree" in text
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert await deliver_mail_due(paris.store, smtp(port), BASE, later + 60_000) == 0


async def test_an_author_on_the_digest_hears_of_a_veto_at_once(paris, inbox):
    box, port = inbox
    now = paris.clock()
    for who in ("amelie", "jonas"):
        paris.store.set_mail(pub(who), mode="digest", now_ms=now)
    notices = Notices(paris.store, "paris", [], mail=True)
    pid = act(paris, "amelie", "proposal", {"title": "Join the housing coalition", "text": "",
                                            "kind": "consent",
                                            "closes_at": format_ms(now + 2 * 86_400_000)})
    act(paris, "marco", "veto", {"proposal": pid, "reason": "We have not read its charter."})
    notices.collect(now)
    await deliver_mail_due(paris.store, smtp(port), BASE, now)
    (veto,) = box.to("amelie@example.org")  # the author, at once; the opening waits for the day
    assert "veto" in veto["Subject"].lower()
    assert "We have not read its charter." in veto.get_body(("plain",)).get_content()
    assert box.to("jonas@example.org") == []  # everyone else on the digest: with the day's mail


async def test_a_member_sets_their_own_address_by_signing_and_nobody_else_can(
        client):
    from node.federation.api import NODE

    node = client.app[NODE]
    node.member_add(pub("jeanne"), "Jeanne", "", node.clock())

    def statement(who: str, body: dict, *, chapter: str = "paris", at: int | None = None,
                  author: str | None = None) -> bytes:
        from node.protocol.events import b64url, canonical

        unsigned = {"v": 1, "federation": node.charter.id, "type": "mail_settings",
                    "chapter": chapter, "author": author or pub(who),
                    "created_at": format_ms(at or node.clock()), "body": body}
        sig = person_key(who).sign(canonical(unsigned)).signature
        return canonical({**unsigned, "sig": b64url(sig)})

    settings = {"contact": "jeanne@example.org", "mode": "digest", "lang": "it"}
    ok = await client.post("/api/v1/mail", data=statement("jeanne", settings))
    assert ok.status == 200, await ok.text()
    assert "jeanne@example.org" not in await ok.text()
    who = node.store.mail_recipient(pub("jeanne"))
    assert (who["address"], who["mode"], who["lang"]) == ("jeanne@example.org", "digest", "it")
    # someone else signing for Jeanne, a replay, another chapter, a non-member: refused
    forged = await client.post("/api/v1/mail", data=statement(
        "marco", {**settings, "contact": "thief@example.org"}, author=pub("jeanne")))
    assert (await forged.json())["error"]["code"] == "bad_signature"
    old = await client.post("/api/v1/mail", data=statement("jeanne", settings,
                                                           at=node.clock() - 1000))
    assert old.status == 422
    elsewhere = await client.post("/api/v1/mail", data=statement("jeanne", settings,
                                                                 chapter="rome"))
    assert (await elsewhere.json())["error"]["code"] == "not_own_chapter"
    stranger = await client.post("/api/v1/mail", data=statement("jonas", settings))
    assert (await stranger.json())["error"]["code"] == "not_member"
    bad = await client.post("/api/v1/mail", data=statement("jeanne", {**settings,
                                                                      "contact": "nope"}))
    assert (await bad.json())["error"]["code"] == "bad_contact"
    assert node.store.mail_recipient(pub("jeanne"))["address"] == "jeanne@example.org"


async def test_a_malformed_mail_statement_is_refused_in_words(client) -> None:
    for body in (b"nope", b"{}", b'{"v": 1}', json.dumps({
            "v": 1, "federation": 5, "type": "mail_settings", "chapter": "paris", "author": "x",
            "created_at": "x", "body": {"contact": "", "mode": "each", "lang": "en"},
            "sig": "x"}).encode()):
        res = await client.post("/api/v1/mail", data=body)
        assert res.status == 400 and (await res.json())["error"]["code"] == "bad_statement"


class SlowInbox(Inbox):
    """An inbox that takes a few milliseconds per mail, so a kill lands in the middle of sending."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def test_kill_9_while_sending_loses_no_mail_and_repeats_at_most_the_one_in_flight(tmp_path):
    """kill -9 at random moments while Paris's node mails 120 members, restarted each time.

    SMTP cannot be exactly-once: a kill between the server's "250 accepted" and the node's
    commit resends that one mail. The resend carries the same Message-ID, which mail clients
    show once, so each kill can repeat at most one Message-ID and no other mail is ever sent
    twice; none is lost.
    """
    import random

    box = SlowInbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    amelie = Person("Amélie", "paris")
    fed = LocalFederation(tmp_path, ["paris"], [amelie], {"min_open_hours": 1})
    fed.node_env["paris"] = {"CHAPTER_NODE_SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
                             "CHAPTER_NODE_SMTP_FROM": "OuiShare Paris <paris@example.org>",
                             "CHAPTER_NODE_DUTY_INTERVAL": "0.1"}
    fed.setup()
    data = DataDir(fed.nodes["paris"].data_dir)
    store = data.store()
    node = ChapterNode(store, data.charter(), "paris", data.node_key())
    addresses = [f"member{i}@example.org" for i in range(120)]
    for i, address in enumerate(addresses):
        node.member_add(pub(f"member {i}"), f"Member {i}", address, node.clock())
    store.close()
    rng = random.Random(9)
    kills = 0
    try:
        fed.start("paris")
        status, _, _ = fed.act(amelie, "paris", "proposal", {
            "title": "Move the meetup", "text": "", "kind": "action"})
        assert status == 201
        while len(box.messages) < len(addresses) and kills < 10:
            time.sleep(rng.uniform(0.1, 0.5))
            fed.kill("paris")
            kills += 1
            fed.start("paris")
        deadline = time.monotonic() + 30
        while len({m["Message-ID"] for _, m in box.messages}) < len(addresses) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a mail sent twice after the last one would show now
    finally:
        fed.stop_all()
        controller.stop()
    assert kills >= 3  # the kills landed while mail was going out
    received: dict[str, list[str]] = {}
    for rcpt, message in box.messages:
        received.setdefault(rcpt[0], []).append(message["Message-ID"])
    assert sorted(received) == sorted(addresses)  # none lost
    repeats = sum(len(ids) - 1 for ids in received.values())
    assert all(len(set(ids)) == 1 for ids in received.values())  # a repeat is the same mail
    assert repeats <= kills  # at most the one in flight at each kill
    again = DataDir(fed.nodes["paris"].data_dir).store()
    try:
        left = again.db.execute("select count(*) from deliveries where target like 'mail:%' "
                                "and delivered_ms is null").fetchone()[0]
    finally:
        again.close()
    assert left == 0  # and the node knows every one was delivered
