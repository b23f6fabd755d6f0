"""Schemathesis hooks (campaign 4): sign every request to a peer route as a registered peer.

Loaded by `schemathesis run` through `SCHEMATHESIS_HOOKS=hardening.st_hooks`; the signing
node's seed comes from `HARDENING_PEER_SEED` (hex). The signature covers the request exactly
as it goes on the wire (method, final URL, body bytes), so a generated case is refused only
for what it contains, never for a signature the generator could not make.
"""

from __future__ import annotations

import os
import time

import requests
import schemathesis

from node.federation.httpsig import sign_request


class PeerSignature(requests.auth.AuthBase):
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if "/federation/" not in (r.url or ""):
            return r
        seed = bytes.fromhex(os.environ["HARDENING_PEER_SEED"])
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        for name, value in sign_request(r.method or "GET", r.url or "", body, seed,
                                        now=time.time()).items():
            r.headers[name] = value
        return r


schemathesis.auth.set_from_requests(PeerSignature())


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """A peer batch is a string of JSON Lines in the schema: send it as its UTF-8 bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    import json

    return json.dumps(value).encode()


@schemathesis.deserializer("application/x-ndjson")
def read_ndjson(ctx: object, response: schemathesis.Response) -> object:
    return response.content.decode("utf-8", "replace")
