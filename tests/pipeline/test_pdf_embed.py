"""PDFs through `run_embed` and a query: rows per page, the page in a hit, a text-only model's note, and a
sentence on page 7 of a 20-page PDF found on page 7 by gemb2-mini."""

from __future__ import annotations

import pytest

from gemb2 import load_model
from gemb2.data.pdf import page_of
from gemb2.model import Gemb2Model, tiny
from gemb2.parts import Text
from gemb2.pipeline.embed import EmbedOptions, run_embed
from gemb2.pipeline.query import query_vector, search
from gemb2.store import LanceStore
from tests.pdfs import PdfPage, write_pdf

OPTS = EmbedOptions(workers=0, batch_size=8)

TOPICS = [
    "Sourdough bread rises slowly because wild yeast ferments the dough overnight.",
    "The marathon runner drank water at every station along the coastal route.",
    "Volcanoes release ash and sulfur dioxide high into the stratosphere.",
    "The chess grandmaster sacrificed her queen to force checkmate in five moves.",
    "Honeybees communicate the direction of flowers with a waggle dance.",
    "The violinist tuned the strings before the evening concert began.",
    "The lighthouse keeper painted the spiral staircase bright orange every spring.",  # page 7
    "Glaciers carve U-shaped valleys as they slide down the mountains.",
    "The accountant reconciled the quarterly invoices with the bank statements.",
    "Octopuses can change the colour and texture of their skin in an instant.",
    "The train to the capital was delayed by snow on the tracks.",
    "Tomato plants need staking once the first fruit begins to form.",
    "The astronaut photographed the aurora from the space station window.",
    "A blacksmith quenches hot steel in oil to harden the blade.",
    "The toddler built a tower of wooden blocks and knocked it down laughing.",
    "Submarine sonar maps the ocean floor with pulses of sound.",
    "The bakery on the corner sells almond croissants every Sunday morning.",
    "Electric cars recover energy through regenerative braking.",
    "The museum restored a medieval tapestry depicting a unicorn hunt.",
    "Penguins huddle together to survive the antarctic winter wind.",
]


def _embed(root, model, **kw):
    store = LanceStore(str(root.parent / "db"), model=model.model_id, dim=model.config.out_dim)
    report = run_embed([str(root)], store, model_id=model.model_id, get_model=lambda: model, options=OPTS, **kw)
    return store, report


def _query(store, model, text: str, k: int = 3):
    return search(store, query_vector(model, [Text(text)]), k)


def test_pdf_rows_in_the_store_and_the_page_in_a_hit(tmp_path):
    model = load_model("tiny")
    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(root / "a.pdf", [PdfPage("First page text."), PdfPage(picture=True), PdfPage("Third page text.")])
    store, r = _embed(root, model)
    assert r.files_failed == 0 and r.files_added == 1 and r.rows_added == 3 and not r.notes
    rows = sorted(store.table.to_arrow().to_pylist(), key=lambda row: row["segment"])
    assert [(row["modality"], page_of(row["start"])[0], row["text"]) for row in rows] == [
        ("mixed", 1, "First page text."),
        ("mixed", 2, None),  # the image-only page: an image+text item
        ("mixed", 3, "Third page text."),
    ]
    hits = _query(store, model, "Third page text.")
    assert {h.page for h in hits} == {1, 2, 3}
    d = hits[0].to_dict()
    assert d["page"] == page_of(d["start"])[0]


def test_a_text_only_model_embeds_the_text_layer_and_says_so_once(tmp_path):
    model = Gemb2Model(tiny().replace(image_stem="none", audio_stem="none")).eval()
    assert "image" not in model.config.modalities
    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(root / "a.pdf", [PdfPage("Words on page one."), PdfPage(picture=True)])
    write_pdf(root / "b.pdf", [PdfPage("Words in b.")])
    store, r = _embed(root, model)
    assert r.files_failed == 0 and r.files_added == 2 and r.rows_added == 2
    assert len(r.notes) == 1 and "PDF pages are embedded by their text layer" in r.notes[0]
    assert {row["modality"] for row in store.table.to_arrow().to_pylist()} == {"text"}


def test_a_sentence_on_page_7_of_20_is_found_on_page_7(tmp_path):
    from gemb2.pretrained.sources import ModelSourceError
    from gemb2.pretrained.weights import MissingWeightsError

    try:
        model = load_model("gemb2-mini")
    except (MissingWeightsError, ModelSourceError) as e:
        pytest.skip(f"gemb2-mini's parts are not installed: {e}")
    root = tmp_path / "docs"
    root.mkdir()
    write_pdf(root / "twenty.pdf", [PdfPage(f"{t} Page {i + 1} of the handbook.") for i, t in enumerate(TOPICS)])
    store, r = _embed(root, model)
    assert r.files_failed == 0 and r.rows_added == 20
    hits = _query(store, model, "who painted the lighthouse stairs orange?")
    assert hits[0].page == 7, [(h.page, h.score) for h in hits]
