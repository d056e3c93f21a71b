"""Gold question sets (JSONL): loading and validation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from rag.errors import RagError

QuestionType = Literal["factoid", "numeric", "date", "list", "paraphrase", "multi_doc", "conflict", "unanswerable",
                       "metadata", "filtered", "alias"]
Split = Literal["dev", "test"]
Row = TypeVar("Row", bound=BaseModel)
# How an unanswerable question imitates an answerable one (eval/README.md defines each kind).
UnanswerableKind = Literal["out_of_scope", "other_quantity", "other_person", "false_premise", "unstated_detail",
                           "negation", "entity_swap"]


class Evidence(BaseModel):
    doc_id: str
    quote: str = Field(min_length=1)


class Side(BaseModel):
    """One value of a disagreement: its spellings and the documents that give it."""

    answers: list[str] = Field(min_length=1)
    doc_ids: list[str] = Field(min_length=1)


class GoldQuestion(BaseModel):
    """One gold question; unanswerable ones have no answers and no evidence."""

    id: str
    question: str = Field(min_length=1)
    answers: list[str]
    evidence: list[Evidence]
    type: QuestionType
    answerable: bool
    split: Split = Field(description="dev questions tune; test questions report (split by document).")
    unanswerable_kind: UnanswerableKind | None = None
    filter: dict[str, Any] | None = Field(None, description="Type filtered only: the search filter the question is asked with "
                                                            "(rag.retrieval.filters.SearchFilter's JSON form).")
    sides: list[Side] | None = Field(None, description="Type conflict only: the values the sources disagree on; right "
                                                        "only when each is stated and cited to one of its documents.")

    @model_validator(mode="after")
    def _consistent(self) -> GoldQuestion:
        if self.answerable != bool(self.answers) or self.answerable != bool(self.evidence):
            raise ValueError("answerable questions need answers and evidence; unanswerable ones have neither")
        if (self.type == "unanswerable") == self.answerable:
            raise ValueError("type 'unanswerable' must go with answerable=false")
        if (self.unanswerable_kind is None) != self.answerable:
            raise ValueError("unanswerable questions need an unanswerable_kind; answerable ones have none")
        if (self.type == "filtered") != (self.filter is not None):
            raise ValueError("type 'filtered' goes with a 'filter' (and only it)")
        if (self.type == "conflict") != (self.sides is not None) or (self.sides is not None and len(self.sides) < 2):
            raise ValueError("type 'conflict' goes with 'sides' (two or more, and only it)")
        if self.filter is not None:
            from rag.errors import InvalidFilter
            from rag.retrieval.filters import SearchFilter

            try:
                if SearchFilter.parse(self.filter) is None:
                    raise ValueError("the filter is empty")
            except InvalidFilter as exc:
                raise ValueError(f"invalid filter: {exc}") from None
        return self

    def search_filter(self) -> Any:
        """The question's ``SearchFilter`` (None when it has none)."""
        from rag.retrieval.filters import SearchFilter

        return SearchFilter.parse(self.filter)


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read and validate a gold JSONL file; errors name the line."""
    return read_unique([path], GoldQuestion, "gold row")


def read_unique(paths: Sequence[Path], model: type[Row], what: str) -> list[Row]:
    """The rows of one or more JSONL files (see ``read_jsonl``), whose ``id`` must be unique across all of them:
    reports, flips and a fit's data hash name each row by its id. A repeat is one error naming both places, and so
    is a file with no rows (a set that measures nothing)."""
    rows: list[Row] = []
    first: dict[str, str] = {}
    for path in paths:
        numbered = read_jsonl(path, model, what)
        if not numbered:
            raise RagError(f"no {what}s in {path}")
        for number, row in numbered:
            row_id = str(getattr(row, "id"))
            if row_id in first:
                raise RagError(f"{path}:{number}: duplicate id {row_id!r} (first at {first[row_id]})")
            first[row_id] = f"{path}:{number}"
            rows.append(row)
    return rows


def read_jsonl(path: Path, model: type[Row], what: str) -> list[tuple[int, Row]]:
    """Each non-blank line of a JSONL file validated as ``model``, with its line number. A bad line is one error
    naming the file, the line and the first field at fault: ``gold.jsonl:7: invalid gold row (split: ...)``."""
    if not path.is_file():
        raise RagError(f"file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, model.model_validate_json(line)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "line"
            raise RagError(f"{path}:{number}: invalid {what} ({where}: {first['msg']})") from exc
    return rows
