"""The organisation's languages: Babel catalogs read from `locale/*/messages.po` at start (no
compile step for an admin), the viewer's choice (`?lang=`, a cookie, `Accept-Language`), and
dates, times and durations written the way each locale writes them.

A message missing from a catalog falls back to English (gettext's rule); a test fails the
build when one is missing, so the fallback is for a half-updated checkout, never for a release.
"""

from __future__ import annotations

import gettext
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_datetime, format_timedelta
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


def when(ms: int, lang: str) -> str:
    """A moment as the locale writes it, in UTC (the page's script moves it to the viewer's
    own zone and names that zone)."""
    return format_datetime(_dt(ms), "medium", tzinfo=timezone.utc, locale=lang) + " UTC"


def how_long(ms: int, lang: str) -> str:
    """A duration from now, in the locale's words: "in 3 days", "2 hours ago"."""
    return format_timedelta(timedelta(milliseconds=ms), add_direction=True, locale=lang,
                            threshold=1.0)
