"""Real nodes on 127.0.0.1 talking real HTTP: propagation, crashes, partitions, seals, auth.

Each test starts its own federation of `chapter-node run` processes (node/dev/devcluster.py) with
windows of seconds, and stops them all at the end, whatever happened.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest

from node.chapter.chapter_node import ChapterNode

# The demo's five Connectors: two in Paris, two in Rome, one in Barcelona.
from node.dev.demo import AMELIE, CONNECTORS, JONAS, LUCIA, MARCO, SOFIA  # noqa: E402
from node.dev.devcluster import LocalFederation, Person
from node.federation.httpsig import sign_request
from node.operations.datadir import DataDir
from node.protocol.events import b64url, canonical, sign_event
from node.protocol.times import format_ms
from node.store import open_store

from .support.faultproxy import FaultProxy

OPEN_S = 6
RULES = {"min_open_hours": OPEN_S / 3600, "grace_seconds": 1, "seal_timeout_seconds": 6}
CHAPTERS = ["paris", "rome", "barcelona"]


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fed = LocalFederation(tmp_path / "fed", CHAPTERS, CONNECTORS, RULES,
                          pull_interval=0.3, anti_entropy_interval=2).setup()
    try:
        yield fed
    finally:
        fed.stop_all()


def ok(result: tuple) -> str:
    status, answer, event = result
    assert status == 201, answer
    return event.id


def peer_post(fed: LocalFederation, sender: str, receiver: str, path: str, body: bytes,
              **sign_kw: object) -> tuple[int, dict]:
    """A request signed with `sender`'s node key, as a peer (or an impostor holding it) sends."""
    url = f"http://127.0.0.1:{fed.nodes[receiver].url_port}{path}"
    headers = sign_request("POST", url, body, bytes(fed.nodes[sender].key),
                           now=sign_kw.pop("now", time.time()), **sign_kw)  # type: ignore[arg-type]
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={**headers, "Content-Type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def held_ids(fed: LocalFederation, slug: str) -> set[str]:
    store = open_store(fed.nodes[slug].data_dir / "node.db", migrate=False)
    try:
        return {r[0] for r in store.db.execute("select id from events")}
    finally:
        store.close()


def everywhere(fed: LocalFederation, pid: str, predicate, timeout: float = 20.0,
               slugs: list[str] | None = None) -> None:
    if not fed.wait_for(lambda: all(predicate(fed.proposal(s, pid)) for s in slugs or fed.nodes),
                        timeout):
        reports = {}
        for slug in slugs or fed.nodes:
            try:
                reports[slug] = fed.proposal(slug, pid)
            except (OSError, ValueError) as e:
                reports[slug] = repr(e)
        pytest.fail(f"not everywhere within {timeout} s: {reports}\n{fed.log_tails()}")


def test_an_act_through_any_node_reaches_every_chapter_and_cannot_be_altered(
        federation: LocalFederation) -> None:
    fed = federation
    fed.start_all()
    pid = ok(fed.act(AMELIE, "paris", "proposal", {
        "title": "Adopt the 2027 budget", "text": "", "kind": "consent",
        "closes_at": format_ms(now_ms() + 60_000)}))
    everywhere(fed, pid, lambda r: r["state"] == "open")
    # Marco is a Rome Connector; he vetoes through the Barcelona node.
    veto = fed.act(MARCO, "barcelona", "veto", {"proposal": pid, "reason": "Too costly."})[2]
    everywhere(fed, pid, lambda r: r["tally"]["vetoes"] == 1)
    # Barcelona's node turns rogue and relays an altered copy: its peers refuse it.
    altered = veto.to_json()
    altered["body"]["reason"] = "I support it."
    for receiver in ("paris", "rome"):
        status, answer = peer_post(fed, "barcelona", receiver, "/federation/v1/events",
                                   json.dumps(altered).encode())
        assert status == 200
        assert answer["results"][0]["status"] == "refused"
        assert answer["results"][0]["error"]["code"] == "bad_signature"
    assert held_ids(fed, "paris") == held_ids(fed, "rome") == held_ids(fed, "barcelona")
    # A client cannot submit an act naming another chapter than the node's own.
    status, answer, _ = fed.act(MARCO, "rome", "endorse", {"proposal": pid})
    assert status == 201
    wrong = sign_event(federation=fed.charter.id, type="comment", chapter="rome",
                       created_at=format_ms(now_ms()), body={"proposal": pid, "text": "hi"},
                       signing_key=LUCIA.key)
    status, answer = fed.nodes["paris"].post("/api/v1/events", wrong.canonical)
    assert status == 403 and answer["error"]["code"] == "not_own_chapter"


def test_a_node_killed_during_a_vote_catches_up_to_the_same_final_tally(
        federation: LocalFederation) -> None:
    fed = federation
    fed.start_all()
    pid = ok(fed.act(AMELIE, "paris", "proposal", {
        "title": "Lisbon for 2027", "text": "", "kind": "vote",
        "closes_at": format_ms(now_ms() + OPEN_S * 1000 + 2000)}))
    everywhere(fed, pid, lambda r: r["state"] == "open")
    ok(fed.act(JONAS, "paris", "delegation", {"to": AMELIE.public, "proposal": None}))
    ok(fed.act(SOFIA, "rome", "delegation", {"to": MARCO.public, "proposal": pid}))
    ok(fed.act(MARCO, "rome", "vote", {"proposal": pid, "choice": "no"}))
    fed.kill("rome")
    ok(fed.act(AMELIE, "paris", "vote", {"proposal": pid, "choice": "yes"}))
    ok(fed.act(LUCIA, "barcelona", "vote", {"proposal": pid, "choice": "abstain"}))
    fed.start("rome")
    everywhere(fed, pid, lambda r: r["final"], timeout=30)
    reports = {s: fed.proposal(s, pid) for s in CHAPTERS}
    assert len({r["tally_hash"] for r in reports.values()}) == 1
    tally = reports["rome"]["tally"]
    assert (tally["yes"], tally["no"], tally["abstain"], tally["not_cast"]) == (2, 2, 1, 0)
    assert tally["outcome"] == "rejected"  # 2 yes is not more than half of 4 yes+no
    assert {s["chapter"] for s in reports["rome"]["seals"]} == set(CHAPTERS)
    assert all(s["agrees"] for s in reports["paris"]["seals"])


def test_a_partition_heals_to_identical_state(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path / "fed", CHAPTERS, CONNECTORS, RULES, proxied=True,
                          pull_interval=0.3, anti_entropy_interval=2).setup()
    proxies = {s: FaultProxy(n.port, n.url_port) for s, n in fed.nodes.items()}
    keyid = {s: b64url(bytes(n.key.verify_key)) for s, n in fed.nodes.items()}
    try:
        for p in proxies.values():
            p.start()
        fed.start_all()
        # {paris, rome} | {barcelona}, both ways.
        proxies["barcelona"].partition({keyid["paris"], keyid["rome"]})
        proxies["paris"].partition({keyid["barcelona"]})
        proxies["rome"].partition({keyid["barcelona"]})
        action = ok(fed.act(AMELIE, "paris", "proposal", {
            "title": "Translate the handbook", "text": "", "kind": "action"}))
        local = ok(fed.act(LUCIA, "barcelona", "proposal", {
            "title": "Barcelona hosts the summit", "text": "", "kind": "action"}))
        everywhere(fed, action, lambda r: True, slugs=["rome"])
        ok(fed.act(MARCO, "rome", "endorse", {"proposal": action}))
        ok(fed.act(LUCIA, "barcelona", "comment", {"proposal": local, "text": "¡Vamos!"}))
        time.sleep(2.5)  # more than a pull interval and an anti-entropy round
        assert action not in held_ids(fed, "barcelona")
        assert local not in held_ids(fed, "paris")
        for p in proxies.values():
            p.partition(set())
        assert fed.wait_for(lambda: len({frozenset(held_ids(fed, s)) for s in CHAPTERS}) == 1, 20)
        assert {action, local} <= held_ids(fed, "barcelona")
        # Duplicated and reordered deliveries change nothing.
        before = held_ids(fed, "paris")
        store = open_store(fed.nodes["rome"].data_dir / "node.db", migrate=False)
        lines = [raw for _, raw in store.changes(0, 10_000)]
        store.close()
        body = b"\n".join(list(reversed(lines)) + lines)
        status, answer = peer_post(fed, "rome", "paris", "/federation/v1/events", body)
        assert status == 200
        assert {r["status"] for r in answer["results"]} == {"duplicate"}
        assert held_ids(fed, "paris") == before
        hashes = {fed.proposal(s, action)["tally_hash"] for s in CHAPTERS}
        assert len(hashes) == 1
    finally:
        fed.stop_all()
        for p in proxies.values():
            p.stop()


def test_late_acts_are_excluded_and_a_missing_seal_waits_for_the_timeout(
        federation: LocalFederation) -> None:
    fed = federation
    fed.start_all()
    closes = now_ms() + OPEN_S * 1000 + 1000
    pid = ok(fed.act(AMELIE, "paris", "proposal", {
        "title": "New logo", "text": "", "kind": "consent", "closes_at": format_ms(closes)}))
    everywhere(fed, pid, lambda r: r["state"] == "open")
    fed.kill("barcelona")
    # After close + grace both live nodes seal; Barcelona's seal is missing.
    everywhere(fed, pid, lambda r: len(r["seals"]) == 2, slugs=["paris", "rome"])
    report = fed.proposal("paris", pid)
    assert report["final"] is False and report["missing_seals"] == ["barcelona"]
    assert now_ms() < closes + 1000 + 6000
    # A veto dated before the close, relayed after every seal: stored, but counted nowhere.
    late = sign_event(federation=fed.charter.id, type="veto", chapter="rome",
                      created_at=format_ms(closes - 500), body={"proposal": pid, "reason": "Late."},
                      signing_key=MARCO.key)
    status, answer = peer_post(fed, "barcelona", "paris", "/federation/v1/events", late.canonical)
    assert answer["results"][0]["status"] == "stored", answer
    assert fed.wait_for(lambda: late.id in held_ids(fed, "rome"), 5)  # relayed on
    # Provisional until the seal timeout, then final with Barcelona named as missing.
    everywhere(fed, pid, lambda r: r["final"], timeout=15, slugs=["paris", "rome"])
    assert now_ms() >= closes + 1000 + 6000
    for slug in ("paris", "rome"):
        report = fed.proposal(slug, pid)
        assert report["missing_seals"] == ["barcelona"]
        assert report["tally"]["vetoes"] == 0 and report["tally"]["outcome"] == "adopted"
        assert late.id in report["late_acts"]
    # Barcelona comes back too late for its seal to count; all three agree.
    fed.start("barcelona")
    everywhere(fed, pid, lambda r: r["final"] and len(r["seals"]) == 3, timeout=15)
    assert len({fed.proposal(s, pid)["tally_hash"] for s in CHAPTERS}) == 1
    # The late act is left out of the export.
    d = DataDir(fed.nodes["paris"].data_dir)
    store = d.store()
    node = ChapterNode(store, d.charter(), "paris", d.node_key())
    exported = b"\n".join(node.export_lines(now_ms()))
    store.close()
    assert late.id.encode() not in exported and late.canonical not in exported


def test_peer_requests_that_are_forged_unsigned_stale_or_replayed_are_refused(
        federation: LocalFederation) -> None:
    fed = federation
    fed.start("paris")
    body = b""
    url = f"http://127.0.0.1:{fed.nodes['paris'].port}/federation/v1/events"

    def post(headers: dict) -> tuple[int, str]:
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, ""
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())["error"]["code"]

    rome_seed = bytes(fed.nodes["rome"].key)
    assert post({}) == (401, "signature_missing")
    stranger = bytes(nacl.signing.SigningKey.generate())
    assert post(sign_request("POST", url, body, stranger, now=time.time())) == (401, "unknown_key")
    assert post(sign_request("POST", url, body, rome_seed, now=time.time() - 301)) == (
        401, "stale_request")
    assert post(sign_request("POST", url, body, rome_seed, now=time.time() + 120)) == (
        401, "future_request")
    signed = sign_request("POST", url, body, rome_seed, now=time.time())
    assert post(signed)[0] == 200
    assert post(signed) == (401, "replayed_nonce")
    other = sign_request("POST", url, b"{}", rome_seed, now=time.time())
    assert post(other) == (401, "digest_mismatch")
    forged = dict(sign_request("POST", url, body, rome_seed, now=time.time()))
    forged["Signature"] = forged["Signature"][:12] + ("A" if forged["Signature"][12] != "A" else "B") + forged["Signature"][13:]
    assert post(forged) == (401, "signature_invalid")
    # The node kept serving through all of it.
    assert fed.nodes["paris"].get("/api/v1/status")["chapter"] == "paris"


