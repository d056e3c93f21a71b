"""Shared fixtures: real Chroma, the real packaged embedding model, a seeded index per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
GOLD = ROOT / "eval" / "gold" / "seeds.jsonl"
RAG_BIN = Path(sys.executable).with_name("rag")

# Nothing may come from a hub; settings must not leak in from the developer's shell.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _key in [k for k in os.environ if k.startswith("RAG_")]:
    del os.environ[_key]
os.environ["RAG_SETTINGS_FILE"] = str(ROOT / "tests" / "no-settings-file.toml")

from rag.embedding import Embedder, get_embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402


FIGURES = pytest.StashKey[list[tuple[str, str, object]]]()


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record a measured figure (a latency, a count): printed in a summary section at the end of the run."""

    def record(name: str, value: object) -> None:
        request.config.stash.setdefault(FIGURES, []).append((request.node.name, name, value))
        request.node.user_properties.append((name, value))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, [])
    if figures:
        terminalreporter.section("measured figures")
        for test, name, value in figures:
            terminalreporter.write_line(f"{test}: {name} = {value}")


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str], data_dir: Path, env: dict[str, str] | None = None, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the real ``rag`` console script in a fresh process."""
    full_env = {**os.environ, "RAG_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run([str(RAG_BIN), *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder(Settings(data_dir=Path("/nonexistent")))


@pytest.fixture(scope="session")
def seeded_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """A data dir holding the seeds, ingested once per session with default settings."""
    from rag.components import Components

    settings = make_settings(tmp_path_factory.mktemp("seeded"))
    Components(settings, embedder=embedder).ingestor.ingest_paths([SEEDS])
    return settings


@pytest.fixture(scope="session")
def seeded_components(llm_settings: Settings, embedder: Embedder):  # type: ignore[no-untyped-def]
    from rag.components import Components

    return Components(llm_settings, embedder=embedder)


@pytest.fixture(scope="session")
def retriever(seeded_components):  # type: ignore[no-untyped-def]
    return seeded_components.retriever


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


@pytest.fixture
def ingestor_factory(tmp_path: Path, embedder: Embedder) -> Iterator[object]:
    from rag.components import Components
    from rag.ingestion.pipeline import Ingestor

    def make(**overrides: object) -> Ingestor:
        return Components(make_settings(tmp_path / "data", **overrides), embedder=embedder).ingestor

    yield make


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real GGUF, assembled from the packaged parts and verified once (kept in the repo's .rag/)."""
    from rag.generation.model_files import ensure_model

    return ensure_model(ROOT / ".rag" / "models")


@pytest.fixture(scope="session")
def llm_settings(seeded_settings: Settings, model_path: Path) -> Settings:
    return seeded_settings.model_copy(update={"llm_model_path": model_path})


@pytest.fixture(scope="session")
def answerer(seeded_components):  # type: ignore[no-untyped-def]
    return seeded_components.answerer
