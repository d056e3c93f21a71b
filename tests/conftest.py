"""Test session setup: a clean, offline environment, and the fixtures of ``tests/fixtures/`` as plugins.

Helpers live in ``tests/fixtures/`` (see its ``__init__``); test modules import them from there, never from
each other or from this file.
"""

from __future__ import annotations

import os

from tests.fixtures.paths import NO_SETTINGS_FILE

# Nothing may come from a hub; settings must not leak in from the developer's shell. This runs before any
# fixture module (and so before ``rag.settings``) is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _key in [k for k in os.environ if k.startswith("RAG_")]:
    del os.environ[_key]
os.environ["RAG_SETTINGS_FILE"] = str(NO_SETTINGS_FILE)

pytest_plugins = [
    "tests.fixtures.figures",
    "tests.fixtures.models",
    "tests.fixtures.seeded",
    "tests.fixtures.fake",
    "tests.fixtures.servers",
]
