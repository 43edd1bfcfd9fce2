"""PDF files -> one row per window of a page: the page's text layer, windowed like text, and the page as it looks.

pypdfium2 (PDFium, Chromium's PDF engine) opens the file and reads one page at a time, closing it before the
next: the loader is a generator, so a 2,000-page PDF is never in memory whole, only the page being read.

A page gives, with a model that embeds images (`"image" in spec.modalities`):
- its text layer (PDFium's text extraction; "\\r\\n" line ends made "\\n"), cut into windows of
  `spec.text_window_tokens` tokens exactly as a text file is (text.py: nothing is cut off, windows overlap);
- the page rendered as an image, letterboxed: scaled so that its longer side is `spec.image_size` pixels and
  centred on a white square of that side. The model's image path centre-crops to a square (parts.fit_image);
  a square is kept whole, so no part of a portrait or landscape page is cropped away. The render scale follows
  from the page's size, so its pixels are at most image_size² whatever size the page declares.
- one row per window. The page's FIRST window is an interleaved item (Text(window), Image(page)); its later
  windows are Text only. The picture is embedded once per page, so a dense page costs one image, not one per
  window, and every window is still found by its text. A page with no text layer (a scan) is one row
  (Text(""), Image(page)): found by what it shows, and like every page an image+text item.
With a text-only model the pages are not rendered: their windows are Text rows, and a page without text gives
no row (the pipeline says once per run that images were not embedded).

Positions: `segment` is the row's index in the file (0, 1, ...); `start` and `end` say where its window lies:
the integer part is the page number (1-based), the fraction the character offset in the page's text in units
of PAGE_CHAR (1e-7): start 7.000012 is page 7, character 120; `end` likewise (exclusive). `page_of` decodes
them. A row of a page without text has start == end == its page number.

Failures are LoadErrors with a one-line reason: a PDF encrypted with a password ("encrypted PDF: it needs a
password"; one that only restricts printing or copying opens and embeds), a file PDFium cannot parse ("corrupt
or truncated PDF"; PDFium rebuilds a damaged cross-reference table when it can, and the pages it recovers are
embedded), more than `spec.max_document_pages` pages (refused before any page is read), no page readable. A
page that PDFium cannot load or render is skipped with a note. A page tree that claims millions of pages is
counted by its real pages. Page sizes are PDFium's (an empty or absurd MediaBox reads as US Letter); the
render is bounded by image_size whatever they are. A page's text beyond PAGE_TEXT_CHARS is dropped with a note.
Nothing in a PDF is run: PDFium's forms are never initialised, actions are ignored, and this build of PDFium has
no JavaScript engine (no V8: `pypdfium2.version.PDFIUM_INFO.flags` is empty); attachments are not read.
Time and memory are bounded per file by the worker pool (limits.py): a page that takes longer than
`spec.file_timeout_s` to give its rows, or a worker past `spec.max_worker_memory_mb`, fails the file.

PDFium is not thread-safe, not even on different documents: every call into it here holds _PDFIUM (never
across a `yield`). The loaders run in worker processes (pool.py), one file at a time each.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from gemb2.data.segments import SNIPPET_CHARS, LoadError, LoadSpec, Segment
from gemb2.data.text import text_windows
from gemb2.parts import Image, Text

PAGE_CHAR = 1e-7  # a row's start/end: page number + character offset in the page's text * PAGE_CHAR
PAGE_TEXT_CHARS = 1_000_000  # a page's text beyond this is dropped (a hostile page; offsets stay < 1/PAGE_CHAR)
_PDFIUM = threading.RLock()  # held around every call into PDFium

# PDFium's FPDF_GetLastError codes (fpdfview.h) -> the reason a document does not open
_OPEN_ERRORS = {
    0: "corrupt PDF: no page could be found (an empty or malformed page tree)",  # it opened, with 0 pages
    1: "corrupt PDF: PDFium could not read it (unknown error)",
    2: "cannot read the PDF file",
    3: "corrupt or truncated PDF: not a valid PDF structure",
    4: "encrypted PDF: it needs a password",
    5: "encrypted PDF: unsupported security handler",
    6: "corrupt PDF: page not found or content error",
}


def page_position(page: int, char: int) -> float:
    """A row's start or end for character offset `char` of page `page` (1-based)."""
    return page + char * PAGE_CHAR


