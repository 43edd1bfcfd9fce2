"""The PDF loader on PDFs the tests make: rows per page window, the page image letterboxed, positions, and every
hostile input (encrypted, corrupt, truncated, huge page counts and sizes, JavaScript, attachments) failing with a
one-line reason or giving a bounded result."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gemb2.data.pdf as pdf_loader
from gemb2.data.discover import modality_of
from gemb2.data.load import load_file
from gemb2.data.pdf import PAGE_CHAR, page_of, page_position
from gemb2.data.segments import LoadError, LoadSpec, embeddable
from gemb2.data.sniff import sniff
from gemb2.data.text import text_windows
from gemb2.parts import Image, Text, fit_image, item_modality
from tests.pdfs import PICTURE_RGB, PdfPage, one_page_objects, write_many_pages, write_pdf, write_raw_pdf

SIDE = 64
SPEC = LoadSpec(image_size=SIDE, text_window_tokens=24, text_overlap_tokens=4)
TEXT_ONLY = LoadSpec(modalities=("text",), text_window_tokens=24, text_overlap_tokens=4)
LONG = " ".join(f"word{i}" for i in range(100))  # 100 whitespace words: 5 windows of 24 with overlap 4


def load(path, spec=SPEC):
    return list(load_file(str(path), "document", spec))


def kinds(seg) -> list[str]:
    return [type(p).__name__ for p in seg.parts]


def dark(pixels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that are not white paper."""
    return pixels.min(axis=2) < 128


def test_pdf_is_a_document_by_extension_and_content(tmp_path):
    path = write_pdf(tmp_path / "a.pdf", [PdfPage("Hello")])
    assert modality_of(path) == "document" and modality_of("X.PDF") == "document"
    assert sniff(path) == "document"
    assert embeddable("document", ("text",)) and not embeddable("image", ("text",))
    (tmp_path / "fake.pdf").write_text("just text")
    with pytest.raises(LoadError, match=r"content is not a PDF document \(extension \.pdf, looks like text\)"):
        load(tmp_path / "fake.pdf")


def test_text_pages_give_windows_like_text_the_first_with_the_page_image(tmp_path):
    path = write_pdf(tmp_path / "a.pdf", [PdfPage(LONG), PdfPage("Second page.")])
    segs = load(path)
    assert [s.index for s in segs] == list(range(len(segs)))
    page1 = [s for s in segs if page_of(s.start)[0] == 1]
    assert len(page1) == 5 and [page_of(s.start)[0] for s in segs[5:]] == [2]
    assert kinds(page1[0]) == ["Text", "Image"] and all(kinds(s) == ["Text"] for s in page1[1:])
    assert item_modality(page1[0].parts) == "mixed" and item_modality(page1[1].parts) == "text"
    # the windows are text.py's windows of the page's text, and every word is in one (nothing cut off)
    page_text = "".join(page1[0].text or "")
    spans = [(page_of(s.start)[1], page_of(s.end)[1]) for s in page1]
    words = " ".join(s.parts[0].text for s in page1).split()
    assert set(words) == set(LONG.split())
    assert spans == list(text_windows(_page_text(path, 1), SPEC)) and page_text.startswith("word0 word1")
    assert all(a[0] < b[0] < a[1] for a, b in zip(spans, spans[1:]))  # overlapping, advancing
    assert kinds(segs[5]) == ["Text", "Image"] and segs[5].text == "Second page."
    img = segs[0].parts[1].pixels
    assert img.shape == (SIDE, SIDE, 3) and img.dtype == np.uint8 and fit_image(img, SIDE) is img  # kept whole


def _page_text(path: str, page_no: int) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        return pdf_loader._page_text(doc[page_no - 1], page_no)
    finally:
        doc.close()


def test_an_image_only_page_is_one_image_and_text_item(tmp_path):
    path = write_pdf(tmp_path / "scan.pdf", [PdfPage(picture=True)])
    (seg,) = load(path)
    assert kinds(seg) == ["Text", "Image"] and seg.parts[0] == Text("") and seg.text is None
    assert seg.start == seg.end == 1.0 and item_modality(seg.parts) == "mixed"
    px = seg.parts[1].pixels.astype(int)
    red = (abs(px - np.array(PICTURE_RGB)).sum(axis=2) < 90).sum()
    assert red > SIDE * SIDE * 0.05  # the picture is in the rendered page


