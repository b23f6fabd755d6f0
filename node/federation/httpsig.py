"""Peer request authentication: RFC 9421 HTTP Message Signatures made with chapter node keys.

Rule: a node accepts a peer request only when it carries exactly one RFC 9421 signature that

- verifies under `alg="ed25519"` with the Ed25519 public key named by `keyid`, where keyid is the
  signing node's public key in base64url without padding (43 characters) and the caller's
  registry knows that key;
- covers at least `@method`, `@target-uri` and `content-digest`, and the signed Content-Digest
  (RFC 9530) matches the body bytes actually received (an empty body has a digest too);
- has `created` no more than `MAX_AGE_SECONDS` (300 s) in the past and no more than
  `MAX_FUTURE_SKEW_SECONDS` (30 s) in the future of the verifier's clock, and has not expired
  if it carries `expires`;
- carries a `nonce` that the `NonceCache` has not already accepted for the same keyid.

Any other request is refused with `PeerAuthError`, whose `code` says why (see `ERROR_CODES`).

The signature base, Structured Field parsing and the Ed25519 and SHA-256 primitives come from
the `http-message-signatures` package (3.x): this module only adapts requests, keys and errors
to it and applies the policy above. Clocks are never read here: callers pass `now` (Unix
seconds), so tests control time.

`@target-uri` (RFC 9421 §2.2.2) is the absolute URI the *client* addressed, e.g.
`https://node.example/federation/events?since=3`. A node behind a TLS-terminating reverse proxy
sees `http://127.0.0.1:8080/federation/events?since=3`, so `verify_request` never derives the
URI from its own socket, from Host or from X-Forwarded-*/Forwarded (the latter are not signed
and could be forged): the caller passes the URI, normally `target_uri(config.public_base_url,
request.raw_path)`. Both sides canonicalise the URI the same way (`canonical_target_uri`):
lowercase scheme and host, no default port, empty path as "/"; path and query are kept byte for
byte as sent.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import ED25519

from node.protocol.errors import Unauthenticated

__all__ = [
    "ALGORITHM",
    "COVERED_COMPONENTS",
    "ERROR_CODES",
    "MAX_AGE_SECONDS",
    "MAX_FUTURE_SKEW_SECONDS",
    "MAX_NONCE_LENGTH",
    "NONCE_BYTES",
    "SIGNATURE_LABEL",
    "KeyResolver",
    "NonceCache",
    "PeerAuthError",
    "VerifiedSignature",
    "canonical_target_uri",
    "keyid_from_public_key",
    "keyid_from_seed",
    "new_nonce",
    "sign_message",
    "sign_request",
    "target_uri",
    "verify_message_signature",
    "verify_request",
]

#: RFC 9421 §3.3.6 algorithm name; the only one accepted.
ALGORITHM = "ed25519"
#: Dictionary key of our signature in Signature-Input / Signature (RFC 9421 §4.1, §4.2).
SIGNATURE_LABEL = "sig1"
#: Components every peer signature must cover (RFC 9421 §2.2.1, §2.2.2; RFC 9530 §2).
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@target-uri", "content-digest")
#: Oldest acceptable `created`, in seconds before the verifier's clock.
MAX_AGE_SECONDS = 300
#: Newest acceptable `created`, in seconds after the verifier's clock (tolerated clock skew).
MAX_FUTURE_SKEW_SECONDS = 30
#: Random bytes in a nonce made by `new_nonce` (22 base64url characters).
NONCE_BYTES = 16
#: Longest nonce accepted; a bound on what one cache entry can cost.
MAX_NONCE_LENGTH = 128

#: Every `PeerAuthError.code` this module raises.
ERROR_CODES = frozenset({
    "signature_missing",   # no Signature-Input or no Signature field
    "signature_invalid",   # malformed, several signatures, alg not ed25519, bad signature,
                           # no `created`, nonce over MAX_NONCE_LENGTH, unusable target URI
    "unknown_key",         # keyid is not a node key the registry knows
    "component_missing",   # a component of COVERED_COMPONENTS is not covered
    "stale_request",       # created too old, or expires passed
    "future_request",      # created too far ahead
    "nonce_missing",       # no nonce parameter
    "digest_mismatch",     # the signed Content-Digest does not match the body received
    "replayed_nonce",      # (keyid, nonce) already accepted inside the window
})

#: `resolve_key(keyid)`: the 32-byte raw Ed25519 public key of a known node, or None.
KeyResolver = Callable[[str], bytes | None]

_KEYID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_URI_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^#]*)(?:#.*)?", re.DOTALL)
_MAX_MESSAGE = 200
_HEADER_ORDER = ["Content-Digest", "Signature-Input", "Signature"]


class PeerAuthError(Unauthenticated):
    """A peer request refused by HTTP message signature checks; `code` is in `ERROR_CODES`."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message[:_MAX_MESSAGE], code=code)


