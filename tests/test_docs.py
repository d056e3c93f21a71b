"""Docs that must match the code."""

from __future__ import annotations

from tests.fixtures.paths import ROOT


def test_readme_config_table_is_the_settings_table() -> None:
    from rag.settings import settings_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "README's config table is stale: paste rag.settings.settings_table() output"