def test_a_mixed_page_has_its_text_and_its_picture(tmp_path):
    path = write_pdf(tmp_path / "mixed.pdf", [PdfPage("A caption above the picture.", picture=True)])
    (seg,) = load(path)
    assert kinds(seg) == ["Text", "Image"] and seg.parts[0].text == "A caption above the picture."
    px = seg.parts[1].pixels.astype(int)
    assert (abs(px - np.array(PICTURE_RGB)).sum(axis=2) < 90).sum() > 0


@pytest.mark.parametrize(
    ("page", "bars"),
    [
        (PdfPage("Portrait", edge_marks=True), "sides"),  # taller than wide: white bars left and right
        (PdfPage("Landscape", landscape=True, edge_marks=True), "top"),  # wider: white bars top and bottom
        (PdfPage("Rotated portrait", rotate=90, edge_marks=True), "top"),  # /Rotate 90 shows it landscape
    ],
)
def test_pages_are_letterboxed_so_nothing_is_cropped(tmp_path, page, bars):
    (seg,) = load(write_pdf(tmp_path / "p.pdf", [page]))
    assert seg.parts[0].text == page.text  # the text layer does not care about rotation
    img = seg.parts[1].pixels
    ink = dark(img)
    rows, cols = np.where(ink.any(axis=1))[0], np.where(ink.any(axis=0))[0]
    if bars == "sides":  # the black bars at the page's top and bottom edges reach the image's top and bottom
        assert rows.min() <= 1 and rows.max() >= SIDE - 2
        assert not ink[:, :4].any() and not ink[:, -4:].any()  # white letterbox at the sides
    else:  # landscape: the page spans the width; white above and below
        assert cols.min() <= 1 and cols.max() >= SIDE - 2
        assert not ink[:4].any() and not ink[-4:].any()
    if page.rotate:  # the marks along the (unrotated) top and bottom edges now run down the left and right
        assert ink[:, :2].any() and ink[:, -2:].any()


def test_positions_encode_page_and_character():
    for page in (1, 7, 9_999):
        for char in (0, 1, 120, 999_999):
            assert page_of(page_position(page, char)) == (page, char)
    assert page_position(7, 120) == pytest.approx(7.000012) and PAGE_CHAR == 1e-7


def test_a_text_only_model_gets_the_text_layer_and_no_render(tmp_path, monkeypatch):
    def no_render(*a, **k):
        raise AssertionError("a text-only model's pages must not be rendered")

    monkeypatch.setattr(pdf_loader, "_render", no_render)
    path = write_pdf(tmp_path / "a.pdf", [PdfPage("Text page."), PdfPage(picture=True), PdfPage("Third.")])
    segs = load(path, TEXT_ONLY)
    assert [(kinds(s), page_of(s.start)[0], s.text) for s in segs] == [
        (["Text"], 1, "Text page."),
        (["Text"], 3, "Third."),
    ]  # the page without text gives no row


def test_encrypted_pdfs(tmp_path):
    locked = write_pdf(tmp_path / "locked.pdf", [PdfPage("Secret")], user_password="pw")
    with pytest.raises(LoadError, match=r"^encrypted PDF: it needs a password$"):
        load(locked)
    # an owner password alone (restrictions on printing, copying) opens without one: it embeds
    restricted = tmp_path / "restricted.pdf"
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica")
    pdf.add_page()
    pdf.cell(0, 10, "Open to read")
    pdf.set_encryption(owner_password="owner")
    pdf.output(str(restricted))
    assert [s.text for s in load(restricted)] == ["Open to read"]


