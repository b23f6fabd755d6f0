"""The browser signs byte for byte as the node does: RFC 8785 bytes, Ed25519 signature and id,
through noble and through WebCrypto, on the protocol's vectors and on generated events; and it
reads and writes the CLI's key files."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.protocol.events import MAX_EVENT_BYTES, canonical, parse_event, sign_event
from node.protocol.keys import read_key_file

from .conftest import PASSPHRASE, new_page

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

SIGN_IN_BROWSER = """async ({unsigned, seedHex}) => {
  const { signEvent, canonical } = await import('/static/js/event.js');
  const ed = await import('/static/vendor/noble-ed25519@3.2.0/index.js');
  const { b64url } = await import('/static/js/event.js');
  const seed = Uint8Array.from(seedHex.match(/../g), (h) => parseInt(h, 16));
  const pub = b64url(await ed.getPublicKeyAsync(seed));
  const noble = await signEvent({ ...unsigned, author: pub }, (b) => ed.signAsync(b, seed));
  const key = await crypto.subtle.importKey('jwk',
    { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: pub }, { name: 'Ed25519' }, false, ['sign']);
  const web = await signEvent({ ...unsigned, author: pub },
    async (b) => new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, b)));
  const text = (bytes) => new TextDecoder().decode(bytes);
  return { noble: text(noble.bytes), nobleId: noble.id, web: text(web.bytes), webId: web.id };
}"""


@pytest.fixture(scope="module")
def page(browser, federation):
    page = new_page(browser)
    page.goto(federation.nodes["paris"].url + "/key")
    yield page
    assert page.problems == []
    page.context.close()


def sign_both(page, federation: str, chapter: str, type_: str, created_at: str, body: dict,
              seed: bytes) -> tuple[dict, object]:
    got = page.evaluate(SIGN_IN_BROWSER, {
        "unsigned": {"federation": federation, "chapter": chapter, "type": type_,
                     "created_at": created_at, "body": body},
        "seedHex": seed.hex()})
    want = sign_event(federation=federation, type=type_, chapter=chapter, created_at=created_at,
                      body=body, signing_key=nacl.signing.SigningKey(seed))
    return got, want


def test_envelope_vectors_sign_alike(page) -> None:
    vectors = json.loads((VECTORS / "envelope.json").read_text())
    for v in vectors["events"]:
        got, want = sign_both(page, vectors["federation"], v["chapter"], v["type"],
                              v["created_at"], v["body"], bytes.fromhex(v["seed"]))
        assert got["noble"] == got["web"] == v["canonical"] == want.canonical.decode()
        assert got["nobleId"] == got["webId"] == v["id"] == want.id


def test_rfc8785_vectors_canonicalise_alike(page) -> None:
    for v in json.loads((VECTORS / "rfc8785.json").read_text())["vectors"]:
        got = page.evaluate("""async (text) => {
            const { canonical } = await import('/static/js/event.js');
            return new TextDecoder().decode(canonical(JSON.parse(text)));
        }""", v["input"])
        assert got == v["canonical"], v["name"]


texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300).filter(
    lambda s: s.strip())
shares = st.one_of(st.integers(0, 1), st.floats(0, 1, allow_nan=False, allow_infinity=False))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=texts, text=st.text(st.characters(exclude_categories=("Cs",)), max_size=500),
       quorum=shares, threshold=shares, seed=st.binary(min_size=32, max_size=32),
       millis=st.integers(0, 999))
def test_generated_events_sign_alike(page, federation, title, text, quorum, threshold, seed,
                                     millis) -> None:
    body = {"title": title, "text": text, "kind": "vote",
            "closes_at": "2027-03-01T10:00:00.000Z", "quorum": quorum, "threshold": threshold}
    got, want = sign_both(page, federation.charter.id, "paris", "proposal",
                          f"2027-02-01T10:00:00.{millis:03d}Z", body, seed)
    assert got["noble"] == got["web"] == want.canonical.decode()
    assert got["nobleId"] == want.id
    parse_event(got["noble"].encode(), federation=federation.charter.id)  # the node takes it


def test_a_64_kib_event_signs_alike(page, federation) -> None:
    # the largest comment the protocol takes, escapes and astral characters included
    body = {"proposal": "a" * 64, "text": ""}
    unit = 'é"\\\n\u2028😀x'
    while len(canonical({**body, "text": body["text"] + unit * 50})) < MAX_EVENT_BYTES - 700:
        body["text"] += unit * 50
    got, want = sign_both(page, federation.charter.id, "paris", "comment",
                          "2027-02-01T10:00:00.000Z", body, b"\x07" * 32)
    assert len(want.canonical) > 60_000
    assert got["noble"] == want.canonical.decode() and got["nobleId"] == want.id


def test_the_browser_opens_a_cli_key_file_and_writes_one_the_cli_reads(page, key_files,
                                                                     tmp_path) -> None:
    sealed = key_files["Marco"].read_text()
    got = page.evaluate("""async ({text, pass}) => {
        const kf = await import('/static/js/keyfile.js');
        const { b64url } = await import('/static/js/event.js');
        const seed = await kf.openKeyFile(kf.parseKeyFile(text), pass);
        let wrong = null;
        try { await kf.openKeyFile(kf.parseKeyFile(text), pass + 'x'); } catch (e) { wrong = e.code; }
        const resealed = await kf.sealKeyFile(seed, 'another passphrase');
        return { seed: b64url(seed), wrong, resealed: JSON.stringify(resealed) };
    }""", {"text": sealed, "pass": PASSPHRASE})
    marco = read_key_file(key_files["Marco"], lambda: PASSPHRASE)
    assert got["wrong"] == "wrong_passphrase"
    written = tmp_path / "from-browser.key"
    written.write_text(got["resealed"])
    written.chmod(0o600)
    assert bytes(read_key_file(written, lambda: "another passphrase")) == bytes(marco)
