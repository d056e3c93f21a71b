"""A synthetic but realistic corpus of any size, with planted facts and gold questions about them.

Documents are recombined from the sentences of real source documents (by default the seeds and the
mini evaluation collection): sentences are drawn from all sources, named entities are swapped for other
entities of the pool and numbers are perturbed, so no two documents are copies yet the vocabulary,
topics and sentence shapes stay those of the sources (hard negatives for retrieval). Into some
documents one planted fact is written: a sentence about invented names, stated once in the whole
corpus, and a gold question that asks for it in other words. Hit@k on those questions measures
whether retrieval still finds one needle among N chunks.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rag.errors import RagError
from rag.ingestion.cleaning import clean_text
from rag.ingestion.metadata import doc_id_for
from rag.ingestion.readers import is_supported, read_document
from rag.text import split_sentences

DOCS_PER_FOLDER = 500
ID_SCHEME = 2  # the doc ids the gold file names (2: relative path with extension); an older corpus is rewritten
WORDS_PER_CHUNK = 62  # 96-token chunks with 16 overlap hold about 80 new tokens, ~62 words of this prose
_NUMBER = re.compile(r"\b\d[\d,]*\b")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]{2,}(?:[ -][A-Z][a-z]+)*")  # capitalized run not opening a sentence
_SYLLABLES = ["ka", "ri", "mo", "ta", "zen", "vel", "dor", "sha", "lu", "bek", "nar", "qui", "ost", "fa",
              "gul", "har", "im", "jo", "kest", "lor", "mir", "nov", "pra", "rud", "sol", "tar", "ur", "vash", "yel", "zor"]
_ORG_KINDS = ["Front", "Brigade", "Council", "Movement", "Network", "Battalion", "Shura", "Alliance"]

# (statement, question, answer slot, gold type): the question paraphrases the statement.
_FACTS: list[tuple[str, str, str, str]] = [
    ("In {year}, {person} took command of the {org}, a militia based in {place}.",
     "Who became the commander of the {org} in {year}?", "person", "factoid"),
    ("The {org} ran {n} training camps around {place}, a {year} assessment found.",
     "How many training camps did the {org} operate near {place}?", "n", "numeric"),
    ("{person} was born in {place} and later became the chief financier of the {org}.",
     "Where was {person}, the {org}'s chief financier, born?", "place", "factoid"),
    ("The {org} was founded in {year} by defectors from a rival faction in {place}.",
     "In what year was the {org} established?", "year", "date"),
    ("According to officials, {person} negotiated the {place} ceasefire on behalf of the {org}.",
     "Who negotiated the ceasefire in {place} for the {org}?", "person", "factoid"),
]


@dataclass
class CorpusInfo:
    folder: Path
    documents: int
    planted: int
    estimated_chunks: int

    @property
    def docs_dir(self) -> Path:
        return self.folder / "docs"

    @property
    def questions(self) -> Path:
        return self.folder / "questions.jsonl"


class _Names:
    """Invented names; surnames, organisations and places are corpus-unique (a planted fact is stated once)."""

    UNIQUE_SYLLABLES = 4  # 30**4 = 810,000 possible words: room for any corpus size used here

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: int, unique: bool = True) -> str:
        for _ in range(1000):
            w = "".join(self.rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()
            if not unique or w not in self.used:
                self.used.add(w)
                return w
        raise RagError(f"ran out of unique {syllables}-syllable names after {len(self.used)}")

    def person(self) -> str:
        return f"{self.word(2, unique=False)} {self.word(self.UNIQUE_SYLLABLES)}"

    def org(self) -> str:
        return f"{self.word(self.UNIQUE_SYLLABLES)} {self.rng.choice(_ORG_KINDS)}"

    def place(self) -> str:
        return self.word(self.UNIQUE_SYLLABLES)


def source_sentences(sources: list[Path]) -> list[str]:
    """Sentences (cleaned, 6 words or more) of every supported file under ``sources``."""
    sentences: list[str] = []
    for root in sources:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if not is_supported(path):
                continue
            text = clean_text(read_document(path.read_bytes(), path.name).text).text
            for start, end in split_sentences(text):
                sentence = " ".join(text[start:end].split())
                if len(sentence.split()) >= 6:
                    sentences.append(sentence)
    if len(sentences) < 50:
        raise RagError(f"the sources hold {len(sentences)} sentences; at least 50 are needed to recombine")
    return sentences


class _Recombiner:
    def __init__(self, sentences: list[str], rng: random.Random) -> None:
        self.sentences = sentences
        self.rng = rng
        self.names = sorted({m.group() for s in sentences for m in _NAME.finditer(s)})

    def sentence(self) -> str:
        s = self.rng.choice(self.sentences)
        found = [m.group() for m in _NAME.finditer(s)]
        if found and self.rng.random() < 0.5:
            s = s.replace(self.rng.choice(found), self.rng.choice(self.names))
        if self.rng.random() < 0.5:
            s = _NUMBER.sub(self._perturb, s)
        return s

    def _perturb(self, match: re.Match[str]) -> str:
        value = int(match.group().replace(",", ""))
        if 1900 <= value <= 2030:  # a year stays a plausible year
            return str(value + self.rng.randint(-3, 3))
        return str(max(1, round(value * self.rng.uniform(0.5, 1.5))))


def generate_corpus(folder: Path, chunks: int, sources: list[Path], seed: int = 0, plant_every: int = 10) -> CorpusInfo:
    """Write about ``chunks`` chunks' worth of documents under ``folder/docs`` and ``folder/questions.jsonl``.

    Deterministic for a given seed and sources; an existing complete corpus is left as it is.
    """
    marker = folder / "corpus.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("chunks") == chunks and info.get("seed") == seed and info.get("ids") == ID_SCHEME:
            return CorpusInfo(folder, info["documents"], info["planted"], info["estimated_chunks"])
    rng = random.Random(seed)
    names = _Names(rng)
    combiner = _Recombiner(source_sentences(sources), rng)
    (folder / "docs").mkdir(parents=True, exist_ok=True)
    questions: list[dict] = []
    estimated = documents = 0
    with tqdm(total=chunks, desc="corpus", unit="chunk", disable=chunks < 5000) as bar:
        while estimated < chunks:
            lines = [combiner.sentence() for _ in range(rng.randint(12, 48))]
            if documents % plant_every == 0:
                fact, question = _plant(names, rng)
                lines.insert(rng.randrange(len(lines) + 1), fact["statement"])
                question["id"] = f"p{len(questions):05d}"
                questions.append(question)
            title = f"{combiner.sentence().split(',')[0][:70]} ({documents})"
            rel = Path(f"p{documents // DOCS_PER_FOLDER:04d}") / f"d{documents:07d}.txt"
            path = folder / "docs" / rel
            path.parent.mkdir(exist_ok=True)
            body = "\n\n".join(" ".join(lines[i : i + 4]) for i in range(0, len(lines), 4))
            path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")
            if documents % plant_every == 0:
                questions[-1]["evidence"][0]["doc_id"] = doc_id_for(folder / "docs" / rel, folder / "docs")
            n = max(1, round(sum(len(s.split()) for s in lines) / WORDS_PER_CHUNK))
            estimated += n
            documents += 1
            bar.update(n)
    with (folder / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q) + "\n")
    info = {"chunks": chunks, "seed": seed, "ids": ID_SCHEME, "documents": documents, "planted": len(questions), "estimated_chunks": estimated}
    marker.write_text(json.dumps(info))
    return CorpusInfo(folder, documents, len(questions), estimated)


def _plant(names: _Names, rng: random.Random) -> tuple[dict, dict]:
    statement, question, slot, kind = rng.choice(_FACTS)
    values = {"person": names.person(), "org": names.org(), "place": names.place(),
              "year": str(rng.randint(1995, 2023)), "n": str(rng.randint(3, 97))}
    fact = {"statement": statement.format(**values)}
    gold = {"question": question.format(**values), "answers": [values[slot]],
            "evidence": [{"doc_id": "", "quote": fact["statement"]}], "type": kind, "answerable": True, "split": "test"}
    return fact, gold
