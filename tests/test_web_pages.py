"""The web pages without a browser: every page answers in every language, reads without
script, escapes what people wrote, shows no member's name or contact, and carries the
security headers; the vendored browser libraries are the pinned ones."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

from aiohttp.test_utils import TestClient

from node.federation.api import NODE
from node.i18n import LANGUAGES, choose, translations
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .conftest import person_key, pub

ROOT = Path(__file__).resolve().parent.parent
XSS = '<img src=x onerror=alert(1)>'


def act(client: TestClient, who: str, type_: str, body: dict, chapter: str = "paris"):
    node = client.app[NODE]
    event = sign_event(federation=node.charter.id, type=type_, chapter=chapter,
                       created_at=format_ms(int(time.time() * 1000)), body=body,
                       signing_key=person_key(who))
    node.submit(event.canonical, node.clock())
    return event


def story(client: TestClient) -> dict[str, str]:
    """A proposal with an XSS title, a veto with its reason, a comment and a reply from a
    member whose name and contact only Paris knows."""
    node = client.app[NODE]
    node.member_add(pub("jeanne"), "Jeanne Secretname", "jeanne@example.org", node.clock())
    closes = format_ms(int(time.time() * 1000) + 2 * 3_600_000)
    proposal = act(client, "amelie", "proposal", {
        "title": XSS, "text": "Plan: https://example.org/plan?a=1&b=2 <script>alert(2)</script>",
        "kind": "consent", "closes_at": closes})
    veto = act(client, "amelie", "veto", {"proposal": proposal.id,
                                          "reason": "Not <b>now</b>: the budget is short."})
    comment = act(client, "jeanne", "comment", {"proposal": proposal.id, "text": "Why not?"})
    reply = act(client, "amelie", "comment", {"proposal": proposal.id, "text": "Budget.",
                                              "reply_to": comment.id})
    vote = act(client, "amelie", "proposal", {"title": "Pick a city", "text": "", "kind": "vote",
                                              "closes_at": closes})
    return {"proposal": proposal.id, "veto": veto.id, "comment": comment.id, "reply": reply.id,
            "vote": vote.id}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_no_inline_code(text: str, where: str) -> None:
    """What the CSP forbids must not be there at all: inline script, style, on* handlers."""
    parser = Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (where, tag, attrs)
        assert "style" not in attrs and tag != "style", (where, tag)
        if tag == "script":
            assert "src" in attrs or attrs.get("type") == "application/json", (where, attrs)


def pages(ids: dict[str, str]) -> list[str]:
    return ["/", "/?kind=consent", "/proposals/new", f"/proposals/{ids['proposal']}",
            f"/proposals/{ids['vote']}", f"/events/{ids['veto']}", f"/events/{ids['comment']}",
            "/key", "/delegations", "/node", f"/proposals/new?escalate={ids['proposal']}",
            "/mail/settings", "/check"]


async def test_every_page_answers_in_every_language_with_strict_headers(client) -> None:
    ids = story(client)
    for lang in LANGUAGES:
        for path in pages(ids):
            sep = "&" if "?" in path else "?"
            res = await client.get(f"{path}{sep}lang={lang}")
            text = await res.text()
            assert res.status == 200, (path, text[:500])
            assert f'<html lang="{lang}">' in text
            csp = res.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert res.headers["X-Content-Type-Options"] == "nosniff"
            assert res.headers["Referrer-Policy"] == "same-origin"
            assert_no_inline_code(text, path)


async def test_what_people_wrote_is_text_and_links_are_links(client) -> None:
    ids = story(client)
    text = await (await client.get(f"/proposals/{ids['proposal']}")).text()
    assert XSS not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<script>alert(2)" not in text
    assert '<a href="https://example.org/plan?a=1&amp;b=2" rel="nofollow noopener noreferrer">' in text
    assert "Not &lt;b&gt;now&lt;/b&gt;: the budget is short." in text  # the veto's reason
    # the reply sits under the comment it answers
    comment = text.index(f'id="c-{ids["comment"][:12]}"')
    reply = text.index(f'id="c-{ids["reply"][:12]}"')
    assert comment < text.index('class="thread replies"') < reply


async def test_no_page_or_api_answer_shows_a_members_name_or_contact(client) -> None:
    ids = story(client)
    paths = pages(ids) + ["/api/v1/proposals", f"/api/v1/proposals/{ids['proposal']}",
                          f"/api/v1/proposals/{ids['proposal']}/activity",
                          f"/api/v1/people/{pub('jeanne')}", "/api/v1/node", "/api/v1/status"]
    for path in paths:
        body = await (await client.get(path)).text()
        assert "Secretname" not in body and "jeanne@example.org" not in body, path
    person = await (await client.get(f"/api/v1/people/{pub('jeanne')}")).json()
    assert person["role"] == "member" and person["name"] is None and person["chapter"] == "paris"
    assert ids["comment"] in person["proposals"][ids["proposal"]]["comment"]["id"]
    connector = await (await client.get(f"/api/v1/people/{pub('amelie')}")).json()
    assert (connector["role"], connector["name"]) == ("connector", "Amélie")


async def test_refusals_are_pages_with_their_status(client) -> None:
    res = await client.get("/proposals/" + "0" * 64 + "?lang=fr")
    words = translations("fr").gettext("Not found")
    assert words != "Not found"
    page = await res.text()
    assert res.status == 404 and f"<h1>{words}</h1>" in page
    why = translations("fr").gettext("This node holds nothing at this address. An act made through "
                                     "another chapter's node can take a few seconds to arrive: "
                                     "reload the page in a moment.")
    assert why.startswith("Ce nœud") and why in page  # why, in the reader's words
    res = await client.get("/?kind=poll")
    assert res.status == 400 and "kind must be" in await res.text()
    res = await client.get("/api/v1/people/not-a-key")
    assert res.status == 400 and (await res.json())["error"]["code"]


async def test_the_page_language_follows_the_switch_then_the_browser(client) -> None:
    res = await client.get("/", headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
    assert '<html lang="pt">' in await res.text()
    res = await client.get("/?lang=it")
    assert res.cookies["lang"].value == "it"
    assert choose(None, "es", "fr") == "es"
    assert choose(None, None, "de-DE, fr;q=0.4") == "fr"
    assert choose(None, None, "de-DE") == "en"
    assert choose("xx", None, "it;q=0, es;q=0.1") == "es"


async def test_pages_load_their_scripts_and_styles_with_integrity(client) -> None:
    text = await (await client.get("/key")).text()
    loaded = re.findall(r'(?:href|src)="(/static/[^"?]+)(?:\?v=[0-9a-f]+)?" integrity="([^"]+)"',
                        text)
    assert len(loaded) > 10
    for path, integrity in loaded:
        res = await client.get(path)
        body = await res.read()
        want = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
        assert integrity == want, path


def test_vendored_browser_libraries_are_the_pinned_ones() -> None:
    manifest = json.loads((ROOT / "node" / "web" / "vendor.json").read_text())
    assert {"@noble/ed25519@3.2.0", "@noble/hashes@2.4.0", "@noble/ciphers@2.4.0",
            "canonicalize@5.1.0", "axe-core@4.14.1"} == {v["package"] for v in manifest.values()}
    for rel, pinned in manifest.items():
        assert hashlib.sha256((ROOT / rel).read_bytes()).hexdigest() == pinned["sha256"], rel
    on_disk = {p.relative_to(ROOT).as_posix()
               for folder in ("node/web/static/vendor", "tests/browser/vendor")
               for p in (ROOT / folder).rglob("*") if p.is_file()}
    assert on_disk == set(manifest)


async def read_messages(res, count: int) -> list[dict]:
    """The first `count` messages of a server-sent event stream."""
    import asyncio

    messages: list[dict] = []
    current: dict = {}
    while len(messages) < count:
        line = (await asyncio.wait_for(res.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("id: "):
            current["seq"] = int(line[4:])
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            messages.append(current)
            current = {}
    return messages


async def test_the_live_stream_resumes_from_last_event_id_and_filters(client) -> None:
    ids = story(client)
    node = client.app[NODE]
    # a page that saw up to the veto reconnects: it gets what came after, for its proposal
    veto_seq = node.store.seqs([ids["veto"]])[ids["veto"]]
    res = await client.get(f"/api/v1/stream?proposal={ids['proposal']}",
                           headers={"Last-Event-ID": str(veto_seq)})
    assert res.headers["Content-Type"].startswith("text/event-stream")
    got = await read_messages(res, 2)
    assert [m["data"]["id"] for m in got] == [ids["comment"], ids["reply"]]
    assert all(m["seq"] > veto_seq for m in got)
    # then what is stored from now on, as it is stored
    later = act(client, "amelie", "comment", {"proposal": ids["proposal"], "text": "Later."})
    act(client, "amelie", "comment", {"proposal": ids["vote"], "text": "Elsewhere."})
    (message,) = await read_messages(res, 1)
    assert message["data"]["id"] == later.id and message["data"]["type"] == "comment"
    res.close()


async def test_the_live_stream_refuses_bad_input_and_is_bounded(client, monkeypatch) -> None:
    res = await client.get("/api/v1/stream?proposal=nope")
    assert res.status == 400 and (await res.json())["error"]["code"] == "bad_query"
    res = await client.get("/api/v1/stream", headers={"Last-Event-ID": "-1"})
    assert res.status == 400
    import node.federation.stream as stream

    monkeypatch.setattr(stream, "MAX_STREAMS", 1)
    first = await client.get("/api/v1/stream")
    await first.content.readline()  # it is open
    res = await client.get("/api/v1/stream")
    assert res.status == 503 and (await res.json())["error"]["code"] == "too_many_streams"
    first.close()