def test_chapter_data_never_reaches_a_peer(federation: LocalFederation) -> None:
    fed = federation
    d = DataDir(fed.nodes["paris"].data_dir)
    store = d.store()
    node = ChapterNode(store, d.charter(), "paris", d.node_key())
    jeanne = Person("Jeanne", "paris")
    node.member_add(jeanne.public, "Jeanne Dupont-Secret", "jeanne@secret.example", now_ms())
    node.decision_add("Paris keeps its meetup budget private", "Amount: 4321 EUR", now_ms())
    shared = node.decision_add("Paris moves meetups to Thursdays", "For feedback.", now_ms())
    node.decision_share(shared, now_ms() + 60_000, now_ms())
    store.close()
    fed.start_all()
    # The member's key is vouched for everywhere: Jeanne can propose through Rome.
    assert fed.wait_for(lambda: fed.act(jeanne, "rome", "proposal", {
        "title": "A reading group", "text": "", "kind": "action"})[0] == 201, 15)
    assert fed.wait_for(lambda: len({frozenset(held_ids(fed, s)) for s in CHAPTERS}) == 1, 15)
    # Everything a peer can receive from Paris: the feed, fetches, and what it stored.
    body = b""
    url = f"http://127.0.0.1:{fed.nodes['paris'].port}/federation/v1/changes?after=0&limit=5000"
    headers = sign_request("GET", url, body, bytes(fed.nodes["rome"].key), now=time.time())
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        feed = resp.read()
    assert b"Thursdays" in feed  # the shared decision went out, as a feedback_request
    # Jeanne sets her own address and email preferences on Paris's web app, signed with her key.
    paris = fed.nodes["paris"]
    unsigned = {"v": 1, "federation": fed.charter.id, "type": "mail_settings",
                "chapter": "paris", "author": jeanne.public, "created_at": format_ms(now_ms()),
                "body": {"contact": "jeanne.new@secret.example", "mode": "digest", "lang": "it"}}
    statement = {**unsigned, "sig": b64url(jeanne.key.sign(canonical(unsigned)).signature)}
    assert paris.post("/api/v1/mail", canonical(statement))[0] == 200
    # ...and a later notice for her goes into Paris's mail queue, not anywhere else.
    assert fed.act(jeanne, "paris", "proposal", {
        "title": "A second reading group", "text": "", "kind": "action"})[0] == 201
    assert fed.wait_for(lambda: len({frozenset(held_ids(fed, s)) for s in CHAPTERS}) == 1, 15)
    exports = b""
    for slug in CHAPTERS:  # what anyone can download, an auditor or another chapter
        with urllib.request.urlopen(fed.nodes[slug].url + "/api/v1/export", timeout=5) as resp:
            exports += resp.read()
    fed.stop_all()
    secrets = (b"Jeanne Dupont-Secret", b"jeanne@secret.example", b"jeanne.new@secret.example",
               b"4321 EUR", b"keeps its meetup budget")
    assert all(s not in exports for s in secrets)
    assert any(b"jeanne.new@secret.example" in f.read_bytes()  # it is kept, at home
               for f in paris.data_dir.glob("node.db*"))
    for slug in ("rome", "barcelona"):
        db = (fed.nodes[slug].data_dir / "node.db").read_bytes()
        wal = fed.nodes[slug].data_dir / "node.db-wal"
        everything = feed + db + (wal.read_bytes() if wal.exists() else b"")
        for secret in secrets:
            assert secret not in everything, (slug, secret)
        peer = open_store(fed.nodes[slug].data_dir / "node.db")
        try:  # no preference either: a peer holds no member, no mail setting, no mail to send
            for table in ("local_members", "local_mail"):
                assert peer.db.execute(f"select count(*) from {table}").fetchone()[0] == 0
            assert peer.db.execute("select count(*) from deliveries where target like "
                                   "'mail:%' or target like 'digest:%'").fetchone()[0] == 0
        finally:
            peer.close()


