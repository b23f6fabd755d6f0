"""An admin's and a Connector's journeys on the command line, as a person runs them: a charter
made with commands only, two nodes from the same file, acts named by the start of their id,
a signed file handed to the right node, `show` telling the whole decision, and exit codes that
say who got it wrong (1: refused, 2: local misuse)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from itertools import count, islice
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from node.cli.options import resolve_id
from node.dev.devcluster import free_port
from node.protocol.errors import Misuse, NotFound
from node.protocol.events import b64url

CN = [sys.executable, "-m", "node"]


def cn(*args: str, cwd: Path, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([*CN, *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def public(path: Path) -> str:
    return json.loads(path.read_text())["public"]


@pytest.fixture(scope="module")
def founded(tmp_path_factory):
    """A federation founded with commands only: Paris and Rome, Amélie and Marco."""
    d = tmp_path_factory.mktemp("founding")
    ports = {"paris": free_port(), "rome": free_port()}
    cn("charter", "new", "--file", "charter.json", "--name", "OuiShare Test",
       "--rule", "min_open_hours=0.01", "--rule", "grace_seconds=60", cwd=d)
    for name in ("paris-node", "rome-node", "amelie", "marco", "jeanne"):
        cn("keygen", "--out", f"{name}.key", "--no-encrypt", cwd=d)
    for slug in ports:
        cn("charter", "add-chapter", slug, "--key", public(d / f"{slug}-node.key"),
           "--url", f"http://127.0.0.1:{ports[slug]}", "--file", "charter.json", cwd=d)
    cn("charter", "add-connector", "--key", public(d / "amelie.key"), "--name", "Amélie",
       "--chapter", "paris", "--file", "charter.json", cwd=d)
    cn("charter", "add-connector", "--key", public(d / "marco.key"), "--name", "Marco",
       "--chapter", "rome", "--file", "charter.json", cwd=d)
    checked = cn("charter", "check", "--file", "charter.json", cwd=d)
    federation = checked.stdout.split("federation id ")[1].split()[0]
    processes = []
    for slug, port in ports.items():
        cn("init", "--data-dir", slug, "--charter", "charter.json", "--chapter", slug,
           "--node-key", f"{slug}-node.key", cwd=d)
        processes.append(subprocess.Popen(
            [*CN, "run", "--data-dir", slug, "--listen", f"127.0.0.1:{port}",
             "--pull-interval", "0.3"], cwd=d, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
    urls = {slug: f"http://127.0.0.1:{port}" for slug, port in ports.items()}
    for url in urls.values():
        _wait(lambda: _get(url + "/healthz"))
    cn("member", "add", "--data-dir", "paris", "--key", public(d / "jeanne.key"),
       "--name", "Jeanne", cwd=d)
    try:
        yield d, urls, federation
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(10)


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_every_founding_chapter_gets_the_same_federation_id(founded) -> None:
    d, urls, federation = founded
    for url in urls.values():
        assert _get(url + "/api/v1/status")["federation"] == federation
    shown = cn("charter", "show", "--file", "charter.json", cwd=d).stdout  # piped: plain columns
    assert f"federation id: {federation}" in shown
    assert f"Amélie\tparis\t{public(d / 'amelie.key')}" in shown  # whole keys, tab-separated
    assert "grace_seconds\t60" in shown and "quorum\t0.5" in shown  # defaults written out


def test_a_decision_read_and_acted_on_by_the_start_of_its_id(founded) -> None:
    d, urls, _ = founded
    made = cn("propose", "--node", urls["paris"], "--key", "amelie.key", "--kind", "consent",
              "--title", "Adopt the 2027 budget", "--text", "See the sheet.",
              "--closes-in", "2h", cwd=d)
    pid = made.stdout.split()[1]
    short = pid[:10]
    _wait(lambda: _get(urls["rome"] + f"/api/v1/proposals/{pid}"))
    cn("veto", "--node", urls["rome"], "--key", "marco.key", "--proposal", short,
       "--reason", "The budget leaves out the new chapters.", cwd=d)
    asked = cn("comment", "--node", urls["paris"], "--key", "jeanne.key", "--proposal", short,
               "--text", "Which chapters?", cwd=d)
    cn("comment", "--node", urls["paris"], "--key", "amelie.key", "--proposal", short,
       "--reply-to", asked.stdout.split()[1][:12], "--text", "Lisbon and Porto.", cwd=d)
    _wait(lambda: len((_get(urls["paris"] + f"/api/v1/proposals/{pid}/activity") or
                       {"acts": []})["acts"]) == 1)
    shown = cn("show", short, "--node", urls["paris"], cwd=d).stdout
    assert "Adopt the 2027 budget" in shown and "See the sheet." in shown
    assert "Marco (rome," in shown and "The budget leaves out the new chapters." in shown
    assert "standing vetoes" in shown
    assert f"member of paris ({public(d / 'jeanne.key')[:8]})" in shown and "Jeanne" not in shown
    question, answer = shown.index("Which chapters?"), shown.index("Lisbon and Porto.")
    assert question < answer
    assert "provisional" in shown and "final:" not in shown  # open: never reads as decided
    listed = cn("proposals", "--node", urls["paris"], cwd=d).stdout
    listed_id = next(line.split("\t")[0] for line in listed.splitlines() if "2027 budget" in line)
    assert cn("show", listed_id, "--data-dir", "paris", cwd=d).stdout.count("2027 budget") == 1


def test_a_vote_signed_offline_goes_to_the_node_it_was_signed_for(founded) -> None:
    d, urls, _ = founded
    made = cn("propose", "--node", urls["paris"], "--key", "amelie.key", "--kind", "vote",
              "--title", "Pick Lisbon", "--closes-in", "2h", cwd=d)
    pid = made.stdout.split()[1]
    _wait(lambda: _get(urls["rome"] + f"/api/v1/proposals/{pid}"))
    signed = cn("sign", "vote", "--key", "marco.key", "--node", urls["rome"], "--proposal",
                pid[:8], "--choice", "no", cwd=d)
    assert "signed for the rome node" in signed.stderr
    (d / "vote.json").write_text(signed.stdout)
    wrong = cn("submit", "vote.json", "--node", urls["paris"], cwd=d, ok=False)
    assert wrong.returncode == 2 and "signed for the rome node" in wrong.stderr
    right = cn("submit", "vote.json", "--node", urls["rome"], cwd=d)
    assert "accepted by rome" in right.stdout
    again = cn("submit", "vote.json", "--node", urls["rome"], cwd=d)
    assert "already held" in again.stdout


def test_exit_codes_say_who_got_it_wrong(founded) -> None:
    d, urls, _ = founded
    misuse = cn("propose", "--node", urls["paris"], "--key", "amelie.key", "--kind", "vote",
                "--title", "x", "--closes-in", "5 weeks", cwd=d, ok=False)
    assert misuse.returncode == 2 and "not like 90s" in misuse.stderr
    bad_id = cn("show", "zz", "--node", urls["paris"], cwd=d, ok=False)
    assert bad_id.returncode == 2 and "is not an event id" in bad_id.stderr
    refused = cn("veto", "--node", urls["paris"], "--key", "jeanne.key", "--proposal", "0" * 64,
                 "--reason", "no", cwd=d, ok=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error:")
    exists = cn("charter", "new", "--file", "charter.json", "--name", "x", cwd=d, ok=False)
    assert exists.returncode == 2 and "refusing to replace" in exists.stderr


def _keys_starting_with_a_dash(wanted: int) -> list[str]:
    """One public key in 64 starts with "-" in base64url: a positional argument took it for an
    option ("No such option '-0'"), so an admin could not add that Connector."""
    keys = (b64url(bytes(SigningKey(seed.to_bytes(32, "big")).verify_key)) for seed in count())
    return list(islice((key for key in keys if key.startswith("-")), wanted))


def test_a_key_that_starts_with_a_dash_is_taken_as_a_key(tmp_path: Path) -> None:
    node, amelie = _keys_starting_with_a_dash(2)
    cn("charter", "new", "--file", "charter.json", "--name", "OuiShare Test", cwd=tmp_path)
    cn("charter", "add-chapter", "paris", "--key", node, "--url", "https://paris.example.org",
       "--file", "charter.json", cwd=tmp_path)
    cn("charter", "add-connector", "--key", amelie, "--name", "Amélie", "--chapter", "paris",
       "--file", "charter.json", cwd=tmp_path)
    charter = json.loads((tmp_path / "charter.json").read_text())
    assert [c["key"] for c in charter["connectors"]] == [amelie]
    assert "federation id" in cn("charter", "check", "--file", "charter.json", cwd=tmp_path).stdout


def test_an_id_is_named_by_any_unique_start() -> None:
    ids = ["ab12cd34" + "0" * 56, "ab12cd35" + "1" * 56, "ab12ff00" + "2" * 56]

    def lookup(prefix: str) -> list[str]:
        return [i for i in ids if i.startswith(prefix)]

    assert resolve_id("AB12CD34", lookup) == ids[0]
    assert resolve_id(ids[2], None) == ids[2]
    with pytest.raises(Misuse) as short:
        resolve_id("ab12cd3", lookup)  # 7 characters: too short
    assert short.value.code == "bad_id"
    with pytest.raises(Misuse) as ambiguous:
        resolve_id("ab12cd3f", lambda prefix: ids[:2])  # what a node answers for a shared start
    assert ambiguous.value.code == "ambiguous_id" and "give more characters" in ambiguous.value.message
    with pytest.raises(NotFound):
        resolve_id("ffffffff", lookup)
    with pytest.raises(Misuse):
        resolve_id("ab12cd34", None)  # offline: the whole id


def test_what_cannot_be_signed_is_said_by_its_option_not_a_schema_path(founded) -> None:
    d, _, _ = founded
    args = ["sign", "veto", "--key", "marco.key", "--charter", "charter.json", "--chapter", "rome",
            "--proposal", "a" * 64]
    empty = cn(*args, "--reason", "   ", cwd=d, ok=False)
    assert empty.returncode == 2 and "--reason must say something" in empty.stderr
    long = cn(*args, "--reason", "x" * 70_000, cwd=d, ok=False)
    assert long.returncode == 2 and "--reason is too long" in long.stderr
    assert "$." not in empty.stderr + long.stderr and len(long.stderr) < 300
