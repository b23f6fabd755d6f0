"""The organisation's languages, for all a person reads (the web app's pages and the mail):
Babel catalogs read from `locale/*/messages.po` at start (no compile step for an admin), the
viewer's choice (`?lang=`, a cookie, `Accept-Language`), and dates, times and durations
written the way each locale writes them.

A message missing from a catalog falls back to English (gettext's rule); a test fails the
build when one is missing, so the fallback is for a half-updated checkout, never for a release.
"""

from __future__ import annotations

import gettext
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import (
    format_timedelta,
    get_date_format,
    get_datetime_format,
    get_time_format,
)
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["LANGUAGES", "DEFAULT", "LOCALE_DIR", "translations", "choose", "when", "how_long"]

LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français", "es": "Español",
                             "it": "Italiano", "pt": "Português"}
DEFAULT = "en"
LOCALE_DIR = Path(__file__).parent / "locale"


@lru_cache(maxsize=None)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of `lang`, compiled in memory from its `.po` (English: the source)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf)


def _accepted(header: str) -> list[str]:
    """`Accept-Language` languages, most wanted first (RFC 9110 §12.5.4 weights)."""
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose(query_lang: str | None, cookie_lang: str | None, accept_language: str) -> str:
    """The viewer's language: the switch they used, else their browser's, else English."""
    for lang in (query_lang, cookie_lang):
        if lang in LANGUAGES:
            return lang
    for tag in _accepted(accept_language):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


@lru_cache(maxsize=None)
def _medium(lang: str):
    """The locale's medium date and time patterns, parsed once (`format_datetime` looks them
    up on every call: a thousand comments' times were a third of a large page's render)."""
    locale = Locale.parse(lang)
    return (locale, str(get_datetime_format("medium", locale=locale)),
            get_date_format("medium", locale=locale), get_time_format("medium", locale=locale))


def when(ms: int, lang: str) -> str:
    """A moment as the locale writes it, in UTC (the page's script moves it to the viewer's
    own zone and names that zone): what `format_datetime(.., "medium")` writes."""
    locale, both, date, time = _medium(lang)
    moment = _dt(ms)
    return both.replace("{1}", date.apply(moment, locale)).replace(
        "{0}", time.apply(moment, locale)) + " UTC"


def how_long(ms: int, lang: str) -> str:
    """A duration from now, in the locale's words: "in 3 days", "2 hours ago"."""
    return format_timedelta(timedelta(milliseconds=ms), add_direction=True, locale=lang,
                            threshold=1.0)
