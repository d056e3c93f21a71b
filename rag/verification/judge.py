"""The model's own judgement of a claim, read as a probability rather than as text.

The generator is asked a yes/no question ("does this passage state this answer to the question?") and the
answer is read from the next-token probabilities of "yes" and "no": P(yes) / (P(yes) + P(no)). A fixed
instruction with worked examples from a clearly invented domain comes first, so backends can keep it
cached (llama.cpp restores it from a saved state; servers with prompt caching reuse it) and only the
passage, question and claim are new for each check.

A check without a claim asks the other question: "does this passage answer this exact question, about the same
subject, event and time?", given the window with the sentence before it (which names what "it" is). It reads the
passage against the question alone, without the fluent answer that restates the question. On the dev splits'
answered rows it ranked right answers above wrong ones better than the claim check (AUROC 0.84 against 0.78; the
window alone, with the first wording and examples, 0.82; eval/reports/issue12-stop22-answerability.md). It does
not catch every near miss: seeds s62's hospital-attack window still "answers" how many died at Kabul airport
(P(yes) 0.63, down from 0.91).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SYSTEM = "You are a strict fact-checker. You decide whether a passage states a given answer to a question."
_BRIDGE = ("Morrow Bridge", "The Morrow Bridge opened in 1911 and was closed to traffic in 1968, when the new road crossing was finished.")
_ORCHARD = ("Tresco Orchard", "The orchard was not planted by the monks of St Aldhelm; it was laid out by the Tresco family in 1790.")
_OBSERVATORY = ("Kestrel Hill Observatory", "Dr. Ilse Varga has directed the observatory at Kestrel Hill since 2004. She came from the University of Brno.")
_FESTIVAL = ("Harrow Summer Festival", "The festival offers three events: a regatta, a choir contest and a pie fair. About 12,000 people attended in 2019.")
_ENGINE = ("Pelham Engine", "The Pelham engine, built in 1889, produced about 5.5 horsepower and weighed two tonnes.")
_GUILD = ("Harlow Weavers' Guild", "The Harlow Weavers' Guild was formed in 1702 by cloth merchants. Since 1950, it has been led by Marta Kell, a former mill owner.")
_FLOOD = ("Carrow Floods", "The river burst its banks at Carrow in March 1921 and flooded the wool mill. Eleven workers drowned. A second flood reached the Carrow railway station in 1923.")
# (passage, question, proposed answer, verdict): each a way a small model's answers go wrong, or a right one.
EXAMPLES = [
    (_BRIDGE, "When did the Morrow Bridge open?", "It opened in 1968.", "no"),
    (_BRIDGE, "When did the Morrow Bridge open?", "The Morrow Bridge opened in 1911.", "yes"),
    (_ORCHARD, "Who planted the orchard?", "The monks of St Aldhelm planted the orchard.", "no"),
    (_ORCHARD, "Who planted the orchard?", "It was laid out by the Tresco family.", "yes"),
    (_OBSERVATORY, "Who has directed the observatory since 2004?", "Kestrel Hill has directed the observatory since 2004.", "no"),
    (_OBSERVATORY, "Who has directed the observatory since 2004?", "Since 2004 the observatory has been led by Ilse Varga.", "yes"),
    (_OBSERVATORY, "When was the observatory founded?", "The observatory was founded in 2004.", "no"),
    (_OBSERVATORY, "Where did the director come from?", "Dr. Varga is Czech.", "no"),
    (_FESTIVAL, "What events does the festival offer?", "A regatta, a choir contest and a pie fair.", "yes"),
    (_FESTIVAL, "What events does the festival offer?", "The festival offers only a regatta.", "no"),
    (_FESTIVAL, "How many people attended the festival in 2019?", "More than 15,000 people attended.", "no"),
    (_ENGINE, "How powerful was the Pelham engine?", "It produced 5,500 hp.", "no"),
    (_ENGINE, "How heavy was the Pelham engine?", "It weighed 2 t.", "yes"),
    (_BRIDGE, "Is the Morrow Bridge still open to traffic?", "No, it was closed to traffic in 1968.", "yes"),
]
ANSWERS_SYSTEM = "You are a strict reader. You decide whether a passage answers a question."
# (passage, question, verdict): questions the passage answers, and near misses it does not (another date, person,
# quantity or qualifier than the one asked for; a reason it never gives).
ANSWERS_EXAMPLES = [
    (_BRIDGE, "When did the Morrow Bridge open?", "yes"),
    (_BRIDGE, "Who designed the Morrow Bridge?", "no"),
    (_ORCHARD, "Who laid out the orchard?", "yes"),
    (_OBSERVATORY, "When was the observatory founded?", "no"),
    (_FESTIVAL, "How many people attended the festival in 2019?", "yes"),
    (_FESTIVAL, "How many people attended the festival in 2021?", "no"),
    (_ENGINE, "How fast could the Pelham engine run?", "no"),
    (_OBSERVATORY, "Who has directed the observatory since 2004?", "yes"),
    (_ENGINE, "How powerful was the Pelham engine?", "yes"),
    (_BRIDGE, "How many cars crossed the bridge each day before it closed?", "no"),
    (_ORCHARD, "Why did the monks of St Aldhelm plant the orchard?", "no"),
    (_OBSERVATORY, "Which university did Dr. Varga study at?", "no"),
    # A subject named only in the sentence before ("it has been led by"), and a toll of another event of the same kind
    (_GUILD, "Who has led the weavers' guild since 1950?", "yes"),
    (_FLOOD, "How many people died when the Carrow railway station flooded?", "no"),
    (_FLOOD, "How many workers drowned in the 1921 flood at Carrow?", "yes"),
    (_GUILD, "Who founded the weavers' guild in 1950?", "no"),
]
YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
NO_WORDS = ("no", "No", " no", " No", "NO")


@dataclass(frozen=True)
class Check:
    """One claim to judge against one passage."""

    title: str
    passage: str
    question: str
    claim: str | None = None  # None: does the passage answer the question at all (no answer is proposed)


def ask(title: str, passage: str, question: str, claim: str | None = None) -> str:
    if claim is None:
        return (f"Passage from \"{title}\":\n{passage}\n\nQuestion: {question}\n\n"
                "Does the passage answer this exact question, about the same subject, event and time? Reply yes or no.")
    return (f"Passage from \"{title}\":\n{passage}\n\nQuestion: {question}\nProposed answer: {claim}\n\n"
            "Does the passage state this answer to the question, with nothing added or changed? Reply yes or no.")


def prefix_messages(answers: bool = False) -> list[dict[str, str]]:
    """The fixed part: instruction and worked examples (the same for every check of a kind, so it can stay cached).
    ``answers``: the prefix of the checks without a claim."""
    system, shots = ((ANSWERS_SYSTEM, [(doc, question, None, verdict) for doc, question, verdict in ANSWERS_EXAMPLES])
                     if answers else (SYSTEM, EXAMPLES))
    messages = [{"role": "system", "content": system}]
    for (title, passage), question, claim, verdict in shots:
        messages += [{"role": "user", "content": ask(title, passage, question, claim)},
                     {"role": "assistant", "content": verdict}]
    return messages


def check_messages(check: Check) -> list[dict[str, str]]:
    return [*prefix_messages(answers=check.claim is None),
            {"role": "user", "content": ask(check.title, check.passage, check.question, check.claim)}]


def fixed_parts(answers: bool = False) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Two checks of one kind (``answers``: without a claim) that differ only after the fixed part: a backend caches
    what they share."""
    first, second = (None, None) if answers else ("d", "z")
    return check_messages(Check("a", "b", "c", first)), check_messages(Check("w", "x", "y", second))


class Judge(Protocol):
    """A generator that can read its yes/no probabilities. ``judge`` returns None when it cannot (e.g. a server
    without logprobs): verification then relies on the rules and says so."""

    def judge(self, checks: list[Check]) -> list[float] | None:
        ...


def judge_of(generator: object) -> Judge | None:
    """The generator as a judge, if it can be one."""
    return generator if callable(getattr(generator, "judge", None)) else None  # type: ignore[return-value]


def yes_probability(yes_mass: float, no_mass: float) -> float:
    total = yes_mass + no_mass
    return yes_mass / total if total > 0 else 0.5
