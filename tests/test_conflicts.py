"""Sources that disagree: found by rule among the passages, asked for in the prompt, completed when the model
gives one side, each side cited to its own source with its date, and listed on the answer (``conflicts``).

Real Chroma and the real embedding model over the mini collection, whose 2024 visitor guide gives other figures
than the older articles (a 29-metre lighthouse against 27 metres); the generator is a scripted ``FakeGenerator``,
so without a judge the rules check each side (the real-model path is measured by ``rag eval`` on conflict rows).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.components import Components
from rag.embedding import Embedder
from rag.generation.backends.fake import FakeGenerator
from rag.generation.conflicts import Side, completion, find_conflicts, question_kind
from tests.fixtures.fake import cite
from tests.fixtures.paths import ROOT
from tests.fixtures.seeded import make_settings

MINI = ROOT / "eval" / "collections" / "mini"
TALL = "How tall is the Gannet Point lighthouse?"
GUIDE = "kellsmouth_visitor_guide_2024.md"
ARTICLE = "kellsmouth_lighthouse.md"


@pytest.fixture(scope="module")
def mini_data(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The mini collection ingested once for this module."""
    data = tmp_path_factory.mktemp("mini") / "data"
    Components(make_settings(data), embedder=embedder).ingestor.ingest_paths([MINI])
    return data


@pytest.fixture
def mini(mini_data: Path, embedder: Embedder) -> Callable[..., Components]:
    """``mini(fake)`` -> components over the mini collection answering with ``fake`` (judge off: a fake has no
    yes/no probabilities to read, so the rules check every sentence)."""

    def make(fake: FakeGenerator) -> Components:
        return Components(make_settings(mini_data, judge=False), embedder=embedder, generators={"llamacpp": fake})

    return make


def test_an_added_side_keeps_its_names_capitalised() -> None:
    def side(sentence: str) -> Side:
        return Side("27 metres", 27.0, 3, ARTICLE, "Lighthouse", "Maren Oakley", "2004", sentence)

    assert completion(side("Pellow chose granite, and the tower stands 27 metres tall.")) == \
        "According to Oakley (2004), Pellow chose granite, and the tower stands 27 metres tall [3]."
    assert completion(side("The tower stands 27 metres tall.")).startswith("According to Oakley (2004), the tower")


def test_a_long_side_is_quoted_from_the_clause_that_states_its_value() -> None:
    """mini m41: the whole sentence is about a museum, and the judge doubted it answers "How many of the crew were
    lost" (P(yes) 0.48, under the quoted bar); the cut quote keeps the ship a relative clause hangs on."""
    museum = ("The keepers' cottages now hold a small museum run by the Kellsmouth Heritage Trust, where the Trenwith "
              "logbooks are shown beside an account of the schooner Ellen Varley, which struck the Mawgan Ledges in fog "
              "in 1887 with the loss of sixteen of her crew.")
    added = completion(Side("sixteen", 16.0, 1, GUIDE, "Guide", "Tamsin Roskilly", "2024-05-01", museum))
    assert added == ("According to Roskilly (2024-05-01), … the schooner Ellen Varley, which struck the Mawgan Ledges "
                     "in fog in 1887 with the loss of sixteen of her crew [1].")
    # short sentences are quoted whole, and a spelled-out number that opens one is not a name
    short = completion(Side("Fourteen", 14.0, 3, ARTICLE, "Lighthouse", "Maren Oakley", "2004",
                            "Fourteen of her crew were lost and only five survived, rescued by local pilot gigs."))
    assert short == "According to Oakley (2004), fourteen of her crew were lost and only five survived, rescued by local pilot gigs [3]."


def test_question_kinds() -> None:
    assert question_kind("How many arches does the viaduct have?") == "count"
    assert question_kind("How tall is the lighthouse?") == "count"
    assert question_kind("When was the first festival held?") == "date"
    assert question_kind("Who designed the lighthouse?") is None


def test_one_sided_answer_gets_the_other_source_cited_with_its_date(mini: Callable[..., Components]) -> None:
    fake = FakeGenerator([cite("27 metres", "The tower stands 27 metres tall [{n}].")])
    answer = mini(fake).answerer.run(TALL).answer()

    assert not answer.abstained, answer.notes
    assert "27 metres" in answer.answer and "29 metres" in answer.answer
    by_doc = {c.doc_id: c.n for c in answer.citations}
    assert {GUIDE, ARTICLE} <= set(by_doc), answer.citations
    # each value in its own sentence, cited to its own source; the added one names its source and date
    for sentence in answer.answer.split(". "):
        if "29 metres" in sentence:
            assert f"[{by_doc[GUIDE]}]" in sentence and "2024-05-01" in sentence and "Roskilly" in sentence
        if "27 metres" in sentence:
            assert f"[{by_doc[ARTICLE]}]" in sentence
    # the answer leads with the newest source although the model gave the older one, and lists both sides so
    assert answer.answer.index("29 metres") < answer.answer.index("27 metres"), answer.answer
    assert [c["doc_id"] for c in answer.conflicts] == [GUIDE, ARTICLE]
    assert [c["amount"] for c in answer.conflicts] == [29.0, 27.0]
    assert answer.conflicts[0]["date"] == "2024-05-01"
    # and the model was asked for every side
    assert "The passages disagree" in fake.prompts[0].messages[-1]["content"]


