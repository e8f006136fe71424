"""The README's settings table is the one generated from the settings table."""

from __future__ import annotations

from pathlib import Path

from core.settings import settings_table_markdown

README = Path(__file__).parent.parent / "README.md"


def test_settings_table_is_current() -> None:
    text = README.read_text()
    start = text.index("<!-- settings-table -->\n") + len("<!-- settings-table -->\n")
    end = text.index("<!-- /settings-table -->")
    assert text[start:end].strip() == settings_table_markdown(), (
        "regenerate with core.settings.settings_table_markdown()"
    )
