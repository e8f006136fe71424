"""The README's settings and options tables are the ones generated from their declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.settings import settings_table_markdown
from core.options import options_table_markdown

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize(
    ("marker", "table"),
    [("settings-table", settings_table_markdown), ("options-table", options_table_markdown)],
    ids=["settings", "options"],
)
def test_table_is_current(marker: str, table: object) -> None:
    text = README.read_text()
    start = text.index(f"<!-- {marker} -->\n") + len(f"<!-- {marker} -->\n")
    end = text.index(f"<!-- /{marker} -->")
    assert callable(table)
    assert text[start:end].strip() == table(), f"regenerate with {table.__module__}.{table.__name__}()"
