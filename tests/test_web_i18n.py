"""The organisation's five languages: every word of the pages is translated, each catalog is
current with the templates, and a translation keeps its placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from node.i18n import DEFAULT, LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def catalog(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def ids(cat) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in cat if m.id}


def test_the_template_catalog_is_current_with_the_templates(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run([str(pybabel), "--quiet", "extract", "-F", "babel.cfg", "-o", str(fresh),
                    "--no-location", "."], check=True, cwd=ROOT, capture_output=True)
    assert ids(catalog(fresh)) == ids(catalog(LOCALE_DIR / "messages.pot")), \
        "run: make translations, then translate what it marks"


@pytest.mark.parametrize("lang", sorted(set(LANGUAGES) - {DEFAULT}))
def test_every_message_is_translated_with_its_placeholders(lang: str) -> None:
    template = catalog(LOCALE_DIR / "messages.pot")
    translated = catalog(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po")
    assert ids(translated) == ids(template), f"{lang}: run make translations"
    for message in translated:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        source = message.id if isinstance(message.id, tuple) else (message.id,)
        assert all(forms) and not message.fuzzy, f"{lang}: untranslated: {source[0]!r}"
        want = sorted(PLACEHOLDER.findall(source[-1]))
        for form in forms:
            assert sorted(PLACEHOLDER.findall(form)) == want, f"{lang}: {source[0]!r} -> {form!r}"


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_times_are_written_as_babel_writes_them(lang: str) -> None:
    from datetime import datetime, timezone

    from babel.dates import format_datetime

    from node.i18n import when

    for ms in (0, 951_782_400_000, 1_796_398_717_739, 4_102_444_799_999):
        moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        assert when(ms, lang) == format_datetime(moment, "medium", tzinfo=timezone.utc,
                                                 locale=lang) + " UTC"
