"""Hostile and malformed inputs to the parsers: only clear DocumentErrors, bounded time and memory."""

from __future__ import annotations

import bisect
import resource
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import DocumentError
from rag.ingestion.chunking import chunk_text
from rag.ingestion.cleaning import clean_text
from rag.ingestion.readers import SUPPORTED_SUFFIXES, read_document

SUFFIXES = sorted(SUPPORTED_SUFFIXES) + [".exe", "", ".PDF", ".tar.gz"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_never_crash_the_reader(data: bytes, suffix: str) -> None:
    try:
        doc = read_document(data, f"file{suffix}")
    except DocumentError:
        return
    assert isinstance(doc.text, str)


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(st.text(max_size=3000),
                      # link markup, brackets and furniture words, so the kept runs inside a line are exercised too
                      st.lists(st.sampled_from(["[", "]", "(", ")", "#", "!", "word ", "Share", "\n", "[a b](#)", "x"]),
                               max_size=300).map("".join)))
def test_cleaning_keeps_an_exact_offset_map(text: str) -> None:
    clean = clean_text(text)
    ends = clean.clean_starts[1:] + [len(clean.text)]
    for start in range(0, len(clean.text), 7):
        run = bisect.bisect_right(clean.clean_starts, start) - 1
        end = min(start + 40, ends[run])  # a kept run is copied verbatim: a span inside one maps to the same characters
        s, e = clean.source_span(start, end)
        assert text[s:e] == clean.text[start:end]

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=4000))
def test_chunks_always_fit_and_are_exact(embedder, text: str) -> None:  # type: ignore[no-untyped-def]
    for chunk in chunk_text(text, embedder.encode, 96, 16, embedder.max_tokens):
        assert text[chunk.start : chunk.end] == chunk.text
        assert embedder.count_tokens(chunk.text) <= embedder.max_tokens


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "cp1252", "utf-8-sig"])
def test_other_encodings_decode_or_fail_clearly(encoding: str) -> None:
    data = "Le café coûte 3 €, dit Zoë.".encode(encoding, errors="replace")
    try:
        text = read_document(data, "a.txt").text
    except DocumentError as exc:
        assert "binary" in str(exc)  # UTF-16 has NUL bytes: refused as binary, not mis-decoded
        return
    assert "caf" in text


def test_huge_single_line_and_empty_files(embedder) -> None:  # type: ignore[no-untyped-def]
    line = "word " * 200_000
    doc = read_document(line.encode(), "big.txt")
    chunks = chunk_text(clean_text(doc.text).text, embedder.encode, 96, 16, embedder.max_tokens)
    assert len(chunks) > 100
    assert read_document(b"", "empty.txt").text == ""


def _pdf_with_stream(payload: bytes) -> bytes:
    """A minimal one-page PDF whose content stream is ``payload`` Flate-compressed."""
    stream = zlib.compress(payload, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_zip_bomb_disguised_as_pdf_is_bounded() -> None:
    bomb = _pdf_with_stream(b"0 0 m " * 60_000_000)  # ~360 MB of drawing ops from a ~350 KB file
    assert len(bomb) < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        doc = read_document(bomb, "report.pdf")
        assert len(doc.text) < 1_000_000
    except DocumentError:
        pass
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert time.monotonic() - started < 60
    assert grown_mb < 600, f"parsing the bomb grew memory by {grown_mb:.0f} MB"
