"""One exception root with stable machine codes.

Every failure chapter-node reports is a `ChapterNodeError` carrying a stable `code`
(snake_case, part of the protocol: clients and peers may switch on it) and a human message.
The tree splits on *who* got it wrong:

- `RemoteError`: a remote party (a client, a peer, an exported file) sent something bad.
  The node refuses it, stores nothing, and keeps serving.
- `LocalError`: the local operator misused the software (bad flags, unreadable key file,
  missing data dir).

The HTTP layer maps classes to status codes in one table (`node.federation.http_errors`), the
CLI maps every error to one line and a non-zero exit (`node.cli`). No HTTP status lives here.
"""

from __future__ import annotations

__all__ = [
    "ChapterNodeError",
    "RemoteError",
    "LocalError",
    "InvalidEvent",
    "NotAdmissible",
    "DeadlinePassed",
    "Unauthenticated",
    "NotFound",
    "BadRequest",
    "PayloadTooLarge",
    "Conflict",
    "Unavailable",
    "ConfigError",
    "Misuse",
    "KeyFileError",
    "StoreError",
]


class ChapterNodeError(Exception):
    """Root of every error chapter-node raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RemoteError(ChapterNodeError):
    """A remote party sent something we refuse."""

    code = "bad_input"


class Unavailable(ChapterNodeError):
    """The node is well but has no room for this now (e.g. every live stream slot is taken):
    nobody did anything wrong, and trying later may work."""

    code = "unavailable"


class LocalError(ChapterNodeError):
    """The local operator asked for something that cannot be done."""

    code = "local_error"


# --- remote -----------------------------------------------------------------------------


class InvalidEvent(RemoteError):
    """The bytes are not a valid, verified event (state-independent checks, PROTOCOL §2)."""

    code = "invalid_event"


class NotAdmissible(RemoteError):
    """A valid event that the governance rules refuse (role, proposal kind, ...; §4-§5)."""

    code = "not_admissible"


class DeadlinePassed(RemoteError):
    """A valid, admissible act that arrived outside its acceptance window (§6)."""

    code = "deadline_passed"


class Unauthenticated(RemoteError):
    """A peer request whose HTTP message signature is missing or does not verify."""

    code = "unauthenticated"


class NotFound(RemoteError):
    code = "not_found"


class BadRequest(RemoteError):
    """A malformed request that is not itself an event (query string, batch framing)."""

    code = "bad_request"


class PayloadTooLarge(RemoteError):
    code = "payload_too_large"


class Conflict(RemoteError):
    code = "conflict"


# --- local ------------------------------------------------------------------------------


class ConfigError(LocalError):
    code = "config_error"


class Misuse(LocalError):
    """A command was given options it cannot use (the CLI exits 2, as for any local misuse)."""

    code = "bad_option"


class KeyFileError(LocalError):
    code = "key_file_error"


class StoreError(LocalError):
    code = "store_error"