def test_the_sides_pass_the_confidence_gate_together(mini_data: Path, embedder: Embedder) -> None:
    """The gate reads the share of the answer kept: gated one by one, each side of a two-sided answer was half of
    it, fell under the gate, and the default settings turned every disagreement into an abstention (mini m40)."""
    def both(prompt: object) -> str:
        ctx = prompt.context  # type: ignore[attr-defined]
        new = next(c.n for c in ctx if c.passage.doc_id == GUIDE and "29 metres" in c.text)
        old = next(c.n for c in ctx if c.passage.doc_id == ARTICLE and "27 metres" in c.text)
        return f"The lighthouse is 29 metres tall [{new}]. The finished tower stands 27 metres tall [{old}]."

    def answer(gate: float):  # type: ignore[no-untyped-def]
        settings = make_settings(mini_data, judge=False, min_confidence=gate)
        return Components(settings, embedder=embedder, generators={"llamacpp": FakeGenerator([both])}).answerer.run(TALL).answer()

    whole = answer(0.0)
    assert len(whole.conflicts) == 2
    gated = answer(whole.confidence - 0.01)  # under the whole answer's confidence, above either half's
    assert not gated.abstained, gated.notes
    assert "29 metres" in gated.answer and "27 metres" in gated.answer and len(gated.conflicts) == 2
    assert answer(whole.confidence + 0.01).abstained  # above the whole answer's: still gated


def test_prefer_all_keeps_passage_order(mini: Callable[..., Components]) -> None:
    fake = FakeGenerator([cite("27 metres", "The tower stands 27 metres tall [{n}].")])
    run = mini(fake).answerer.run(TALL, prefer="all")
    answer = run.answer()
    numbers = [c["n"] for c in answer.conflicts]
    assert len(numbers) == 2 and numbers == sorted(numbers)
    by_n = {c["n"]: c["value"] for c in answer.conflicts}  # the sentences follow the passage order too
    assert answer.answer.index(by_n[numbers[0]]) < answer.answer.index(by_n[numbers[1]]), answer.answer
    assert "without saying which is right" in fake.prompts[0].messages[-1]["content"]


def test_an_answer_with_both_sides_is_left_as_written(mini: Callable[..., Components]) -> None:
    def both(prompt: object) -> str:
        ctx = prompt.context  # type: ignore[attr-defined]
        new = next(c.n for c in ctx if c.passage.doc_id == GUIDE and "29 metres" in c.text)
        old = next(c.n for c in ctx if c.passage.doc_id == ARTICLE and "27 metres" in c.text)
        return f"The 2024 guide gives 29 metres tall [{new}]. The finished tower stands 27 metres tall [{old}]."

    fake = FakeGenerator([both])
    answer = mini(fake).answerer.run(TALL).answer()
    assert answer.answer.count("29 metres") == 1 and answer.answer.count("27 metres") == 1
    assert "According to" not in answer.answer
    assert len(answer.conflicts) == 2


def test_no_disagreement_no_hint_and_nothing_added(mini: Callable[..., Components]) -> None:
    fake = FakeGenerator([cite("Pellow", "The lighthouse was designed by Thomas Pellow [{n}].")])
    answer = mini(fake).answerer.run("Who designed the Gannet Point lighthouse?").answer()
    assert answer.conflicts == []
    assert "According to" not in answer.answer
    assert "disagree" not in fake.prompts[0].messages[-1]["content"]


def test_an_abstention_is_not_turned_into_a_disagreement(mini: Callable[..., Components]) -> None:
    fake = FakeGenerator(["I don't know: the documents do not contain the answer."])
    answer = mini(fake).answerer.run(TALL).answer()
    assert answer.abstained and answer.conflicts == []