def test_a_hanging_peer_slows_nothing_else(tmp_path: Path) -> None:
    """Barcelona accepts connections and never answers; Paris and Rome sync as usual."""
    fed = LocalFederation(tmp_path / "fed", CHAPTERS, CONNECTORS, RULES, proxied=True,
                          pull_interval=0.3, anti_entropy_interval=2).setup()
    proxies = {s: FaultProxy(n.port, n.url_port) for s, n in fed.nodes.items()}
    try:
        for p in proxies.values():
            p.start()
        fed.start_all()
        proxies["barcelona"].set("blackhole")
        time.sleep(1)  # every node's loop towards Barcelona is now stuck on a request
        pid = ok(fed.act(AMELIE, "paris", "proposal", {
            "title": "Share the tools list", "text": "", "kind": "action"}))
        # Paris's request to Barcelona hangs until its timeout (10 s); Rome has it well before
        everywhere(fed, pid, lambda r: r["state"] == "pending", slugs=["rome"], timeout=5)
        assert fed.nodes["paris"].get("/api/v1/status")["chapter"] == "paris"
    finally:
        fed.stop_all()
        for p in proxies.values():
            p.stop()


def test_connectors_act_through_the_cli_against_a_running_node(
        federation: LocalFederation, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from node.cli import _register, cli
    from node.protocol.keys import write_key_file

    _register()
    fed = federation
    fed.start("paris")
    key = tmp_path / "amelie.key"
    write_key_file(key, AMELIE.key)
    runner = CliRunner()
    url = fed.nodes["paris"].url
    made = runner.invoke(cli, ["propose", "--node", url, "--key", str(key), "--kind", "vote",
                               "--title", "Pick the 2027 city", "--closes-in", "1h", "--json"])
    assert made.exit_code == 0, made.output
    pid = json.loads(made.output)["id"]
    voted = runner.invoke(cli, ["vote", "--node", url, "--key", str(key), "--proposal", pid,
                                "--choice", "yes"])
    assert voted.exit_code == 0 and "accepted by paris" in voted.output
    again = runner.invoke(cli, ["veto", "--node", url, "--key", str(key), "--proposal", pid,
                                "--reason", "wrong kind"])
    assert again.exit_code == 1 and "[wrong_proposal_kind]" in again.output
    shown = runner.invoke(cli, ["show", pid, "--node", url, "--json"])
    report = json.loads(shown.output)
    assert report["tally"]["yes"] == 1 and report["state"] == "open"
    mine = next(t for t in report["trace"] if t["connector"] == AMELIE.public)
    assert mine["counted_as"] == "yes"
    listed = runner.invoke(cli, ["proposals", "--node", url, "--json"])
    assert [p["id"] for p in json.loads(listed.output)] == [pid]
    table = runner.invoke(cli, ["show", pid, "--node", url])
    assert table.exit_code == 0, table.output
    assert "Pick the 2027 city" in table.output and "not cast" in table.output