def page_of(position: float) -> tuple[int, int]:
    """(page, character offset) of a document row's start or end."""
    page = math.floor(position + PAGE_CHAR / 2)
    return page, round((position - page) / PAGE_CHAR)


def load_pdf(path: str, spec: LoadSpec) -> Iterator[Segment]:
    doc = _open(path)
    try:
        with _PDFIUM:
            n_pages = len(doc)
        if n_pages > spec.max_document_pages:
            raise LoadError(f"PDF has {n_pages} pages > max_document_pages {spec.max_document_pages}")
        render = "image" in spec.modalities
        index = skipped = 0
        for page_no in range(1, n_pages + 1):
            page = _read_page(doc, page_no, spec.image_size if render else None)
            if page is None:
                skipped += 1
                continue
            for seg in _page_segments(page_no, *page, index, spec):
                yield seg
                index += 1
        if skipped == n_pages and n_pages:
            raise LoadError(f"no page of the PDF could be read ({n_pages} pages)")
        if skipped:
            warnings.warn(f"{skipped} of {n_pages} PDF pages could not be read and were skipped", stacklevel=1)
    finally:
        with _PDFIUM:
            doc.close()


def _open(path: str) -> Any:
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            return pdfium.PdfDocument(path)  # reads the trailer and cross-reference table, no page yet
        except pdfium.PdfiumError as e:
            code = getattr(e, "err_code", None)
            raise LoadError(_OPEN_ERRORS.get(code, f"corrupt PDF: {e}")) from None  # type: ignore[arg-type]


def _read_page(doc: Any, page_no: int, side: int | None) -> tuple[str, np.ndarray | None] | None:
    """(text, letterboxed (side, side, 3) RGB or None when side is None) of a page; None if it cannot be read."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            page = doc[page_no - 1]
        except pdfium.PdfiumError:
            return None
        try:
            text = _page_text(page, page_no)
            pixels = None if side is None else _render(page, side)
        except pdfium.PdfiumError:
            return None
        finally:
            page.close()
    return text, pixels


def _page_text(page: Any, page_no: int) -> str:
    textpage = page.get_textpage()
    try:
        if textpage.count_chars() <= 0:
            return ""
        text = textpage.get_text_bounded()  # full Unicode (get_text_range is UCS-2 only)
    finally:
        textpage.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > PAGE_TEXT_CHARS:
        warnings.warn(f"page {page_no}: text beyond {PAGE_TEXT_CHARS} characters dropped", stacklevel=1)
        text = text[:PAGE_TEXT_CHARS]
    return text


def _render(page: Any, side: int) -> np.ndarray:
    """The whole page, its longer side scaled to `side` pixels, centred on a white (side, side, 3) square."""
    import cv2

    w, h = page.get_size()  # points, after the page's /Rotate (PDFium applies it when rendering too)
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        w = h = 1.0  # PDFium gives US Letter for an empty MediaBox; this is for anything stranger
    bitmap = page.render(scale=side / max(w, h), rev_byteorder=True)  # RGB, white background
    try:
        pixels = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8)  # (h, w, 3) copy: the bitmap is freed
    finally:
        bitmap.close()
    ph, pw = pixels.shape[:2]
    if ph > side or pw > side:  # rounding may give side + 1
        scale = side / max(ph, pw)
        dsize = (max(1, min(side, round(pw * scale))), max(1, min(side, round(ph * scale))))
        pixels = cv2.resize(pixels, dsize, interpolation=cv2.INTER_AREA)
        ph, pw = pixels.shape[:2]
    square = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - ph) // 2, (side - pw) // 2
    square[top : top + ph, left : left + pw] = pixels
    return square


def _page_segments(page_no: int, text: str, pixels: np.ndarray | None, index: int, spec: LoadSpec) -> Iterator[Segment]:
    """The rows of one page: its text windows, the first with the page image (see the module docstring)."""
    image = None if pixels is None else Image(pixels)
    first = True
    for start, end in text_windows(text, spec):
        chunk = text[start:end]
        parts = (Text(chunk), image) if first and image is not None else (Text(chunk),)
        yield Segment(
            index, page_position(page_no, start), page_position(page_no, end), parts, text=chunk[:SNIPPET_CHARS]
        )
        index += 1
        first = False
    if first and image is not None:  # no text on the page: the page as it looks, with its empty text layer
        yield Segment(index, float(page_no), float(page_no), (Text(""), image), text=None)
