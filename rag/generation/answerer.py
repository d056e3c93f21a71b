"""Question in, verified answer out. ``Answerer.run`` checks the question and returns an ``AnswerRun``; the
steps it runs (retrieve, build prompt, generate, check) are the named methods below."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag.generation.answer import Answer
from rag.generation.backends import Prompt
from rag.generation.backends.extractive import extractive_answer
from rag.generation.followup import Turn
from rag.generation.generators import FALLBACK, Generators
from rag.generation.conflicts import Side, completion, conflict_hint, find_conflicts, question_kind
from rag.generation.prompt import ContextPassage, build_messages, compress
from rag.generation.run import AnswerRun
from rag.retrieval import Passage, Retriever
from rag.retrieval.filters import SearchFilter
from rag.retrieval.query import checked_question
from rag.settings import Prefer, RetrievalMode, Settings
from rag.verification.answer_check import CITED_WITHOUT_ANSWER, AnswerCheck
from rag.verification.claim_model import ClaimModel
from rag.verification.claims import Claim
from rag.verification.confidence import ConfidenceModel
from rag.verification.judge import Judge, judge_of
from rag.verification.verifier import JUDGE_OFF_NOTE, NO_JUDGE_NOTE, Verifier

log = logging.getLogger(__name__)
SIDE_PASSAGES = 3  # passages per document searched for another source's value (``Answerer.other_sides``; seeds s60's
# "14 attacks per month" is its document's third passage for "How often does ISIS-K carry out attacks?")
SIDE_EXTRA = 2  # most passages added to the context that way (each one more passage for the model to read)


class Answerer:
    """Grounded question answering over one collection."""

    CITED_WITHOUT_ANSWER = CITED_WITHOUT_ANSWER

    def __init__(self, settings: Settings, retriever: Retriever, generators: Generators) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generators = generators
        self.claim_model = ClaimModel.load()
        self.confidence_model = ConfidenceModel.load()

    @property
    def min_confidence(self) -> float:
        """``RAG_MIN_CONFIDENCE``, else the threshold chosen on dev when the confidence model was fitted."""
        if self.settings.min_confidence is not None:
            return self.settings.min_confidence
        return float(self.confidence_model.meta.get("min_confidence", 0.0)) if self.confidence_model else 0.0

    def min_confidence_for(self, judged: bool) -> float:
        """The gate for an answer checked with (or without) the judge. The fitted default applies only to the kind of
        answers it was fitted on: a calibrator fitted on judged answers reads an unjudged one as doubtful whatever it
        says, and would gate every rules-only answer. An explicit ``RAG_MIN_CONFIDENCE`` applies to all."""
        if self.settings.min_confidence is not None or not self.confidence_model:
            return self.min_confidence
        fitted = self.confidence_model.meta.get("fit_judged", [0.0, 1.0])
        return self.min_confidence if float(judged) in fitted else 0.0

    def run(self, question: str, history: Sequence[Turn] = (), backend: str | None = None,
            mode: RetrievalMode | None = None, top_k: int | None = None, where: SearchFilter | None = None,
            prefer: Prefer | None = None) -> AnswerRun:
        """Check the question and the index, load the generator, and return the run (nothing is generated yet).
        ``where`` limits retrieval to the documents it lets through; ``prefer`` orders sources that disagree
        (default: ``RAG_PREFER``).

        Raises ``EmptyQuestion``, ``QuestionTooLong``, ``EmptyIndex`` or ``ModelError`` before anything streams.
        """
        question = checked_question(question, self.settings.max_question_chars)
        self.retriever.index.require_content()
        generator = self.generators.get(backend)
        return AnswerRun(self, question, tuple(history), generator, mode, top_k, where, prefer or self.settings.prefer)

    def ask(self, question: str, history: Sequence[Turn] = (), backend: str | None = None,
            mode: RetrievalMode | None = None, top_k: int | None = None) -> Answer:
        """The verified answer (no streaming)."""
        return self.run(question, history, backend, mode, top_k).answer()

    # -- the steps, in the order a run takes them -------------------------------------------------
    def retrieve(self, question: str, mode: RetrievalMode | None, top_k: int | None,
                 where: SearchFilter | None = None) -> list[Passage]:
        """The top passages for ``question``, and for a number or date question the other sides ``other_sides``
        finds. One search either way: its longer list (the candidates) names the documents to search for sides."""
        k = top_k or self.settings.answer_top_k
        if not self.settings.side_search_docs or question_kind(question) is None:
            return self.retriever.search(question, k=k, mode=mode, where=where)
        ranked = self.retriever.search(question, k=max(k, self.settings.candidate_k), mode=mode, where=where)
        return self.other_sides(question, ranked[:k], ranked)

    def other_sides(self, question: str, passages: list[Passage], candidates: list[Passage]) -> list[Passage]:
        """``passages`` and the passages of other documents that give another value for what ``question`` asks
        (found by rule, as ``find_conflicts`` finds a disagreement), at most ``SIDE_EXTRA``.

        Ranking can hide a side: seeds s57 asks "How many fighters does ISIS-K have?" and the later source's
        "around 4,000 combatants" is dense rank 14 overall (no word in common), yet rank 2 inside its own document.
        So the best documents of ``candidates`` (``side_search_docs``) are each searched on their own (dense); nothing
        is added unless the added passage gives a side of a disagreement, so other questions get the same passages."""
        docs = list(dict.fromkeys(p.doc_id for p in candidates))[: self.settings.side_search_docs]
        shown = {p.chunk_id for p in passages}
        extra: list[Passage] = []
        for doc in docs:
            # Dense alone: another source often words the quantity differently ("combatants" for "fighters").
            for p in self.retriever.search(question, k=SIDE_PASSAGES, mode="dense", where=SearchFilter(doc_ids=(doc,))):
                if p.chunk_id not in shown:
                    shown.add(p.chunk_id)
                    extra.append(p)
        if not extra:
            return passages
        context = compress(question, passages + extra, self.settings.context_sentences, self.retriever.embedder)
        # Every name the question uses must be there: a passage from a document the question did not find on its
        # own is more often about something else (almanac a107: another river's length).
        sides = find_conflicts(question, context, self.retriever.embedder, "all",
                               self.retriever.index.aliases().with_all_names, min_names=1.0,
                               preceding=lambda: self.retriever.preceding_texts(passages + extra))
        side_numbers = {s.n for s in sides}
        added = [c.passage for c in context[len(passages):] if c.n in side_numbers][:SIDE_EXTRA]
        if added:
            log.info("other sides added", extra={"chunks": [p.chunk_id for p in added]})
        return passages + added

    def build_prompt(self, question: str, passages: list[Passage]) -> Prompt:
        """Passages compressed to the sentences closest to the question, numbered, under the fixed system prompt."""
        context = compress(question, passages, self.settings.context_sentences, self.retriever.embedder)
        return Prompt(build_messages(question, context), question, context)

    def ask_for_every_side(self, prompt: Prompt, sides: list[Side], prefer: Prefer) -> Prompt:
        """The same prompt asking for one sentence per side of a disagreement among its passages."""
        return Prompt(build_messages(prompt.question, prompt.context, conflict_hint(sides, prefer)), prompt.question,
                      prompt.context)

    def disagreement(self, run: AnswerRun, question: str, context: list[ContextPassage]) -> list[tuple[Side, Claim]]:
        """The sides of a disagreement among the passages (found by rule), each kept only when its sentence passes
        the same check as an answer sentence, cited to its own passage; none unless two sides pass."""
        sides = find_conflicts(question, context, self.retriever.embedder, run.prefer,
                               self.retriever.index.aliases().with_all_names,
                               preceding=lambda: self.retriever.preceding_texts([c.passage for c in context]))
        if not sides:
            return []
        verifier = self.verifier(run)
        confirmed = []
        for side in sides:
            # in the source's own words: the judge must lean yes, the claim model's bar is for sentences the model wrote
            claims = [c for c in verifier.verify(completion(side), question, context, quoted=True).claims if c.final == [side.n]]
            if claims:
                confirmed.append((side, claims[0]))
        log.info("sources disagree" if len(confirmed) > 1 else "disagreement not confirmed",
                 extra={"values": [s.value for s in sides], "confirmed": [s.value for s, _ in confirmed]})
        return confirmed if len(confirmed) > 1 else []

    def verifier(self, run: AnswerRun) -> Verifier:
        """The claim checker for the run: rules and claim model, judged by the model when it can be."""
        s = self.settings
        note = NO_JUDGE_NOTE if s.judge else JUDGE_OFF_NOTE
        return Verifier(self.claim_model, self.judge(run), s.support_threshold, note,
                        self.retriever.index.aliases().with_all_names, self.judge_answers, s.claim_threshold,
                        s.min_answerable)

    @property
    def judge_answers(self) -> bool:
        """``RAG_JUDGE_ANSWERS``, else whether the confidence model reads the signal that check gives (it costs a
        judge call per kept sentence, paid only where it changes the confidence)."""
        if self.settings.judge_answers is not None:
            return self.settings.judge_answers
        if self.settings.min_answerable > 0:  # the minimum reads it
            return True
        return self.confidence_model is not None and self.confidence_model.reads("answerable")

    def check(self, run: AnswerRun) -> AnswerCheck:
        """The claim-by-claim check of the run's draft (judged by the model when it can read yes/no probabilities)."""
        assert run.prompt is not None
        s, embedder = self.settings, self.retriever.embedder
        verifier = self.verifier(run)
        context = run.prompt.context
        return AnswerCheck(verifier, self.confidence_model, self.min_confidence_for(verifier.judge is not None), run.question,
                           run.prompt, run.passages, run.draft,
                           lambda: extractive_answer(run.standalone, context, embedder, float("-inf")),
                           None if run.backend == FALLBACK else s.extractive_rescue_score, run.conflicts)

    def judge(self, run: AnswerRun) -> Judge | None:
        """The answering generator as judge; for an extractive answer, the configured generator if it is loaded and
        did not just fail. None when no loaded generator can judge or ``RAG_JUDGE`` is off (the rules then decide alone)."""
        if not self.settings.judge:
            return None
        if run.backend != FALLBACK:
            return judge_of(self.generators.get(run.backend))
        default = self.generators.default
        if run.fallback_reason is None and default != FALLBACK and self.generators.loaded(default):
            return judge_of(self.generators.get(default))
        return None
