"""Gold question sets (JSONL): loading and validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from rag.errors import RagError

QuestionType = Literal["factoid", "numeric", "date", "list", "paraphrase", "multi_doc", "conflict", "unanswerable"]
Split = Literal["dev", "test"]
# How an unanswerable question imitates an answerable one (eval/README.md defines each kind).
UnanswerableKind = Literal["out_of_scope", "other_quantity", "other_person", "false_premise", "unstated_detail",
                           "negation", "entity_swap"]


class Evidence(BaseModel):
    doc_id: str
    quote: str = Field(min_length=1)


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

    @model_validator(mode="after")
    def _consistent(self) -> GoldQuestion:
        if self.answerable != bool(self.answers) or self.answerable != bool(self.evidence):
            raise ValueError("answerable questions need answers and evidence; unanswerable ones have neither")
        if (self.type == "unanswerable") == self.answerable:
            raise ValueError("type 'unanswerable' must go with answerable=false")
        if (self.unanswerable_kind is None) != self.answerable:
            raise ValueError("unanswerable questions need an unanswerable_kind; answerable ones have none")
        return self


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read and validate a gold JSONL file; errors name the line."""
    if not path.is_file():
        raise RagError(f"gold file not found: {path}")
    rows: list[GoldQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = GoldQuestion.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise RagError(f"{path}:{number}: invalid gold row: {exc}") from exc
        if row.id in seen:
            raise RagError(f"{path}:{number}: duplicate id {row.id!r}")
        seen.add(row.id)
        rows.append(row)
    return rows
