"""The one settings object: read from ``RAG_*`` environment variables and an optional TOML file."""

from __future__ import annotations

import difflib
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import RagError

RetrievalMode = Literal["dense", "bm25", "hybrid"]
Fusion = Literal["dbsf", "rrf"]  # how hybrid retrieval fuses its dense and BM25 lists
Prefer = Literal["newest", "all"]  # how an answer orders sources that disagree
LLMBackendName = Literal["llamacpp", "openai", "extractive"]

SETTINGS_FILE_ENV = "RAG_SETTINGS_FILE"
DEFAULT_SETTINGS_FILE = "rag.toml"
ENV_PREFIX = "RAG_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(RagError):
    """A setting that would not take effect as written: an unknown name, or a settings file that is not there."""


class Settings(BaseSettings):
    """Every tunable of the service. Precedence: init args > env (RAG_*) > settings file > defaults."""

    # Nothing is dropped silently: an unknown name in code or in the settings file is an error, and so is an unknown
    # RAG_* environment variable (checked in ``settings_customise_sources``: pydantic-settings ignores those).
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # Storage
    data_dir: Path = Field(Path(".rag"), description="Where the index, BM25 files and the model live.")
    chroma_path: Path | None = Field(None, description="Embedded Chroma folder (default: <data_dir>/chroma).")
    chroma_host: str | None = Field(None, description="Chroma server host; when set, server mode is used.")
    chroma_port: int = Field(8000, description="Chroma server port.")
    chroma_timeout: float = Field(5.0, description="Seconds before any Chroma server call is abandoned (a hung server gives 503 after about twice this).")
    collection: str = Field("rag", min_length=3, max_length=512, description="Chroma collection name.")

    # Ingestion
    chunk_size: int = Field(96, ge=32, le=224, description="Chunk size in embedding-model tokens (small chunks rank better and keep prompts short).")
    chunk_overlap: int = Field(16, ge=0, le=112, description="Overlap between chunks in tokens.")
    embed_title: bool = Field(True, description="Embed each chunk with its document title in front (better hybrid ranking).")
    embed_model_path: Path | None = Field(None, description="Local sentence-transformers model folder (default: packaged all-MiniLM-L6-v2).")
    embed_batch_size: int = Field(64, ge=1, description="Texts per embedding batch.")
    ingest_flush_chunks: int = Field(512, ge=1, description="Chunks embedded and written per ingestion step (grouping similar lengths pads less; memory stays bounded).")
    torch_threads: int = Field(1, ge=1, description="Torch CPU threads (1 is stable under contention).")
    embed_cache_size: int = Field(20_000, ge=0, description="Passage sentences whose embeddings are kept for reuse (about 1.5 KiB each; 0 = off).")
    max_upload_bytes: int = Field(20_000_000, ge=1, description="Largest document accepted for ingestion.")

    # Retrieval
    retrieval_mode: RetrievalMode = Field("hybrid", description="dense, bm25 or hybrid (both, fused as `fusion` says).")
    top_k: int = Field(5, ge=1, le=100, description="Passages returned by search.")
    candidate_k: int = Field(20, ge=1, le=500, description="Candidates per retriever before fusion.")
    fusion: Fusion = Field("dbsf", description="How hybrid mode fuses its two lists: dbsf (scores, each list scaled by its mean ± 3 standard deviations, then summed: a passage one list puts far ahead keeps its lead) or rrf (reciprocal rank fusion, ranks only).")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (fusion=rrf).")
    bm25_refresh_seconds: float = Field(5.0, ge=0, description="How often a running process checks the store for changes by others.")

    # Answering
    llm_backend: LLMBackendName = Field("llamacpp", description="llamacpp, openai or extractive.")
    answer_top_k: int = Field(4, ge=1, le=20, description="Passages shown to the generator.")
    context_sentences: int = Field(3, ge=0, le=50, description="Sentences kept per passage in the prompt (0 = whole passage).")
    llm_model_path: Path | None = Field(None, description="GGUF file (default: assembled from the packaged parts into <data_dir>/models).")
    llm_ctx: int = Field(2048, ge=512, description="llama.cpp context window.")
    llm_threads: int = Field(2, ge=1, description="llama.cpp threads.")
    llm_max_tokens: int = Field(128, ge=8, description="Most tokens generated per answer.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = deterministic).")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible server URL for the openai backend.")
    llm_model: str = Field("qwen2.5-1.5b-instruct", description="Model name sent to the openai backend.")
    llm_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the openai backend.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before an LLM call falls back to extractive.")
    judge: bool = Field(True, description="Ask the generator whether each answer sentence is stated by its passage (read from its yes/no probability). Off: the rules decide alone, about 4 s faster per sentence on 2 cores and less precise.")
    judge_answers: bool | None = Field(None, description="Also ask the judge whether each kept sentence's window answers the question at all (the confidence signal `answerable`; one more check per sentence). Default: only when the fitted confidence model reads that signal; `rag eval` always asks, so its reports can fit it.")
    claim_threshold: float | None = Field(None, ge=0.0, le=1.0, description="With a judge: lowest probability of support (the claim model's) for an answer sentence to be kept. Default: the claim model's, chosen on dev questions (`rag eval --replay ... --fit`).")
    min_answerable: float = Field(0.0, ge=0.0, le=1.0, description="With the answers check on (RAG_JUDGE_ANSWERS): a sentence whose supporting window the judge says does not answer the question (P(yes) below this, read without the sentence) is not kept on that window; it is tried on the best other window, then dropped. 0 = off: the check only lowers the answer's confidence.")
    support_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Without a judge (rules only): lowest probability of support (the claim model's rules-only part) for an answer sentence to be kept. Default: the claim model's, fitted on dev claims.")
    min_confidence: float | None = Field(None, ge=0.0, le=1.0, description="Answers below this confidence become abstentions that show the closest passage (default: the threshold chosen on dev; 0 = off).")
    prefer: Prefer = Field("newest", description="When sources disagree on a number or date: newest (lead with the newest source, older values after) or all (every value side by side). Each value is stated with its source, date and citation either way.")
    side_search_docs: int = Field(5, ge=0, le=50, description="When a question asks a number or a date, the documents (best first) searched for a value the top passages leave out, so a disagreement between sources is not hidden by ranking; 0 = off.")
    extractive_min_score: float = Field(0.45, description="Lowest question/sentence score for an extractive answer.")
    extractive_rescue_score: float = Field(0.75, description="Score an extract needs to replace an unsupported generated answer.")

    # Service
    api_key: SecretStr | None = Field(None, description="When set, every endpoint but the probes (/healthz; /readyz says only ready or not) and the page needs this bearer key. Empty is an error.")
    max_question_chars: int = Field(4000, ge=1, description="Longest question accepted.")
    generation_queue_size: int = Field(16, ge=1, description="Chat requests waiting for the model before 429.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field([], description="Host names clients may address besides loopback ones (comma-separated; .example.com = it and subdomains; * = any). Others get 400 (DNS rebinding).")
    cors_origins: Annotated[list[str], NoDecode] = Field([], description="Web origins that may call the API from a browser (comma-separated, e.g. https://app.example.com); other pages' writes get 403. No CORS headers when empty.")

    # Logging
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(False, description="Emit logs as JSON lines.")

    @field_validator("api_key")
    @classmethod
    def _key_is_a_key(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty key would install no auth (and a padded one would never match): refuse both at start-up."""
        if value is not None:
            key = value.get_secret_value()
            if not key.strip():
                raise ValueError("the API key is empty or whitespace: unset RAG_API_KEY to serve without a key, or set a real key")
            if key != key.strip():
                raise ValueError("the API key starts or ends with whitespace, which no client sends: remove it")
        return value

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``a.example, b.example`` (as an environment variable is written) or a JSON/TOML list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _veto_needs_its_check(self) -> Settings:
        """A minimum on the answers check that is never asked would be silently off."""
        if self.min_answerable > 0 and self.judge_answers is False:
            raise ValueError("RAG_MIN_ANSWERABLE needs the answers check: unset RAG_JUDGE_ANSWERS=false, or set the minimum to 0")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        _check_environment()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = settings_file()
        if toml_file is not None:
            _check_file_keys(toml_file)
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def auth_enabled(self) -> bool:
        """The one condition that installs the API-key check, and that the start-up log and warnings report."""
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())

    @property
    def chroma_dir(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25" / self.collection

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def server_mode(self) -> bool:
        return bool(self.chroma_host)


def settings_file() -> Path | None:
    """The TOML settings file to read: ``RAG_SETTINGS_FILE`` (which must exist), else ``rag.toml`` if present."""
    named = os.environ.get(SETTINGS_FILE_ENV)
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(f"{SETTINGS_FILE_ENV} names {path}, which is not a file: fix the path, or unset {SETTINGS_FILE_ENV}")
        return path
    default = Path(DEFAULT_SETTINGS_FILE)
    return default if default.is_file() else None


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_environment() -> None:
    """Every ``RAG_*`` environment variable must name a setting: a typo (``RAG_APIKEY``) would otherwise be ignored."""
    known = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields] + [SETTINGS_FILE_ENV]
    unknown = sorted(k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
    if unknown:
        names = "; ".join(f"{k}{_suggest(k.upper(), known)}" for k in unknown)
        raise SettingsError(f"unknown setting in the environment: {names}. Every RAG_* variable must name a setting "
                            "(see the README's configuration table); unset it or fix its name")


def _check_file_keys(path: Path) -> None:
    """Every key of the settings file must name a setting (written as in the README, e.g. ``api_key``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    known = list(Settings.model_fields)
    unknown = [k for k in data if k not in known]
    if unknown:
        names = "; ".join(f"{k!r}{_suggest(k.lower().removeprefix(ENV_PREFIX.lower()), known)}" for k in unknown)
        raise SettingsError(f"unknown key in settings file {path}: {names}. Keys are setting names in lower case, "
                            "without the RAG_ prefix")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once; invalid values raise RagError naming the setting."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"RAG_{'_'.join(map(str, e['loc'])).upper()} ({e['loc'][0]}): {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise RagError(f"invalid settings: {problems}") from None
    except ValueError as exc:  # e.g. an unreadable TOML settings file
        raise RagError(f"invalid settings file: {exc}") from None


def settings_table() -> str:
    """The Markdown table of every setting (env var, default, meaning) that the README carries."""
    rows = ["| env var | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default.get_secret_value() if isinstance(info.default, SecretStr) else info.default
        rows.append(f"| `RAG_{name.upper()}` | `{default}` | {info.description} |")
    return "\n".join(rows)