# --- keys and small values ------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def keyid_from_public_key(public_key: bytes) -> str:
    """The keyid of a node: its raw 32-byte Ed25519 public key, base64url without padding."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return _b64url(public_key)


def keyid_from_seed(signing_key_seed: bytes) -> str:
    """The keyid of the node whose 32-byte Ed25519 seed (secret key) is given."""
    public = _private_key(signing_key_seed).public_key()
    return keyid_from_public_key(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def new_nonce() -> str:
    """A fresh nonce (RFC 9421 §2.3 `nonce`): 16 random bytes, base64url, no padding."""
    return _b64url(secrets.token_bytes(NONCE_BYTES))


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


# --- target URI -----------------------------------------------------------------------------


def canonical_target_uri(url: str) -> str:
    """The `@target-uri` value (RFC 9421 §2.2.2) both signer and verifier use for `url`.

    RFC 9110 §4.2.3 equivalences only: scheme and host lowercased, the scheme's default port
    dropped, an empty path written "/", a fragment removed. Path and query are kept exactly
    (no percent-decoding, no dot-segment removal), so they must be sent as signed. Raises
    ValueError for anything but an absolute URI without user info.
    """
    match = _URI_RE.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise ValueError("not an absolute URI")
    scheme, authority, rest = match.group(1).lower(), match.group(2), match.group(3)
    if "@" in authority or not authority:
        raise ValueError("the URI needs a host and no user info")
    if authority.startswith("["):  # IP literal (RFC 3986 §3.2.2)
        end = authority.find("]")
        if end < 0:
            raise ValueError("unterminated IP literal")
        host, port_part = authority[: end + 1], authority[end + 1 :]
        if port_part and not port_part.startswith(":"):
            raise ValueError("garbage after IP literal")
        port = port_part[1:]
    else:
        host, _, port = authority.partition(":")
    if not host or (port and not port.isdigit()) or not port.isascii():
        raise ValueError("bad authority")
    authority = host.lower()
    if port and int(port) != _DEFAULT_PORTS.get(scheme):
        authority += ":" + port
    if not rest.startswith("/"):
        rest = "/" + rest  # "" or "?query"
    return f"{scheme}://{authority}{rest}"


def target_uri(public_base_url: str, raw_path: str) -> str:
    """The target URI a client addressed, from this node's public base URL and the raw request
    path with its query (aiohttp: `request.raw_path`, never the decoded `request.path`).

    `public_base_url` is the operator-configured external URL, possibly with a path prefix the
    reverse proxy strips (`https://example.org/node` + `/federation/x?y=1`). The result is not
    canonicalised; `verify_request` does that.
    """
    return public_base_url.rstrip("/") + raw_path


# --- raw RFC 9421 layer (no policy) ---------------------------------------------------------


@dataclass
class _Message:
    """The request view `http_message_signatures` reads: method, absolute URL, header fields."""

    method: str
    url: str
    headers: Any  # dict when signing; the caller's Mapping when verifying


@dataclass(frozen=True)
class VerifiedSignature:
    """A cryptographically valid signature, before any policy (see `verify_message_signature`).

    `covered` maps serialized component identifiers (`'"@method"'`, `'"content-digest"'`, ...,
    and `'"@signature-params"'`) to the signed values; `params` holds the signature parameters.
    """

    label: str
    keyid: str
    params: Mapping[str, Any]
    covered: Mapping[str, str]


class _CallbackKeyResolver(HTTPSignatureKeyResolver):
    """Adapts `resolve_key(keyid) -> raw bytes | None` to the package's key resolver.

    The package wants cryptography key objects (or PEM bytes); raw 32-byte keys are converted
    here. It turns every exception a resolver raises into InvalidSignature, so the outcome is
    recorded to tell an unknown key from a bad signature, and the caller's own failures are
    re-raised unchanged.
    """

    def __init__(self, resolve_key: KeyResolver) -> None:
        self._resolve_key = resolve_key
        self.unknown_keyid: str | None = None
        self.error: BaseException | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        try:
            raw = self._resolve_key(key_id)
        except BaseException as e:
            self.error = e
            raise
        if raw is None:
            self.unknown_keyid = key_id
            return None
        if not isinstance(raw, bytes) or len(raw) != 32:
            self.error = ValueError(f"resolve_key({key_id!r}) must return 32 raw bytes or None")
            raise self.error
        return Ed25519PublicKey.from_public_bytes(raw)

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - verify only
        raise NotImplementedError


class _Verifier(HTTPMessageVerifier):
    """The package verifier without its wall-clock checks.

    `HTTPMessageVerifier.validate_created_and_expires` reads `datetime.now()`; our window
    (RFC 9421 §2.3 `created`/`expires`, §3.2.1: maximum age is application policy) is enforced
    by `verify_request` against the caller's `now` instead.
    """

    require_created = False

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def _field(headers: Mapping[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)


def sign_message(
    method: str,
    url: str,
    headers: Mapping[str, str],
    signing_key_seed: bytes,
    *,
    keyid: str,
    created: int,
    components: Sequence[str],
    nonce: str | None = None,
    expires: int | None = None,
    include_alg: bool = True,
    label: str = SIGNATURE_LABEL,
    body: bytes | None = None,
) -> dict[str, str]:
    """Sign a request as RFC 9421 §3.1 says, with no policy; return the fields to add.

    `headers` are the request's other fields (needed when `components` name fields); `url` is
    used as given for derived components. With `body`, a `Content-Digest` (RFC 9530, sha-256)
    is computed, returned and covered (an existing `Content-Digest` in `headers` is kept and
    must match `body`). Signature parameters are written in the package's order:
    created, keyid, alg (unless `include_alg` is false), expires, nonce. Raises ValueError for
    a bad seed, method (must be uppercase), URL (must be encoded ASCII) or component.
    """
    fields = dict(headers)
    message = _Message(method=method, url=url, headers=fields)
    signer = HTTPMessageSigner(
        signature_algorithm=ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={keyid: _private_key(signing_key_seed)}
        ),
    )
    try:
        signer.sign(
            message,
            key_id=keyid,
            created=datetime.fromtimestamp(created, tz=UTC),
            expires=None if expires is None else datetime.fromtimestamp(expires, tz=UTC),
            nonce=nonce,
            label=label,
            include_alg=include_alg,
            covered_component_ids=tuple(components),
            body=body,
            # the package refuses a message that already has Content-Digest unless told to
            # keep it; kept, it is checked against `body` (or only parsed without a body)
            use_existing_digest=_field(fields, "content-digest"),
        )
    except HTTPMessageSignaturesException as e:
        raise ValueError(f"cannot sign this request: {e}") from e
    by_name = {name.lower(): value for name, value in fields.items()}
    wanted = _HEADER_ORDER if body is not None else _HEADER_ORDER[1:]
    return {name: by_name[name.lower()] for name in wanted}


def verify_message_signature(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    resolve_key: KeyResolver,
) -> VerifiedSignature:
    """Check the request's single signature cryptographically (RFC 9421 §3.2), no policy.

    Does NOT check coverage, algorithm presence, time window, nonce or body digest: use
    `verify_request` for peer requests. Raises PeerAuthError with `signature_missing`,
    `unknown_key` or `signature_invalid`; exceptions raised by `resolve_key` propagate.
    """
    if not (_field(headers, "signature-input") and _field(headers, "signature")):
        raise PeerAuthError(
            "the request has no HTTP message signature (Signature-Input and Signature)",
            code="signature_missing",
        )
    resolver = _CallbackKeyResolver(resolve_key)
    verifier = _Verifier(signature_algorithm=ED25519, key_resolver=resolver)
    try:
        results = verifier.verify(_Message(method=method, url=url, headers=headers), max_age=None)
    except HTTPMessageSignaturesException as e:  # InvalidSignature is a subclass
        if resolver.error is not None:
            raise resolver.error from None
        if resolver.unknown_keyid is not None:
            raise PeerAuthError(
                f"unknown signing key {resolver.unknown_keyid!r}", code="unknown_key"
            ) from e
        raise PeerAuthError(f"HTTP message signature refused: {e}", code="signature_invalid") from e
    if len(results) != 1:  # pragma: no cover - the package refuses several without a tag
        raise PeerAuthError("exactly one signature is required", code="signature_invalid")
    result = results[0]
    return VerifiedSignature(
        label=result.label,
        keyid=str(result.parameters["keyid"]),
        params=dict(result.parameters),
        covered=dict(result.covered_components),
    )


# --- nonce cache ----------------------------------------------------------------------------


class NonceCache:
    """Remembers accepted (keyid, nonce) pairs long enough to refuse every replay.

    An entry is kept for `retention` seconds after it was accepted (default
    MAX_AGE_SECONDS + MAX_FUTURE_SKEW_SECONDS = 330 s): its `created` was at most 30 s ahead
    then, so after 330 s any replay is refused as stale anyway. Memory is bounded by
    `max_entries`; when full, the oldest entry is evicted and, so that its nonce cannot be
    replayed, every request created at or before the evicted entry's `created` is refused from
    then on (`stale_request`): under a flood the window narrows instead of opening.

    A new cache knows no nonce, so after a restart requests signed before it could be replayed
    until they are MAX_AGE_SECONDS old. Pass `not_before` (the process start time) to refuse,
    as `stale_request`, every request created before it; a peer whose clock lags by d seconds
    is then refused for the first d seconds only. Pure and thread-safe: time comes from the
    arguments.
    """

    def __init__(
        self,
        *,
        max_entries: int = 50_000,
        retention: float = MAX_AGE_SECONDS + MAX_FUTURE_SKEW_SECONDS,
        not_before: float | None = None,
    ) -> None:
        if max_entries < 1 or retention <= 0:
            raise ValueError("max_entries and retention must be positive")
        self.max_entries = max_entries
        self.retention = retention
        # (keyid, nonce) -> (expires_at, created), in acceptance order
        self._entries: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        # refuse created <= floor: set by `not_before` and raised by evictions
        self._floor: int | None = None if not_before is None else math.ceil(not_before) - 1
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item: object) -> bool:
        return item in self._entries

    def check_and_remember(self, keyid: str, nonce: str, *, created: int, now: float) -> None:
        """Accept the pair once; PeerAuthError `replayed_nonce` (or `stale_request`) after."""
        with self._lock:
            self._expire(now)
            if self._floor is not None and created <= self._floor:
                raise PeerAuthError(
                    "request created before the nonce cache can vouch for it "
                    "(node restart or cache full)",
                    code="stale_request",
                )
            key = (keyid, nonce)
            if key in self._entries:
                raise PeerAuthError("nonce already used by this key", code="replayed_nonce")
            self._entries[key] = (now + self.retention, created)
            while len(self._entries) > self.max_entries:
                _, (_, evicted_created) = self._entries.popitem(last=False)
                if self._floor is None or evicted_created > self._floor:
                    self._floor = evicted_created

    def _expire(self, now: float) -> None:
        # Entries are in acceptance order, so expiry times ascend while `now` does; a clock
        # stepping back only delays the purge (never drops a live entry).
        entries = self._entries
        while entries:
            key, (expires_at, _) = next(iter(entries.items()))
            if expires_at >= now:
                break
            del entries[key]


# --- peer requests: signing and verification with policy ------------------------------------


def sign_request(
    method: str,
    url: str,
    body: bytes,
    signing_key_seed: bytes,
    *,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers to add to a peer request: `Content-Digest`, `Signature-Input`, `Signature`.

    `url` is the absolute URL the request is sent to, path and query encoded exactly as they
    will go on the wire (with aiohttp: `yarl.URL(url, encoded=True)`). The signature covers
    COVERED_COMPONENTS with created=floor(now), keyid of the seed, alg="ed25519" and a fresh
    nonce unless one is given. `body` is the exact request body (b"" when there is none).
    """
    return sign_message(
        method,
        canonical_target_uri(url),
        {},
        signing_key_seed,
        keyid=keyid_from_seed(signing_key_seed),
        created=math.floor(now),
        components=COVERED_COMPONENTS,
        nonce=new_nonce() if nonce is None else nonce,
        body=body,
    )


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    resolve_key: KeyResolver,
    nonces: NonceCache,
    now: float,
) -> str:
    """Authenticate a peer request; return the verified keyid or raise PeerAuthError.

    `url` is the target URI the client addressed (see the module docstring and `target_uri`),
    not the URL the local socket saw. `headers` is looked up case-insensitively and may repeat
    names if its `items()` yields every field line (aiohttp's CIMultiDictProxy does). `body` is
    the exact body received. The nonce is recorded only when every other check passed.
    Exceptions raised by `resolve_key` propagate unchanged.
    """
    try:
        target = canonical_target_uri(url)
    except ValueError as e:
        raise PeerAuthError(f"unusable target URI: {e}", code="signature_invalid") from e

    def known(keyid: str) -> bytes | None:
        return resolve_key(keyid) if _KEYID_RE.fullmatch(keyid) else None

    sig = verify_message_signature(method, target, headers, resolve_key=known)

    # RFC 9421 §3.2 step 4, §3.2.1, §7.2.1: the application fixes the components to cover.
    missing = [c for c in COVERED_COMPONENTS if f'"{c}"' not in sig.covered]
    if missing:
        raise PeerAuthError(
            "signature does not cover " + ", ".join(missing), code="component_missing"
        )
    # §3.2 step 6, §3.3.6, §7.3.6: only ed25519; the package already refused another `alg`.
    if sig.params.get("alg") != ALGORITHM:
        raise PeerAuthError('signature must declare alg="ed25519"', code="signature_invalid")
    # §2.3 `created` / `expires`, §3.2.1: freshness against the caller's clock.
    created = sig.params.get("created")
    if type(created) is not int:
        raise PeerAuthError("signature has no created parameter", code="signature_invalid")
    if now - created > MAX_AGE_SECONDS:
        raise PeerAuthError(
            f"signature created {now - created:.0f} s ago (limit {MAX_AGE_SECONDS} s)",
            code="stale_request",
        )
    if created - now > MAX_FUTURE_SKEW_SECONDS:
        raise PeerAuthError(
            f"signature created {created - now:.0f} s in the future "
            f"(limit {MAX_FUTURE_SKEW_SECONDS} s)",
            code="future_request",
        )
    expires = sig.params.get("expires")
    if expires is not None and (type(expires) is not int or expires < now):
        raise PeerAuthError("signature expired", code="stale_request")
    # §2.3 `nonce`, §3.2.1, §7.2.2: replay protection.
    nonce = sig.params.get("nonce")
    if nonce is None:
        raise PeerAuthError("signature has no nonce parameter", code="nonce_missing")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise PeerAuthError("unusable nonce parameter", code="signature_invalid")
    # RFC 9530 §2 / RFC 9421 §7.2.8: the covered digest must match the body actually received.
    try:
        ContentDigest.verify(sig.covered['"content-digest"'], body)
    except HTTPMessageSignaturesException as e:  # InvalidSignature is a subclass
        raise PeerAuthError(
            f"Content-Digest does not match the body: {e}", code="digest_mismatch"
        ) from e
    nonces.check_and_remember(sig.keyid, nonce, created=created, now=now)
    return sig.keyid
