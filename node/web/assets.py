"""The web app's static files, held in memory with their hashes: content-addressed URLs that
cache for ever, ETags for the rest, and the Subresource Integrity value of every file.

Vendored files must match `vendor.json` (written by tools/vendor_web.py): a node refuses to
start with a browser library that is not the pinned one.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["STATIC_DIR", "Asset", "assets", "MODULES", "VendorMismatch"]

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_MANIFEST = Path(__file__).parent / "vendor.json"

# The ES modules each kind of page loads: preloaded with their integrity, so every module the
# page runs was checked (`<link rel="modulepreload" integrity>`), dynamic imports included.
_CORE = ["js/app.js", "js/time.js", "js/api.js", "js/messages.js", "js/keystore.js",
         "js/event.js", "vendor/noble-ed25519@3.2.0/index.js",
         "vendor/canonicalize@5.1.0/canonicalize.js"]
_SIGN = ["js/act.js", "js/live.js"]
_KEYFILE = ["js/keyfile.js", "js/keypage.js", "vendor/noble-hashes@2.4.0/argon2.js",
            "vendor/noble-hashes@2.4.0/blake2.js", "vendor/noble-hashes@2.4.0/_blake.js",
            "vendor/noble-hashes@2.4.0/_md.js", "vendor/noble-hashes@2.4.0/_u64.js",
            "vendor/noble-hashes@2.4.0/utils.js", "vendor/noble-ciphers@2.4.0/salsa.js",
            "vendor/noble-ciphers@2.4.0/_arx.js", "vendor/noble-ciphers@2.4.0/_poly1305.js",
            "vendor/noble-ciphers@2.4.0/utils.js"]
_CHECK = ["js/check/page.js", "js/check/evidence.js", "js/check/rules.js",
          "js/check/verdict.js", "vendor/noble-hashes@2.4.0/sha2.js",
          "vendor/noble-hashes@2.4.0/_md.js", "vendor/noble-hashes@2.4.0/_u64.js",
          "vendor/noble-hashes@2.4.0/utils.js"]
MODULES: dict[str, list[str]] = {
    "plain": _CORE,
    "sign": _CORE + _SIGN,
    "proposal": _CORE + _SIGN + _CHECK,
    "check": _CORE + _CHECK,
    "key": _CORE + _SIGN + _KEYFILE,
}


class VendorMismatch(RuntimeError):
    """A vendored file differs from the SHA-256 pinned in vendor.json."""


@dataclass(frozen=True, slots=True)
class Asset:
    path: str
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    integrity: str  # sha384, as Subresource Integrity writes it

    @property
    def url(self) -> str:
        """A URL that changes with the bytes: cached for ever."""
        return f"/static/{self.path}?v={self.etag[1:13]}"


def _content_type(path: str) -> str:
    if path.endswith(".js"):
        return "text/javascript; charset=utf-8"
    if path.endswith(".css"):
        return "text/css; charset=utf-8"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


@lru_cache(maxsize=1)
def assets() -> dict[str, Asset]:
    pinned = json.loads(VENDOR_MANIFEST.read_text())
    out = {}
    for file in sorted(STATIC_DIR.rglob("*")):
        if not file.is_file():
            continue
        rel = file.relative_to(STATIC_DIR).as_posix()
        body = file.read_bytes()
        if rel.startswith("vendor/"):
            want = pinned.get(f"node/web/static/{rel}", {}).get("sha256")
            if want != hashlib.sha256(body).hexdigest():
                raise VendorMismatch(f"static/{rel} is not the pinned file (vendor.json); "
                                     "run python tools/vendor_web.py")
        kind = _content_type(rel)
        packed = gzip.compress(body, 9, mtime=0) if kind.startswith("text/") else None
        out[rel] = Asset(rel, body, packed if packed and len(packed) < len(body) else None, kind,
                         '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                         "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode())
    return out
