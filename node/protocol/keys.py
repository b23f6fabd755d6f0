"""Secret key files: one Ed25519 seed per file, mode 0600, optionally sealed with a passphrase.

File format (JSON, one object):
  plain:     {"type": "chapter-node-key", "v": 1, "public": <b64url>, "seed": <b64url>}
  encrypted: {"type": "chapter-node-key", "v": 1, "public": <b64url>, "kdf": "argon2id",
              "opslimit": int, "memlimit": int, "salt": <b64url 16>, "box": <b64url>}
`box` is XSalsa20-Poly1305 (PyNaCl SecretBox, nonce included) of the 32-byte seed under a key
derived with Argon2id (libsodium `crypto_pwhash`). The public key is kept in clear so an
operator can tell which key a file holds without its passphrase.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from .errors import InvalidEvent, KeyFileError
from .events import b64url, b64url_decode

__all__ = ["generate_key", "public_key", "write_key_file", "read_key_file", "is_encrypted",
           "check_key_permissions"]

KEY_FILE_TYPE = "chapter-node-key"
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
_BOX_BYTES = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + 32


def generate_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def public_key(key: nacl.signing.SigningKey) -> str:
    """base64url (no padding) of the verify key: how the protocol names a person or a node."""
    return b64url(bytes(key.verify_key))


def write_key_file(path: str | Path, key: nacl.signing.SigningKey,
                   passphrase: str | None = None) -> None:
    """Write a new key file with mode 0600; never overwrites an existing file."""
    doc: dict[str, object] = {"type": KEY_FILE_TYPE, "v": 1, "public": public_key(key)}
    if passphrase:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
        doc.update(kdf="argon2id", opslimit=OPSLIMIT, memlimit=MEMLIMIT, salt=b64url(salt),
                   box=b64url(bytes(box.encrypt(bytes(key)))))
    else:
        doc["seed"] = b64url(bytes(key))
    data = (json.dumps(doc, indent=2) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key",
                           code="key_exists") from e
    except OSError as e:
        raise KeyFileError(f"cannot create {path}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask cannot loosen it
        f.write(data)


def check_key_permissions(path: str | Path) -> None:
    """A secret key readable by group or others is refused: it may already be leaked."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}",
                           code="key_unreadable") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}",
            code="key_permissions",
        )


def _load(path: str | Path) -> dict:
    check_key_permissions(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyFileError(f"{path} is not a chapter-node key file", code="bad_key_file") from e
    if not isinstance(doc, dict) or doc.get("type") != KEY_FILE_TYPE or doc.get("v") != 1:
        raise KeyFileError(f"{path} is not a chapter-node key file", code="bad_key_file")
    return doc


def is_encrypted(path: str | Path) -> bool:
    return "box" in _load(path)


def read_key_file(path: str | Path,
                  passphrase: Callable[[], str | None] = lambda: None) -> nacl.signing.SigningKey:
    """Load a signing key; `passphrase` is asked only when the file is encrypted."""
    doc = _load(path)
    try:
        if "box" in doc:
            secret = passphrase()
            if not secret:
                raise KeyFileError(f"{path} is encrypted: give its passphrase",
                                   code="passphrase_required")
            salt = b64url_decode(doc["salt"], nacl.pwhash.argon2id.SALTBYTES, what="salt",
                                 length_code="bad_key_file")
            box = nacl.secret.SecretBox(_derive(secret, salt, int(doc["opslimit"]),
                                                int(doc["memlimit"])))
            try:
                seed = box.decrypt(b64url_decode(doc["box"], _BOX_BYTES, what="box",
                                                 length_code="bad_key_file"))
            except nacl.exceptions.CryptoError as e:
                raise KeyFileError(f"wrong passphrase for {path}", code="bad_passphrase") from e
        else:
            seed = b64url_decode(doc["seed"], 32, what="seed", length_code="bad_key_file")
    except (KeyError, TypeError, ValueError, InvalidEvent) as e:
        raise KeyFileError(f"{path} is a damaged key file", code="bad_key_file") from e
    key = nacl.signing.SigningKey(seed)
    if public_key(key) != doc.get("public"):
        raise KeyFileError(f"{path}: the public key does not match the secret",
                           code="bad_key_file")
    return key


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt,
        opslimit=opslimit, memlimit=memlimit,
    )
