"""Numbers as values, whatever their spelling: "1,500,000", "1.5 million", "fifteen", "27 m" and "27 metres".

A claim's quantities must be the passage's quantities: same value, and the same unit when both name one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD_VALUES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12, "hundred": 100, "thousand": 1000,
}
_SHORT_SCALES = {"k": 1_000, "bn": 1_000_000_000}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 1_000_000_000_000}
# Unit spellings -> one canonical name. Only units whose confusion changes a fact; "per cent" and "%" are one.
_UNITS = {
    "m": "metre", "metre": "metre", "metres": "metre", "meter": "metre", "meters": "metre",
    "km": "kilometre", "kilometre": "kilometre", "kilometres": "kilometre", "kilometer": "kilometre", "kilometers": "kilometre",
    "cm": "centimetre", "mm": "millimetre", "ft": "foot", "foot": "foot", "feet": "foot", "inch": "inch",
    "inches": "inch", "mile": "mile", "miles": "mile", "nmi": "nautical mile", "yd": "yard", "yards": "yard",
    "kg": "kilogram", "kilogram": "kilogram", "kilograms": "kilogram", "grams": "gram", "lb": "pound",
    "lbs": "pound", "pounds": "pound", "tonne": "tonne", "tonnes": "tonne", "ton": "tonne", "tons": "tonne",
    "hp": "horsepower", "horsepower": "horsepower", "kw": "kilowatt", "kilowatts": "kilowatt", "mw": "megawatt",
    "%": "percent", "percent": "percent", "per cent": "percent", "sec": "second", "seconds": "second",
    "second": "second", "min": "minute", "mins": "minute", "minutes": "minute", "minute": "minute", "hr": "hour", "hours": "hour", "hour": "hour", "days": "day", "day": "day", "weeks": "week", "week": "week",
    "months": "month", "month": "month", "years": "year", "year": "year", "knots": "knot", "knot": "knot",
    "mph": "mile per hour", "km/h": "kilometre per hour", "litres": "litre", "liters": "litre", "gallons": "gallon", "acres": "acre", "hectares": "hectare", "ha": "hectare",
}
_WORD = "|".join(sorted(_WORD_VALUES, key=len, reverse=True))
_SCALE = "|".join(_SCALES)
_UNIT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = re.compile(
    rf"(?<![\w.])(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|(?:{_WORD})(?:(?:[ -]|\s+and\s+)(?:{_WORD}))*)"
    rf"(?:\s*(?P<scale>{_SCALE})\b|(?P<short>k|bn)\b)?"
    rf"(?:[ -]?(?P<unit>{_UNIT})(?![\w/]))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None
    text: str
    start: int


def _word_value(text: str) -> float | None:
    total, current = 0.0, 0.0
    for word in re.split(r"\s+and\s+|[ -]+", text.lower()):
        value = _WORD_VALUES.get(word)
        if value is None:
            return None
        if word in ("hundred", "thousand"):
            current = max(current, 1) * value
            if word == "thousand":
                total, current = total + current, 0.0
        else:
            current += value
    return total + current


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text`` with its value and (canonical) unit, if one follows it."""
    out: list[Quantity] = []
    for m in _QUANTITY.finditer(text):
        raw = m.group("num")
        if raw[0].isdigit():
            value: float | None = float(raw.replace(",", ""))
        else:
            value = _word_value(raw)
            if raw.lower() == "one" and not (m.group("scale") or m.group("unit")):
                continue  # "one of the", "no one": a pronoun far more often than a count
        if value is None:
            continue
        if m.group("scale"):
            value *= _SCALES[m.group("scale").lower()]
        elif m.group("short"):  # "£42k", "$3bn": written right after the digits
            value *= _SHORT_SCALES[m.group("short")]
        unit = m.group("unit")
        out.append(Quantity(value, _UNITS.get(unit.lower()) if unit else None, m.group(0).strip(), m.start()))
    return out


def values(text: str) -> set[float]:
    return {q.value for q in quantities(text)}


def missing_quantities(claim: str, source: str, exempt: str = "") -> list[Quantity]:
    """Quantities of ``claim`` that ``source`` does not state: value absent, or present only with another unit.

    Numbers also in ``exempt`` (the question) are not claims of the answer, but still must be in the source.
    """
    found = quantities(source)
    by_value: dict[float, set[str | None]] = {}
    for q in found:
        by_value.setdefault(q.value, set()).add(q.unit)
    missing = []
    for q in quantities(claim):
        units = by_value.get(q.value)
        if units is None or (q.unit is not None and None not in units and q.unit not in units):
            missing.append(q)
    return missing