def test_sides_come_from_the_passages_and_a_wrong_attribution_is_refused(mini: Callable[..., Components]) -> None:
    c = mini(FakeGenerator())
    a = c.answerer
    prompt = a.build_prompt(TALL, a.retrieve(TALL, None, None))
    sides = find_conflicts(TALL, prompt.context, c.embedder, "newest", c.index.aliases().expand)
    assert [s.doc_id for s in sides] == [GUIDE, ARTICLE]
    assert sides[0].author == "Tamsin Roskilly" and sides[0].date == "2024-05-01"
    verifier = a.verifier(a.run(TALL))
    good = verifier.verify(completion(sides[0]), TALL, prompt.context)
    assert not good.abstained and [x.doc_id for x in good.citations] == [GUIDE]
    # the same sentence put in another author's mouth, or dated otherwise, is not supported by any passage
    for forged in (completion(sides[0]).replace("Roskilly", "Kitto"), completion(sides[0]).replace("2024-05-01", "1999")):
        assert verifier.verify(forged, TALL, prompt.context).abstained, forged
    # a source the passage itself names is an attribution it supports ("according to CSIS, ...")
    named = verifier.verify("According to Pellow, the finished tower stands 27 metres tall.", TALL, prompt.context)
    assert not named.abstained and [x.doc_id for x in named.citations] == [ARTICLE]


@pytest.mark.parametrize(("question", "values"), [
    # "Fourteen of her crew were lost" opens a chunk; the ship is named at the end of the chunk before it
    ("How many of the Ellen Varley's crew were lost when she struck the Mawgan Ledges?", {"sixteen", "Fourteen"}),
    # "how much" with no noun asks for a sum: numbers with their currency, not the year beside them
    ("How much did the 2023 Kellsmouth Oyster Festival raise for the lifeboat station?", {"£42,000", "£45,000"}),
])
def test_sides_found_across_chunk_edges_and_in_sums_of_money(mini: Callable[..., Components], question: str,
                                                               values: set[str]) -> None:
    c = mini(FakeGenerator())
    a = c.answerer
    prompt = a.build_prompt(question, a.retrieve(question, None, None))  # with the other sides searched for
    sides = find_conflicts(question, prompt.context, c.embedder, "newest", c.index.aliases().with_all_names)
    assert {s.value for s in sides} == values and len({s.doc_id for s in sides}) == 2


def test_what_a_count_question_counts() -> None:
    from rag.generation.conflicts import MONEY, _counted_nouns

    assert _counted_nouns("How much did the festival raise?") == [MONEY]
    assert _counted_nouns("How much coal did the line carry?") == ["coal"]
    assert _counted_nouns("How much of IS-K's fighting force is made up of non-Afghans?") == []  # a share
    assert _counted_nouns("How many of the crew were lost?") == ["crew"]


