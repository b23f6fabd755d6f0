"""A chapter admitted by vote joins a running federation: real nodes, real HTTP.

Paris and Rome vote to admit Lisbon; Lisbon's admin runs `chapter-node init --peer`, which
checks the history proving the admission and stores it; Lisbon's node then syncs, holds the
backlog, and an act sent through it reaches every chapter."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import nacl.signing

from node.dev.devcluster import LocalFederation, Person, free_port
from node.protocol.events import b64url
from node.protocol.keys import write_key_file
from node.protocol.times import format_ms

AMELIE = Person("Amélie", "paris")
MARCO = Person("Marco", "rome")
OPEN_S = 8
RULES = {"min_open_hours": OPEN_S / 3600, "grace_seconds": 1, "seal_timeout_seconds": 20,
         "quorum": 0.5, "action_endorsements": 3}


def wait_until(predicate, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_chapter_admitted_by_vote_inits_from_a_peer_and_joins(tmp_path) -> None:
    fed = LocalFederation(tmp_path, ["paris", "rome"], [AMELIE, MARCO], RULES,
                          pull_interval=0.3, anti_entropy_interval=2)
    fed.setup()
    fed.start_all()
    lisbon_key = nacl.signing.SigningKey(hashlib.sha256(b"lisbon node").digest())
    key_file = tmp_path / "lisbon-node.key"
    write_key_file(key_file, lisbon_key)
    port = free_port()
    lisbon = None
    init = [sys.executable, "-m", "node", "init", "--data-dir", str(tmp_path / "lisbon"),
            "--charter", str(tmp_path / "charter.json"), "--chapter", "lisbon",
            "--node-key", str(key_file), "--peer", fed.nodes["paris"].url]
    try:
        closes = int(time.time() * 1000) + OPEN_S * 1000 + 1500
        status, answer, vote = fed.act(AMELIE, "paris", "proposal", {
            "title": "Admit Lisbon", "text": "Twelve members, a node ready.", "kind": "vote",
            "closes_at": format_ms(closes),
            "effect": {"admit_chapter": {"slug": "lisbon", "key": b64url(bytes(lisbon_key.verify_key)),
                                         "url": f"http://127.0.0.1:{port}"}}})
        assert status == 201, answer
        wait_until(lambda: fed.proposal("rome", vote.id), 10)
        # before the close, nothing admits Lisbon yet: init says so, and makes nothing
        early = subprocess.run(init, capture_output=True, text=True)
        assert early.returncode == 2 and "not admitted yet" in early.stderr
        assert not (tmp_path / "lisbon").exists()
        for who, via in ((AMELIE, "paris"), (MARCO, "rome")):
            assert fed.act(who, via, "vote", {"proposal": vote.id, "choice": "yes"})[0] == 201
        wait_until(lambda: all(fed.proposal(s, vote.id)["final"] for s in fed.nodes), OPEN_S + 30)
        assert fed.proposal("paris", vote.id)["tally"]["outcome"] == "adopted"

        done = subprocess.run(init, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"admitted by proposal {vote.id}" in done.stdout
        lisbon = subprocess.Popen(
            [sys.executable, "-m", "node", "run", "--data-dir", str(tmp_path / "lisbon"),
             "--listen", f"127.0.0.1:{port}", "--pull-interval", "0.3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        from node.dev.devcluster import LocalNode

        node = LocalNode("lisbon", port, port, tmp_path / "lisbon", lisbon_key)
        wait_until(lambda: node.get("/api/v1/status"), 20)
        # the backlog is there from the start
        assert node.get(f"/api/v1/proposals/{vote.id}")["tally"]["outcome"] == "adopted"
        # its own acts reach every chapter
        fed.nodes["lisbon"] = node
        status, answer, hello = fed.act(AMELIE, "lisbon", "proposal", {
            "title": "A first Lisbon meetup", "text": "Thursday.", "kind": "action"})
        assert status == 201, answer
        wait_until(lambda: all(fed.nodes[s].get(f"/api/v1/proposals/{hello.id}")
                               for s in ("paris", "rome")), 20)
        # and the others' new acts reach it
        status, _, later = fed.act(MARCO, "rome", "endorse", {"proposal": hello.id})
        assert status == 201
        wait_until(lambda: node.get(f"/api/v1/proposals/{hello.id}")["tally"]["endorsements"] == 2,
                   20)
        assert url in {p["url"] for p in fed.nodes["paris"].get("/api/v1/status")["peers"]}
    finally:
        fed.nodes.pop("lisbon", None)
        if lisbon is not None:
            os.killpg(lisbon.pid, signal.SIGTERM)
            lisbon.wait(10)
        fed.stop_all()


def test_a_chapter_that_moves_tells_everyone_and_stays_in_sync(tmp_path) -> None:
    fed = LocalFederation(tmp_path, ["paris", "rome"], [AMELIE, MARCO], RULES,
                          pull_interval=0.3, anti_entropy_interval=2)
    fed.setup()
    fed.start_all()
    try:
        paris = fed.nodes["paris"]
        fed.stop_all()
        new_port = free_port()
        moved = subprocess.run([sys.executable, "-m", "node", "move", "--data-dir",
                                str(paris.data_dir), "--url", f"http://127.0.0.1:{new_port}"],
                               capture_output=True, text=True)
        assert moved.returncode == 0, moved.stderr
        bad = subprocess.run([sys.executable, "-m", "node", "move", "--data-dir",
                              str(paris.data_dir), "--url", "paris.example.org"],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and "not a node address" in bad.stderr
        paris.port = paris.url_port = new_port
        fed.start_all()
        url = f"http://127.0.0.1:{new_port}"
        wait_until(lambda: {p["slug"]: p["url"] for p in
                            fed.nodes["rome"].get("/api/v1/status")["peers"]}["paris"] == url, 20)
        status, _, event = fed.act(MARCO, "rome", "proposal", {
            "title": "Welcome to the new address", "text": "", "kind": "action"})
        assert status == 201
        wait_until(lambda: paris.get(f"/api/v1/proposals/{event.id}"), 20)
    finally:
        fed.stop_all()
