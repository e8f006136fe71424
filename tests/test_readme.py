"""The docs' settings and options tables are the ones generated from their declarations; the README stays short."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.settings import settings_table_markdown
from core.options import options_table_markdown

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
#: Where the generated tables live, with the text that explains them.
CONFIGURATION = ROOT / "docs" / "configuration.md"
#: A newcomer's page: what it is, the two commands, the ways in, the figures, the map, the links.
README_MAX_LINES = 250


@pytest.mark.parametrize(
    ("marker", "table"),
    [("settings-table", settings_table_markdown), ("options-table", options_table_markdown)],
    ids=["settings", "options"],
)
def test_table_is_current(marker: str, table: object) -> None:
    text = CONFIGURATION.read_text()
    start = text.index(f"<!-- {marker} -->\n") + len(f"<!-- {marker} -->\n")
    end = text.index(f"<!-- /{marker} -->")
    assert callable(table)
    assert text[start:end].strip() == table(), f"regenerate with {table.__module__}.{table.__name__}()"


def test_the_readme_is_short_and_keeps_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "./setup.sh && .venv/bin/python app.py" in text
    assert "./setup.sh --dev && .venv/bin/python -m pytest" in text
