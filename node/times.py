"""Timestamps as the protocol writes them: RFC 3339 UTC with milliseconds.

PROTOCOL §2 fixes one spelling, `YYYY-MM-DDTHH:MM:SS.mmmZ`. With one spelling, string order is
time order, and a timestamp converts to an integer count of milliseconds without loss, which is
what every deadline computation uses (no floats, no time zones).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = ["TIMESTAMP_RE", "parse_ms", "format_ms", "is_timestamp"]

TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", re.ASCII)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def is_timestamp(text: object) -> bool:
    """True when `text` is spelled exactly as the protocol wants and names a real instant."""
    if not isinstance(text, str) or not TIMESTAMP_RE.match(text):
        return False
    try:
        parse_ms(text)
    except ValueError:
        return False
    return True


def parse_ms(text: str) -> int:
    """Milliseconds since the Unix epoch; ValueError for any other spelling."""
    if not TIMESTAMP_RE.match(text):
        raise ValueError(f"not a protocol timestamp: {text!r}")
    moment = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + int(text[20:23])


def format_ms(ms: int) -> str:
    """The protocol spelling of an instant given in milliseconds since the epoch."""
    seconds, millis = divmod(int(ms), 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
