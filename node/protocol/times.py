"""Timestamps as the protocol writes them: RFC 3339 UTC with milliseconds.

PROTOCOL §2 fixes one spelling, `YYYY-MM-DDTHH:MM:SS.mmmZ`. With one spelling, string order is
time order, and a timestamp converts to an integer count of milliseconds without loss, which is
what every deadline computation uses (no floats, no time zones).
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from functools import lru_cache

__all__ = ["TIMESTAMP_RE", "parse_ms", "format_ms", "is_timestamp", "wall_clock_ms"]

TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", re.ASCII)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def wall_clock_ms() -> int:
    """The wall clock in integer milliseconds: the one place anything reads it (a node's
    clock is injectable on top of it, node.chapter.chapter_node.Clock)."""
    return int(time.time() * 1000)


def is_timestamp(text: object) -> bool:
    """True when `text` is spelled exactly as the protocol wants and names a real instant."""
    if not isinstance(text, str) or not TIMESTAMP_RE.match(text):
        return False
    try:
        parse_ms(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)  # a proposal's closes_at is read for every act on it
def parse_ms(text: str) -> int:
    """Milliseconds since the Unix epoch; ValueError for any other spelling.

    Reads the fields itself (a `strptime` costs ~5 µs, a third of an event's parse); anything
    it would not take (a day that does not exist, hour 24, …) goes to `strptime`, so the
    value and every error message stay `strptime`'s (tests/test_fast_paths.py)."""
    if not TIMESTAMP_RE.match(text):
        raise ValueError(f"not a protocol timestamp: {text!r}")
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if hour <= 23 and minute <= 59 and second <= 59:
        days = _DAYS.get(text[:10])
        if days is None:
            try:
                day = date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
            except ValueError:
                return _parse_ms_strptime(text)
            days = day.toordinal() - _EPOCH_ORDINAL
            if len(_DAYS) >= 4096:
                _DAYS.clear()
            _DAYS[text[:10]] = days
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + int(text[20:23])
    return _parse_ms_strptime(text)


# Days since the epoch of the dates already read (real dates only): the events of a batch
# fall on a few days.
_DAYS: dict[str, int] = {}


def _parse_ms_strptime(text: str) -> int:
    moment = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + int(text[20:23])


def format_ms(ms: int) -> str:
    """The protocol spelling of an instant given in milliseconds since the epoch."""
    seconds, millis = divmod(int(ms), 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
