"""Every setting is explained, and the README's table is what `yishao settings` prints."""

from __future__ import annotations

from pathlib import Path

from dispatch.settings import SETTING_HELP, Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_meaning() -> None:
    assert set(SETTING_HELP) == set(Settings.model_fields)
    assert all(text.strip() for text in SETTING_HELP.values())


def test_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = "<!-- settings:begin -->\n", "\n<!-- settings:end -->"
    assert begin in text and end in text, "README lost its settings markers"
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == settings_table(), "README's settings table is stale: paste `yishao settings`"
