"""Peer request signatures (node.federation.httpsig): RFC 9421 vector, round trips, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from http_message_signatures import HTTPMessageSigner
from http_message_signatures.algorithms import ED25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.federation.httpsig import (
    COVERED_COMPONENTS,
    ERROR_CODES,
    MAX_AGE_SECONDS,
    MAX_FUTURE_SKEW_SECONDS,
    NonceCache,
    PeerAuthError,
    canonical_target_uri,
    keyid_from_public_key,
    keyid_from_seed,
    new_nonce,
    sign_message,
    sign_request,
    target_uri,
    verify_message_signature,
    verify_request,
)
from node.protocol.errors import Unauthenticated

VECTORS = Path(__file__).parent / "vectors" / "rfc9421"

SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))


def _public(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


KEYID_A = keyid_from_seed(SEED_A)
KEYID_B = keyid_from_seed(SEED_B)
REGISTRY = {KEYID_A: _public(SEED_A), KEYID_B: _public(SEED_B)}
NOW = 1_750_000_000.25
URL = "https://node-b.example/federation/events?since=3&kind=vote"
BODY = b'{"events": []}'


def _sign(method: str = "POST", url: str = URL, body: bytes = BODY, seed: bytes = SEED_A,
          now: float = NOW, nonce: str | None = None) -> dict[str, str]:
    return sign_request(method, url, body, seed, now=now, nonce=nonce)


def _verify(headers: Mapping[str, str], *, method: str = "POST", url: str = URL,
            body: bytes = BODY, now: float = NOW, nonces: NonceCache | None = None,
            registry: Mapping[str, bytes] = REGISTRY) -> str:
    return verify_request(method, url, headers, body, resolve_key=registry.get,
                          nonces=NonceCache() if nonces is None else nonces, now=now)


def _code(headers: Mapping[str, str], **kwargs: object) -> str:
    with pytest.raises(PeerAuthError) as info:
        _verify(headers, **kwargs)  # type: ignore[arg-type]
    assert info.value.code in ERROR_CODES
    return info.value.code


def _raw_sign(*, components: tuple[str, ...] = COVERED_COMPONENTS, nonce: str | None = "n-1",
              include_alg: bool = True, keyid: str = KEYID_A, seed: bytes = SEED_A,
              created: int = int(NOW), expires: int | None = None, body: bytes | None = BODY,
              label: str = "sig1") -> dict[str, str]:
    return sign_message("POST", URL, {}, seed, keyid=keyid, created=created,
                        components=components, nonce=nonce, include_alg=include_alg,
                        expires=expires, label=label, body=body)


# --- (1) RFC 9421 Appendix B.2.6 ------------------------------------------------------------


def _rfc_request() -> tuple[str, str, dict[str, str], bytes]:
    head, body = (VECTORS / "test-request.http").read_bytes().split(b"\n\n", 1)
    request_line, *field_lines = head.decode("ascii").split("\n")
    method, target, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in field_lines)
    return method, f"https://{headers['Host']}{target}", headers, body


def _rfc_expected() -> dict[str, str]:
    lines = (VECTORS / "b26-signature-headers.txt").read_text("ascii").splitlines()
    return dict(line.split(": ", 1) for line in lines)


def _rfc_seed() -> bytes:
    key = load_pem_private_key((VECTORS / "test-key-ed25519-private-pem.txt").read_bytes(), None)
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _rfc_public() -> bytes:
    key = load_pem_public_key((VECTORS / "test-key-ed25519-public-pem.txt").read_bytes())
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


B26_COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")


def test_rfc9421_vector_files_agree() -> None:
    method, url, headers, body = _rfc_request()
    assert (method, url) == ("POST", "https://example.com/foo?param=Value&Pet=dog")
    assert len(body) == int(headers["Content-Length"]) == 18
    digest = base64.b64encode(hashlib.sha512(body).digest()).decode()
    assert headers["Content-Digest"] == f"sha-512=:{digest}:"
    jwk = json.loads((VECTORS / "test-key-ed25519.jwk.json").read_text())
    assert base64.urlsafe_b64decode(jwk["d"] + "=") == _rfc_seed()
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == _rfc_public() == _public(_rfc_seed())
    # the RFC's signature verifies over the RFC's base with plain Ed25519 (no package involved)
    signature = base64.b64decode(_rfc_expected()["Signature"].removeprefix("sig-b26=:")[:-1])
    base = (VECTORS / "b26-signature-base.txt").read_bytes()
    Ed25519PublicKey.from_public_bytes(_rfc_public()).verify(signature, base)
    assert Ed25519PrivateKey.from_private_bytes(_rfc_seed()).sign(base) == signature


def test_rfc9421_b26_signing_reproduces_the_rfc_signature() -> None:
    method, url, headers, _ = _rfc_request()
    added = sign_message(method, url, headers, _rfc_seed(), keyid="test-key-ed25519",
                         created=1618884473, components=B26_COMPONENTS, include_alg=False,
                         label="sig-b26")
    assert added == _rfc_expected()


def test_rfc9421_b26_signature_base_is_the_rfcs() -> None:
    # The package builds the base; this pins that its output is still RFC 9421 §2.5's.
    class Request:
        def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
            self.method, self.url, self.headers = method, url, headers

    method, url, headers, _ = _rfc_request()
    prepared = HTTPMessageSigner(signature_algorithm=ED25519).prepare(
        Request(method, url, headers), key_id="test-key-ed25519", label="sig-b26",
        created=datetime.fromtimestamp(1618884473, tz=UTC),
        covered_component_ids=B26_COMPONENTS, include_alg=False, use_existing_digest=True)
    assert prepared.signature_base == (VECTORS / "b26-signature-base.txt").read_bytes()


def test_rfc9421_b26_verification_accepts_the_rfc_signature() -> None:
    method, url, headers, _ = _rfc_request()
    signed = {**headers, **_rfc_expected()}
    resolve = {"test-key-ed25519": _rfc_public()}.get
    sig = verify_message_signature(method, url, signed, resolve_key=resolve)
    assert sig.label == "sig-b26"
    assert sig.keyid == "test-key-ed25519"
    assert sig.params == {"created": 1618884473, "keyid": "test-key-ed25519"}
    assert sig.covered['"@path"'] == "/foo"
    # any change to a covered field breaks it
    tampered = {**signed, "Date": "Tue, 20 Apr 2021 02:07:56 GMT"}
    with pytest.raises(PeerAuthError) as info:
        verify_message_signature(method, url, tampered, resolve_key=resolve)
    assert info.value.code == "signature_invalid"
    # and it is no peer request: its keyid is no node key, it covers no @target-uri, no nonce
    with pytest.raises(PeerAuthError) as info:
        verify_request(method, url, signed, b'{"hello": "world"}', resolve_key=resolve,
                       nonces=NonceCache(), now=1618884473)
    assert info.value.code == "unknown_key"


# --- (2) round trips ------------------------------------------------------------------------


def test_round_trip_returns_the_signers_keyid() -> None:
    headers = _sign()
    assert list(headers) == ["Content-Digest", "Signature-Input", "Signature"]
    assert _verify(headers) == KEYID_A
    assert _verify(_sign(seed=SEED_B)) == KEYID_B


def test_signature_input_shape() -> None:
    headers = _sign(nonce="abc")
    digest = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest");'
        f'created={int(NOW)};keyid="{KEYID_A}";alg="ed25519";nonce="abc"'
    )
    assert headers["Signature"].startswith("sig1=:") and headers["Signature"].endswith(":")


def test_keyid_is_the_public_key_in_base64url() -> None:
    assert len(KEYID_A) == 43 and "=" not in KEYID_A
    assert base64.urlsafe_b64decode(KEYID_A + "=") == _public(SEED_A)
    assert keyid_from_public_key(_public(SEED_A)) == KEYID_A


def test_nonces_are_fresh_base64url() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 22 and "=" not in n for n in nonces)
    first, second = _sign(), _sign()
    assert first["Signature-Input"] != second["Signature-Input"]


def test_empty_body_still_has_a_digest() -> None:
    headers = _sign("GET", body=b"")
    assert headers["Content-Digest"] == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    assert _verify(headers, method="GET", body=b"") == KEYID_A
    assert _code(headers, method="GET", body=b"x") == "digest_mismatch"


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_are_case_insensitive(case: Callable[[str], str]) -> None:
    headers = {case(name): value for name, value in _sign().items()}
    assert _verify({"Accept": "*/*", **headers}) == KEYID_A


def test_repeated_field_lines_as_a_multidict() -> None:
    multidict = pytest.importorskip("multidict")
    headers = multidict.CIMultiDict(_sign())
    headers.add("Via", "1.1 proxy")
    headers.add("Via", "1.1 other")
    assert _verify(multidict.CIMultiDictProxy(headers)) == KEYID_A
    headers.add("Signature", "sig1=:AAAA:")  # a second field line for the same label
    assert _code(multidict.CIMultiDictProxy(headers)) == "signature_invalid"


def test_behind_a_tls_reverse_proxy() -> None:
    # The client signs the public URL; the node sees http://127.0.0.1:8080/federation/events...
    headers = _sign(url="https://node-b.example/federation/events?since=3&kind=vote")
    raw_path = "/federation/events?since=3&kind=vote"
    assert _verify(headers, url=target_uri("https://node-b.example/", raw_path)) == KEYID_A
    assert _code(headers, url="http://127.0.0.1:8080" + raw_path) == "signature_invalid"
    # with a path prefix stripped by the proxy
    signed = _sign(url="https://example.org/chapter-b/federation/x")
    assert _verify(signed, url=target_uri("https://example.org/chapter-b", "/federation/x"))


@pytest.mark.parametrize(("given", "canonical"), [
    ("https://Node.Example:443/a?b=C", "https://node.example/a?b=C"),
    ("HTTPS://node.example", "https://node.example/"),
    ("https://node.example?x=1", "https://node.example/?x=1"),
    ("http://node.example:80/a#frag", "http://node.example/a"),
    ("http://node.example:8080/a", "http://node.example:8080/a"),
    ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
    ("https://node.example/A/%7e/../b", "https://node.example/A/%7e/../b"),
])
def test_canonical_target_uri(given: str, canonical: str) -> None:
    assert canonical_target_uri(given) == canonical


@pytest.mark.parametrize("bad", ["/relative", "https://", "https://u@host/", "mailto:x",
                                 "https://host:port/", "https://[::1/"])
def test_canonical_target_uri_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        canonical_target_uri(bad)


def test_equivalent_uri_spellings_verify() -> None:
    headers = _sign(url="https://NODE-B.example:443/federation/events?since=3&kind=vote")
    assert _verify(headers) == KEYID_A


# --- (3) refusals ---------------------------------------------------------------------------


def test_refusal_is_unauthenticated() -> None:
    assert issubclass(PeerAuthError, Unauthenticated)
    with pytest.raises(Unauthenticated) as info:
        _verify({})
    assert info.value.to_json()["error"]["code"] == "signature_missing"


def test_unsigned() -> None:
    assert _code({}) == "signature_missing"
    headers = _sign()
    assert _code({"Content-Digest": headers["Content-Digest"]}) == "signature_missing"
    assert _code({k: v for k, v in headers.items() if k != "Signature"}) == "signature_missing"
    assert _code({k: v for k, v in headers.items() if k != "Signature-Input"}) \
        == "signature_missing"


def test_unknown_key() -> None:
    assert _code(_sign(), registry={KEYID_B: REGISTRY[KEYID_B]}) == "unknown_key"


def test_malformed_keyid_is_unknown_without_asking_the_registry() -> None:
    asked: list[str] = []

    def resolve(keyid: str) -> bytes | None:
        asked.append(keyid)
        return REGISTRY.get(keyid)

    headers = _raw_sign(keyid="chapter-a")
    with pytest.raises(PeerAuthError) as info:
        verify_request("POST", URL, headers, BODY, resolve_key=resolve, nonces=NonceCache(),
                       now=NOW)
    assert info.value.code == "unknown_key" and asked == []


def test_stale() -> None:
    headers = _sign()
    assert _verify(headers, now=NOW + MAX_AGE_SECONDS - 1) == KEYID_A
    assert _code(headers, now=int(NOW) + MAX_AGE_SECONDS + 1) == "stale_request"
    assert _code(headers, now=NOW + 3600) == "stale_request"


def test_future_dated() -> None:
    assert _verify(_sign(now=NOW + MAX_FUTURE_SKEW_SECONDS)) == KEYID_A
    assert _code(_sign(now=NOW + MAX_FUTURE_SKEW_SECONDS + 1)) == "future_request"


def test_expired() -> None:
    assert _verify(_raw_sign(expires=int(NOW) + 10)) == KEYID_A
    assert _code(_raw_sign(expires=int(NOW) - 1)) == "stale_request"


def test_replayed_nonce() -> None:
    nonces = NonceCache()
    headers = _sign(nonce="once")
    assert _verify(headers, nonces=nonces) == KEYID_A
    assert _code(headers, nonces=nonces) == "replayed_nonce"
    # a nonce is per key; a fresh nonce from the same key is fine
    assert _verify(_sign(seed=SEED_B, nonce="once"), nonces=nonces) == KEYID_B
    assert _verify(_sign(nonce="twice"), nonces=nonces) == KEYID_A
    # a replay re-signed with a new `created` is still a replay
    assert _code(_sign(nonce="once", now=NOW + 5), nonces=nonces, now=NOW + 5) \
        == "replayed_nonce"


def test_refused_requests_do_not_burn_their_nonce() -> None:
    nonces = NonceCache()
    headers = _sign(nonce="kept")
    assert _code(headers, body=b"other", nonces=nonces) == "digest_mismatch"
    assert len(nonces) == 0
    assert _verify(headers, nonces=nonces) == KEYID_A


def test_component_not_covered() -> None:
    no_digest = _raw_sign(components=("@method", "@target-uri"), body=None)
    assert _code(no_digest) == "component_missing"
    no_uri = _raw_sign(components=("@method", "content-digest"))
    assert _code(no_uri) == "component_missing"
    # a digest member instead of the whole field is not the required component
    member = _raw_sign(components=("@method", "@target-uri", '"content-digest";key="sha-256"'))
    assert _code(member) == "component_missing"


def test_nonce_missing() -> None:
    assert _code(_raw_sign(nonce=None)) == "nonce_missing"


def test_alg_must_be_declared() -> None:
    assert _code(_raw_sign(include_alg=False)) == "signature_invalid"


def test_body_not_matching_content_digest() -> None:
    assert _code(_sign(), body=BODY + b" ") == "digest_mismatch"
    assert _code(_sign(), body=b"") == "digest_mismatch"


def test_content_digest_replaced_for_the_new_body() -> None:
    headers = _sign()
    forged = base64.b64encode(hashlib.sha256(b"evil").digest()).decode()
    headers["Content-Digest"] = f"sha-256=:{forged}:"
    assert _code(headers, body=b"evil") == "signature_invalid"


@pytest.mark.parametrize(("method", "url"), [
    ("PUT", URL),
    ("post", URL),
    ("POST", "https://node-b.example/federation/events?since=4&kind=vote"),
    ("POST", "https://node-b.example/federation/events?kind=vote&since=3"),
    ("POST", "https://node-b.example/federation/other?since=3&kind=vote"),
    ("POST", "https://node-c.example/federation/events?since=3&kind=vote"),
    ("POST", "http://node-b.example/federation/events?since=3&kind=vote"),
    ("POST", "https://node-b.example:8443/federation/events?since=3&kind=vote"),
    ("POST", "not a uri"),
])
def test_tampered_method_or_target_uri(method: str, url: str) -> None:
    assert _code(_sign(), method=method, url=url) == "signature_invalid"


def test_wrong_key() -> None:
    # signed by B but claiming to be A
    assert _code(_raw_sign(seed=SEED_B, keyid=KEYID_A)) == "signature_invalid"
    # the registry holds another key for A
    assert _code(_sign(), registry={KEYID_A: REGISTRY[KEYID_B]}) == "signature_invalid"


def test_tampered_signature_and_params() -> None:
    headers = _sign()
    sig = headers["Signature"]
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    assert _code({**headers, "Signature": flipped}) == "signature_invalid"
    later = headers["Signature-Input"].replace(f"created={int(NOW)}", f"created={int(NOW) + 1}")
    assert _code({**headers, "Signature-Input": later}) == "signature_invalid"
    other_nonce = _sign(nonce="a")
    forged = other_nonce["Signature-Input"].replace('nonce="a"', 'nonce="b"')
    assert _code({**other_nonce, "Signature-Input": forged}) == "signature_invalid"
    relabelled = {k: v.replace("sig1=", "sig2=", 1) if k.startswith("Signature-") else v
                  for k, v in headers.items()}
    assert _code(relabelled) == "signature_invalid"  # labels differ between the two fields


def test_two_signatures_are_refused() -> None:
    first = _raw_sign(label="sig1")
    second = _raw_sign(label="sig2", nonce="n-2")
    both = {
        "Content-Digest": first["Content-Digest"],
        "Signature-Input": f'{first["Signature-Input"]}, {second["Signature-Input"]}',
        "Signature": f'{first["Signature"]}, {second["Signature"]}',
    }
    assert _code(both) == "signature_invalid"


def test_other_algorithm_is_refused() -> None:
    headers = _sign()
    rsa = headers["Signature-Input"].replace('alg="ed25519"', 'alg="rsa-pss-sha512"')
    assert _code({**headers, "Signature-Input": rsa}) == "signature_invalid"


def test_resolver_failures_propagate() -> None:
    def broken(keyid: str) -> bytes | None:
        raise RuntimeError("registry down")

    with pytest.raises(RuntimeError, match="registry down"):
        verify_request("POST", URL, _sign(), BODY, resolve_key=broken, nonces=NonceCache(),
                       now=NOW)
    with pytest.raises(ValueError, match="32 raw bytes"):
        verify_request("POST", URL, _sign(), BODY, resolve_key=lambda k: b"short",
                       nonces=NonceCache(), now=NOW)


def test_signing_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        sign_request("POST", URL, BODY, b"short", now=NOW)
    with pytest.raises(ValueError):
        sign_request("post", URL, BODY, SEED_A, now=NOW)
    with pytest.raises(ValueError):
        sign_request("POST", "https://node.example/a b", BODY, SEED_A, now=NOW)
    with pytest.raises(ValueError):
        sign_request("POST", "/relative", BODY, SEED_A, now=NOW)


# --- nonce cache ----------------------------------------------------------------------------


def test_nonce_cache_forgets_after_the_window() -> None:
    cache = NonceCache()
    cache.check_and_remember("k", "n", created=1000, now=1000.0)
    assert ("k", "n") in cache
    with pytest.raises(PeerAuthError) as info:
        cache.check_and_remember("k", "n", created=1000, now=1000.0 + 330)
    assert info.value.code == "replayed_nonce"
    cache.check_and_remember("k", "other", created=1331, now=1331.0)  # purges the first
    assert ("k", "n") not in cache and len(cache) == 1


def test_forgotten_nonces_are_stale_anyway() -> None:
    # Once the cache forgets a nonce, verify_request refuses its replay on `created`.
    nonces = NonceCache()
    headers = _sign(nonce="old", now=NOW + MAX_FUTURE_SKEW_SECONDS)  # as far ahead as allowed
    assert _verify(headers, nonces=nonces) == KEYID_A
    later = NOW + MAX_AGE_SECONDS + MAX_FUTURE_SKEW_SECONDS + 1
    _verify(_sign(now=later), nonces=nonces, now=later)
    assert (KEYID_A, "old") not in nonces and len(nonces) == 1
    assert _code(headers, nonces=nonces, now=later) == "stale_request"


def test_nonce_cache_is_bounded_and_fails_closed() -> None:
    cache = NonceCache(max_entries=3)
    for i in range(3):
        cache.check_and_remember("k", f"n{i}", created=100 + i, now=100.0 + i)
    cache.check_and_remember("k", "n3", created=103, now=103.0)  # evicts n0 (created 100)
    assert len(cache) == 3 and ("k", "n0") not in cache
    # the evicted nonce cannot come back: everything created at or before 100 is now refused
    with pytest.raises(PeerAuthError) as info:
        cache.check_and_remember("k", "n0", created=100, now=104.0)
    assert info.value.code == "stale_request"
    cache.check_and_remember("k", "n4", created=104, now=104.0)
    with pytest.raises(PeerAuthError) as info:
        cache.check_and_remember("k", "n3", created=103, now=104.0)
    assert info.value.code == "replayed_nonce"


def test_nonce_cache_not_before_closes_the_restart_gap() -> None:
    headers = _sign(nonce="before-restart")
    assert _verify(headers, nonces=NonceCache()) == KEYID_A
    restarted = NonceCache(not_before=NOW + 10)  # the node restarted 10 s later: empty cache
    assert _code(headers, nonces=restarted, now=NOW + 20) == "stale_request"
    assert _verify(_sign(now=NOW + 20), nonces=restarted, now=NOW + 20) == KEYID_A
    edge = NonceCache(not_before=1000.5)
    with pytest.raises(PeerAuthError):
        edge.check_and_remember("k", "a", created=1000, now=1001.0)
    edge.check_and_remember("k", "b", created=1001, now=1001.0)
    exact = NonceCache(not_before=1000)
    exact.check_and_remember("k", "c", created=1000, now=1000.0)


def test_nonce_cache_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        NonceCache(max_entries=0)
    with pytest.raises(ValueError):
        NonceCache(retention=0)


# --- (4) hostile input ----------------------------------------------------------------------

_NAMES = st.sampled_from(["Signature", "Signature-Input", "Content-Digest", "signature",
                          "SIGNATURE-INPUT", "content-digest", "Host", "X-Other"])
_VALUES = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    st.sampled_from([
        "sig1=:AAAA:", "sig1=()", 'sig1=("@method");created=1', "sig1=:" + "A" * 86 + "==:",
        'sig1=("@method" "@target-uri" "content-digest");created=1750000000'
        f';keyid="{KEYID_A}";alg="ed25519";nonce="x"',
        'sig1=("content-digest" "x-missing");keyid="k"', "sha-256=:AAAA:", "sha-256=:",
        'sig1=("@query-param";name="a");keyid="' + KEYID_A + '"', "sig1=?1", "a=1, a=2",
    ]),
)
_HOSTILE = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@_HOSTILE
@given(headers=st.dictionaries(_NAMES, _VALUES, max_size=6), body=st.binary(max_size=64))
def test_random_headers_only_raise_peer_auth_error(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(PeerAuthError) as info:
        _verify(headers, body=body)
    assert info.value.code in ERROR_CODES


@_HOSTILE
@given(name=st.sampled_from(["Signature", "Signature-Input", "Content-Digest"]), value=_VALUES,
       method=st.one_of(st.just("POST"), st.text(max_size=10)),
       url=st.one_of(st.just(URL), st.text(max_size=60),
                     st.text(max_size=40).map(lambda s: "https://node-b.example/" + s)))
def test_mutated_signed_request_only_raises_peer_auth_error(name: str, value: str, method: str,
                                                            url: str) -> None:
    headers = {**_sign(nonce="fixed"), name: value}
    with pytest.raises(PeerAuthError) as info:
        _verify(headers, method=method, url=url)
    assert info.value.code in ERROR_CODES


_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%/=&?", max_size=40)


@settings(max_examples=100, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=_PATH,
       body=st.binary(max_size=512), skew=st.integers(-MAX_AGE_SECONDS, MAX_FUTURE_SKEW_SECONDS))
def test_round_trip_property(method: str, path: str, body: bytes, skew: int) -> None:
    url = "https://node-b.example/" + path.replace("%", "%25")
    headers = sign_request(method, url, body, SEED_A, now=NOW + skew)
    assert verify_request(method, url, headers, body, resolve_key=REGISTRY.get,
                          nonces=NonceCache(), now=int(NOW) + 0.0) == KEYID_A
