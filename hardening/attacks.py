"""Campaign 5: known attacks on peer requests, against a running node process.

Rome's node key signs (it is a registered peer, so only the attack is wrong); every request
goes to a real `chapter-node run` for Paris on 127.0.0.1. The body of every attacking POST is
an event the node would store if the request were authenticated (a proposal signed by a
Connector), so an attack that got through would leave a trace in the store, not only in a
status code. Attacks: stale, future and expired signatures; one valid request replayed
×1,000 (and its nonce reused under a fresh signature); each covered component left out; a
body that does not match `Content-Digest` (and a digest rewritten to match it); a request
signed for one path, id, query or method and sent to another; unknown, own and Connector
keys; a foreign algorithm, two signatures, no nonce, an oversized nonce, half a signature.
Every one must be refused 401 (or another 4xx), store nothing, and leave the node answering.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import nacl.signing

from node.dev.devcluster import LocalFederation
from node.federation.httpsig import (
    keyid_from_seed,
    new_nonce,
    sign_message,
    sign_request,
)
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .live import CONNECTORS, Reply, federation, request
from .report import Failure, Result

__all__ = ["Attack", "attacks", "launch", "run"]

SIGNED = ("@method", "@target-uri", "content-digest")


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    method: str
    path: str
    body: bytes
    headers: list[tuple[str, str]]
    expect_code: str | None  # the 401 code the protocol gives it (None: any 4xx)


def _sign(fed: LocalFederation, method: str, path: str, body: bytes, *, seed: bytes | None = None,
          created: float | None = None, components: tuple[str, ...] = SIGNED,
          nonce: str | None = "fresh", expires: int | None = None, alg: bool = True,
          label: str = "sig1", url_path: str | None = None) -> dict[str, str]:
    seed = seed if seed is not None else bytes(fed.nodes["rome"].key)
    url = f"http://127.0.0.1:{fed.nodes['paris'].url_port}{url_path or path}"
    covers_digest = "content-digest" in components
    headers = sign_message(method, url, {}, seed, keyid=keyid_from_seed(seed),
                           created=int(time.time() if created is None else created),
                           components=components,
                           nonce=new_nonce() if nonce == "fresh" else nonce, expires=expires,
                           include_alg=alg, label=label, body=body if covers_digest else None)
    if not covers_digest:  # the library covers the digest whenever it computes one
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers = {"Content-Digest": f"sha-256=:{digest}:", **headers}
    return headers


def proposal_body(fed: LocalFederation, title: str) -> bytes:
    """A proposal Amélie signed: stored if the request that carries it is accepted."""
    assert fed.charter is not None
    now = int(time.time() * 1000)
    return sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                      created_at=format_ms(now), body={
                          "title": title, "text": "", "kind": "action"},
                      signing_key=CONNECTORS[0].key).canonical


def attacks(fed: LocalFederation, replays: int = 1000) -> Iterator[Attack]:
    """Every attack, freshly signed when it is generated (time-sensitive ones stay valid)."""
    events = "/federation/v1/events"
    body = proposal_body(fed, "Smuggled in by an attack")
    ct = ("Content-Type", "application/x-ndjson")

    def attack(name: str, headers: dict[str, str], code: str | None, *, method: str = "POST",
               path: str = events, send_body: bytes | None = None) -> Attack:
        return Attack(name, method, path, body if send_body is None else send_body,
                      [*headers.items(), ct], code)

    # The clock is read as each attack is signed, not once: on a loaded machine the attacks
    # before it take seconds, and "31 s ahead" must still be 31 s ahead when it is sent.
    for age in (301, 400, 3600, 86_400 * 365):
        yield attack(f"stale-{age}s",
                     _sign(fed, "POST", events, body, created=time.time() - age), "stale_request")
    yield attack("stale-1970", _sign(fed, "POST", events, body, created=1.0), "stale_request")
    for ahead in (31, 60, 3600, 86_400 * 365 * 100):
        yield attack(f"future-{ahead}s",
                     _sign(fed, "POST", events, body, created=time.time() + ahead),
                     "future_request")
    yield attack("expired", _sign(fed, "POST", events, body, expires=int(time.time()) - 1),
                 "stale_request")
    for missing in SIGNED:
        comps = tuple(c for c in SIGNED if c != missing)
        yield attack(f"not-covering-{missing.strip('@')}",
                     _sign(fed, "POST", events, body, components=comps), "component_missing")
    yield attack("covering-nothing", _sign(fed, "POST", events, body, components=()),
                 "component_missing")
    empty = _sign(fed, "POST", events, b"")
    yield attack("body-not-matching-digest", empty, "digest_mismatch")
    other = _sign(fed, "POST", events, b"{}")
    yield attack("body-swapped-for-another", other, "digest_mismatch")
    rewritten = dict(_sign(fed, "POST", events, b""))
    rewritten["Content-Digest"] = _sign(fed, "POST", events, body)["Content-Digest"]
    yield attack("digest-rewritten-to-match-body", rewritten, "signature_invalid")
    unsigned_digest = {k: v for k, v in _sign(fed, "POST", events, body, components=(
        "@method", "@target-uri")).items()}
    yield attack("digest-present-not-covered", unsigned_digest, "component_missing")
    # signed for one target, sent to another (path, id, query, method, host)
    yield attack("signed-for-fetch-sent-to-events", _sign(fed, "POST", "/federation/v1/fetch", body),
                 "signature_invalid")
    seal_a, seal_b = "a" * 64, "b" * 64
    yield attack("path-id-differs-from-signed-id",
                 _sign(fed, "GET", f"/federation/v1/sealed/{seal_a}", b""), "signature_invalid",
                 method="GET", path=f"/federation/v1/sealed/{seal_b}", send_body=b"")
    yield attack("query-differs-from-signed-query",
                 _sign(fed, "GET", "/federation/v1/changes?after=0", b""), "signature_invalid",
                 method="GET", path="/federation/v1/changes?after=5", send_body=b"")
    yield attack("query-added", _sign(fed, "GET", "/federation/v1/changes", b""),
                 "signature_invalid", method="GET", path="/federation/v1/changes?after=0",
                 send_body=b"")
    yield attack("percent-encoded-path", _sign(fed, "GET", f"/federation/v1/sealed/{seal_a}", b""),
                 "signature_invalid", method="GET",
                 path=f"/federation/v1/sealed/%61{seal_a[1:]}", send_body=b"")
    yield attack("method-swapped", _sign(fed, "GET", events, body), "signature_invalid")
    host_url = _sign_url("http://evil.example:80" + events, body, bytes(fed.nodes["rome"].key))
    yield attack("signed-for-another-host", host_url, "signature_invalid")
    # keys
    stranger = bytes(nacl.signing.SigningKey.generate())
    yield attack("unknown-key", _sign(fed, "POST", events, body, seed=stranger), "unknown_key")
    yield attack("receivers-own-key", _sign(fed, "POST", events, body,
                                            seed=bytes(fed.nodes["paris"].key)), "unknown_key")
    yield attack("a-connectors-key", _sign(fed, "POST", events, body,
                                           seed=bytes(CONNECTORS[2].key)), "unknown_key")
    # parameters and fields
    yield attack("no-alg", _sign(fed, "POST", events, body, alg=False), "signature_invalid")
    sig = _sign(fed, "POST", events, body)
    hmac = dict(sig)
    hmac["Signature-Input"] = hmac["Signature-Input"].replace('alg="ed25519"', 'alg="hmac-sha256"')
    yield attack("alg-hmac", hmac, "signature_invalid")
    yield attack("no-nonce", _sign(fed, "POST", events, body, nonce=None), "nonce_missing")
    yield attack("nonce-129-chars", _sign(fed, "POST", events, body, nonce="n" * 129),
                 "signature_invalid")
    yield attack("no-signature-field", {k: v for k, v in sig.items() if k != "Signature"},
                 "signature_missing")
    yield attack("no-signature-input", {k: v for k, v in sig.items() if k != "Signature-Input"},
                 "signature_missing")
    yield attack("no-headers-at-all", {}, "signature_missing")
    a, b = _sign(fed, "POST", events, body), _sign(fed, "POST", events, body, label="sig2")
    two = {"Content-Digest": a["Content-Digest"],
           "Signature-Input": a["Signature-Input"] + ", " + b["Signature-Input"],
           "Signature": a["Signature"] + ", " + b["Signature"]}
    yield attack("two-signatures", two, "signature_invalid")
    flipped = dict(_sign(fed, "POST", events, body))
    s = flipped["Signature"]
    i = s.index(":") + 10
    flipped["Signature"] = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    yield attack("signature-bit-changed", flipped, "signature_invalid")
    garbage = {"Signature-Input": 'sig1=("@method";;;', "Signature": "sig1=:!!!:",
               "Content-Digest": "sha-256=:x:"}
    yield attack("unparseable-fields", garbage, "signature_invalid")
    # one valid request, then the very same bytes again and again
    valid = _sign(fed, "POST", events, b"")
    yield attack("original-of-replays", valid, None, send_body=b"")
    for i in range(replays):
        yield attack(f"replay-{i}", valid, "replayed_nonce", send_body=b"")
    nonce = next(v.split('nonce="')[1].split('"')[0] for k, v in valid.items()
                 if k == "Signature-Input")
    yield attack("nonce-reused-fresh-signature", _sign(fed, "POST", events, b"", nonce=nonce),
                 "replayed_nonce", send_body=b"")


def _sign_url(url: str, body: bytes, seed: bytes) -> dict[str, str]:
    return sign_request("POST", url, body, seed, now=time.time())


def launch(fed: LocalFederation, attack: Attack) -> Reply:
    return request(fed.nodes["paris"].port, attack.method, attack.path, attack.body,
                   attack.headers)


def held_events(fed: LocalFederation) -> int:
    return fed.nodes["paris"].get("/api/v1/status")["events"]


def judge_all(fed: LocalFederation, replays: int) -> tuple[int, Counter[str], list[str]]:
    """(attacks sent, codes seen, problems)."""
    problems: list[str] = []
    codes: Counter[str] = Counter()
    before = held_events(fed)
    sent = 0
    for attack in attacks(fed, replays):
        reply = launch(fed, attack)
        sent += 1
        if attack.name == "original-of-replays":
            if reply.status != 200:
                problems.append(f"the valid original was refused: {reply.status} {reply.body[:200]!r}")
            continue
        codes[f"{reply.status} {reply.code}"] += 1
        if not 400 <= reply.status < 500:
            problems.append(f"{attack.name}: HTTP {reply.status}")
        elif attack.expect_code and reply.code != attack.expect_code:
            problems.append(f"{attack.name}: {reply.code}, expected {attack.expect_code}")
    after = held_events(fed)
    if after != before:
        problems.append(f"{after - before} events stored by attacking requests")
    return sent, codes, problems


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    replays = max(50, int(1000 * scale))
    started = time.monotonic()
    with federation() as fed:
        sent, codes, problems = judge_all(fed, replays)
        alive = fed.nodes["paris"].get("/api/v1/status")["chapter"] == "paris"
    if not alive:
        problems.append("the node stopped answering")
    refused = sent - 1
    return Result(
        number=5, name="peer-request attacks",
        tried=f"{refused - replays} attack kinds (stale ×5, future ×4, expired, each covered "
              "component missing, body ≠ Content-Digest ×4, signed for another path / id / "
              "query / method / host ×7, unknown / own / Connector key, foreign alg, no alg, "
              "no or oversized nonce, half or two signatures, a flipped bit, garbage fields) "
              f"and one valid request replayed ×{replays:,} plus its nonce under a fresh "
              "signature, against a running node; every attacking body a proposal the node "
              "would store",
        count=refused,
        held=(f"{refused:,}/{refused:,} refused with 401 and the protocol's code "
              f"({', '.join(f'{n} {c}' for c, n in codes.most_common(4))}, …); 0 events "
              "stored; the node kept answering" if not problems else
              f"{refused - len(problems):,}/{refused:,} refused as expected"),
        failures=[Failure("an attack was not refused as the protocol says", len(problems),
                          problems[:3])] if problems else [],
        seconds=time.monotonic() - started,
    )