def test_corrupt_and_truncated_pdfs_fail_with_one_line_reasons(tmp_path):
    write_pdf(tmp_path / "good.pdf", [PdfPage(LONG), PdfPage("Two")])
    good = (tmp_path / "good.pdf").read_bytes()
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    (tmp_path / "head.pdf").write_bytes(good[:200])
    with pytest.raises(LoadError, match=r"^corrupt or truncated PDF"):
        load(tmp_path / "junk.pdf")
    with pytest.raises(LoadError, match=r"^corrupt or truncated PDF"):
        load(tmp_path / "head.pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(LoadError, match="empty file"):
        load(tmp_path / "empty.pdf")
    for cut in (0.3, 0.6, 0.9, 0.99):  # PDFium rebuilds what it can: rows of the pages it recovers, or a reason
        (tmp_path / "cut.pdf").write_bytes(good[: int(len(good) * cut)])
        try:
            segs = load(tmp_path / "cut.pdf")
        except LoadError as e:
            assert "\n" not in str(e) and "PDF" in str(e)
        else:
            assert [s.index for s in segs] == list(range(len(segs)))


def test_a_thousand_pages_stream_one_page_at_a_time(tmp_path, monkeypatch):
    path = write_many_pages(tmp_path / "long.pdf", 1_200)
    read = []
    real = pdf_loader._read_page
    monkeypatch.setattr(pdf_loader, "_read_page", lambda doc, n, side: read.append(n) or real(doc, n, side))
    segs = load_file(path, "document", SPEC)
    first = next(segs)
    assert read == [1] and first.text == "Page 1: the quick brown fox."  # lazily: one page read for one row
    rss0 = _rss()
    n = 1 + sum(1 for _ in segs)
    assert n == 1_200 and read == list(range(1, 1_201))
    assert _rss() - rss0 < 64 << 20  # the pages are closed as they go: memory does not grow with them


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_too_many_pages_are_refused_before_any_page_is_read(tmp_path, monkeypatch):
    path = write_many_pages(tmp_path / "long.pdf", 30)
    monkeypatch.setattr(pdf_loader, "_read_page", lambda *a: pytest.fail("no page may be read"))
    with pytest.raises(LoadError, match=r"^PDF has 30 pages > max_document_pages 20$"):
        load(path, LoadSpec(max_document_pages=20))


def test_a_page_tree_claiming_millions_of_pages_counts_its_real_pages(tmp_path):
    path = write_raw_pdf(tmp_path / "claims.pdf", one_page_objects(count=3_000_000))
    (seg,) = load(path)
    assert seg.start == 1.0 and kinds(seg) == ["Text", "Image"]


@pytest.mark.parametrize(
    "box",
    [b"0 0 14400 14400", b"0 0 0 0", b"0 0 1e12 1e12", b"0 0 -300 200", b"0 0 1 14400", b"0 0 14400 1"],
    ids=["200-inch", "zero", "absurd", "negative", "thin", "flat"],
)
def test_absurd_page_sizes_give_a_bounded_image(tmp_path, box):
    (seg,) = load(write_raw_pdf(tmp_path / "s.pdf", one_page_objects(box)))
    assert seg.parts[1].pixels.shape == (SIDE, SIDE, 3)


def test_javascript_and_attachments_are_never_run_or_read(tmp_path):
    import pypdfium2.version

    assert not pypdfium2.version.PDFIUM_INFO.flags  # no V8 (JavaScript) and no XFA in this PDFium build
    js = b"/OpenAction 4 0 R /Names << /JavaScript << /Names [(x) 4 0 R] >> >>"
    objs = one_page_objects(catalog_extra=js) + [b"<< /S /JavaScript /JS (while (true) {}) >>"]
    (seg,) = load(write_raw_pdf(tmp_path / "js.pdf", objs))  # an endless script: ignored, no hang
    assert kinds(seg) == ["Text", "Image"]
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica")
    pdf.add_page()
    pdf.cell(0, 10, "Has an attachment")
    pdf.embed_file(bytes=b"MZ\x90\x00 not for us" * 1000, basename="payload.exe")
    pdf.output(str(tmp_path / "att.pdf"))
    assert [s.text for s in load(tmp_path / "att.pdf")] == ["Has an attachment"]


def test_a_page_that_cannot_be_read_is_skipped_with_a_note(tmp_path, monkeypatch):
    path = write_many_pages(tmp_path / "three.pdf", 3)
    real = pdf_loader._read_page
    monkeypatch.setattr(pdf_loader, "_read_page", lambda doc, n, side: None if n == 2 else real(doc, n, side))
    with pytest.warns(UserWarning, match="1 of 3 PDF pages could not be read"):
        segs = load(path)
    assert [page_of(s.start)[0] for s in segs] == [1, 3]
    monkeypatch.setattr(pdf_loader, "_read_page", lambda *a: None)
    with pytest.raises(LoadError, match=r"^no page of the PDF could be read \(3 pages\)$"):
        load(path)


def test_pages_with_too_much_text_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_loader, "PAGE_TEXT_CHARS", 50)
    with pytest.warns(UserWarning, match="page 1: text beyond 50 characters dropped"):
        segs = load(write_pdf(tmp_path / "a.pdf", [PdfPage(LONG)]))
    assert max(page_of(s.end)[1] for s in segs) <= 50


def test_image_parts_are_model_ready(tmp_path):
    segs = load(write_pdf(tmp_path / "a.pdf", [PdfPage("x", picture=True)]), LoadSpec(image_size=224))
    (img,) = [p for p in segs[0].parts if isinstance(p, Image)]
    assert img.pixels.shape == (224, 224, 3) and img.pixels.flags.c_contiguous