def test_the_http_faces_carry_prefer_and_conflicts(mini_data: Path, embedder: Embedder) -> None:
    """``prefer`` in the chat body (the openai client's ``extra_body``) and in /v1/ask reaches the run; the answer's
    ``conflicts`` comes back on both; a value that is not a choice is a 4xx that names the field."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.fixtures.fake import LOCAL

    fake = FakeGenerator([cite("27 metres", "The tower stands 27 metres tall [{n}].")])
    settings = make_settings(mini_data, judge=False)
    with TestClient(create_app(settings, Components(settings, embedder=embedder, generators={"llamacpp": fake})),
                    base_url=LOCAL) as client:
        chat = client.post("/v1/chat/completions", json={"model": "rag", "prefer": "all",
                                                         "messages": [{"role": "user", "content": TALL}]})
        assert chat.status_code == 200, chat.text
        assert {c["doc_id"] for c in chat.json()["conflicts"]} == {GUIDE, ARTICLE}
        assert "without saying which is right" in fake.prompts[-1].messages[-1]["content"]
        ask = client.post("/v1/ask", json={"question": TALL})
        assert ask.status_code == 200, ask.text
        assert [c["doc_id"] for c in ask.json()["conflicts"]] == [GUIDE, ARTICLE]  # RAG_PREFER: newest first
        bad = client.post("/v1/ask", json={"question": TALL, "prefer": "oldest"})
        assert bad.status_code == 422 and "prefer" in bad.text  # native routes: 422 (OpenAI ones: 400)


FIGHTERS = "How many fighters does ISIS-K have in Afghanistan?"  # seeds gold s57, the issue's own example
LATER = "004_1dece5685c29ddfe.txt"  # Koneska (2022): "around 4,000 combatants", dense rank 14 over the collection


def test_a_side_the_ranking_hides_is_searched_for_in_each_document(seeded_settings, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    def answerer(docs: int, fake: FakeGenerator | None = None):  # type: ignore[no-untyped-def]
        settings = seeded_settings.model_copy(update={"side_search_docs": docs, "judge": False})
        return Components(settings, embedder=embedder, generators={"llamacpp": fake or FakeGenerator()}).answerer

    top = answerer(0).retrieve(FIGHTERS, None, None)  # side search off
    assert len(top) == seeded_settings.answer_top_k
    assert not any("4,000 combatants" in p.text for p in top)  # the ranking alone hides the later source
    widened = answerer(5).retrieve(FIGHTERS, None, None)
    assert widened[: len(top)] == top and [p.doc_id for p in widened[len(top):]] == [LATER]
    assert "4,000 combatants" in widened[-1].text
    who = "Who has led ISIS-K since 2020?"  # not a number or a date: the same passages
    assert answerer(5).retrieve(who, None, None) == answerer(0).retrieve(who, None, None)

    # End to end: the model gives the 2,000 of the passage it was shown; the later 4,000 is added, cited to its source.
    fake = FakeGenerator([cite("about 2,000 fighters", "ISIS-K has about 2,000 fighters in Afghanistan [{n}].")])
    answer = answerer(5, fake).run(FIGHTERS).answer()
    assert {c["value"] for c in answer.conflicts} == {"2,000", "4,000"}, answer.conflicts
    later = next(c for c in answer.conflicts if c["value"] == "4,000")
    assert later["doc_id"] == LATER and f"[{later['n']}]" in answer.answer and "4,000" in answer.answer
    assert "The passages disagree" in fake.prompts[0].messages[-1]["content"]


OFTEN = "How often does ISIS-K carry out attacks in Afghanistan?"  # seeds gold s60


def test_how_often_compares_counts_per_period_and_reads_the_subject_from_the_chunk_before(seeded_settings,  # type: ignore[no-untyped-def]
                                                                                          embedder: Embedder) -> None:
    from rag.generation.conflicts import _counted_nouns, _values

    assert _counted_nouns(OFTEN) == ["carry", "attacks"]
    # A rate is a count per period, compared per year; a number with no period is a total, not an answer
    assert _values("The group has averaged 14 attacks per month since 2021.", OFTEN, "count", ["attacks"], embedder) == \
        [("14 attacks per month", 168.0)]
    assert _values("In 2015-2021, ISIS-K carried out more than a dozen attacks in Afghanistan each year.", OFTEN, "count",
                   ["attacks"], embedder) == [("more than a dozen attacks in Afghanistan each year", 12.0)]
    assert _values("ISIS-K has launched nearly 100 attacks in Afghanistan.", OFTEN, "count", ["attacks"], embedder) == []
    assert _values("It stages 2 attacks a month.", OFTEN, "count", ["attacks"], embedder)[0][1] == \
        _values("It stages 24 attacks a year.", OFTEN, "count", ["attacks"], embedder)[0][1]  # the same rate

    # End to end over the seeds: Koneska's "The group has averaged 14 attacks per month" is its document's third
    # passage for the question, and names IS-K only in the chunk before it.
    c = Components(seeded_settings.model_copy(update={"judge": False}), embedder=embedder, generators={"llamacpp": FakeGenerator()})
    a = c.answerer
    prompt = a.build_prompt(OFTEN, a.retrieve(OFTEN, None, None))
    sides = find_conflicts(OFTEN, prompt.context, c.embedder, "newest", c.index.aliases().with_all_names,
                           preceding=lambda: c.retriever.preceding_texts([x.passage for x in prompt.context]))
    assert [(s.value, s.doc_id) for s in sides] == [("14 attacks per month", LATER),
                                                    ("more than a dozen attacks in Afghanistan each year", "002_2399800fba452946.txt")]
    # without the chunk before, the added passage never names what the question asks about
    assert not find_conflicts(OFTEN, prompt.context, c.embedder, "newest", c.index.aliases().with_all_names, min_names=1.0)


def test_a_count_for_another_actors_event_is_not_a_side(embedder: Embedder) -> None:
    """Seeds s62/s63 (unanswerable): the Taliban attack's 35 dead is not a value for an ISIS-K bombing or an ISIS
    attack; a name the question uses, or one inside a compound ("the anti-Taliban group"), is no other actor."""
    from rag.generation.conflicts import _other_actor

    def same(text: str) -> str:
        return text

    taliban = "Also in July, 35 people were killed in a Taliban attack on government workers in Kabul."
    assert _other_actor(taliban, "How many people were killed in the ISIS-K bombing of Kabul airport?", same, embedder)
    assert _other_actor(taliban, "How many people died in the ISIS attack on the Iraqi Embassy in Kabul?", same, embedder)
    assert not _other_actor(taliban, "How many people died in the Taliban attack on government workers?", same, embedder)
    anti = "IS-K is now the most active anti-Taliban group in Afghanistan, estimated to number around 4,000 combatants."
    assert not _other_actor(anti, "How many fighters does the group have in Afghanistan?", same, embedder)
