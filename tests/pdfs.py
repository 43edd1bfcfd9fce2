"""PDFs the tests make: fpdf2 (the `test` extra) for real documents, a few lines of raw PDF for hostile ones.

- `write_pdf(path, [PdfPage("Hello"), PdfPage(picture=True), PdfPage("Wide", landscape=True, rotate=90)])`
- `write_many_pages(path, 1200)`: one short line per page, fast (about 0.2 s for 1,200 pages)
- `write_raw_pdf(path, [b"<< /Type /Catalog /Pages 2 0 R >>", ...])`: objects 1..n with a correct xref
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

PICTURE_RGB = (200, 30, 30)  # the red disc of a picture page (on a blue ground)


@dataclass
class PdfPage:
    text: str = ""  # printed in 11 pt Helvetica, wrapped; "" for no text layer
    picture: bool = False  # a raster image (a red disc on blue), like a scan: no text layer of its own
    landscape: bool = False  # A4 landscape instead of portrait
    size_mm: tuple[float, float] | None = None  # a custom page size (width, height), instead of A4
    rotate: int = 0  # the page's /Rotate (0, 90, 180, 270)
    edge_marks: bool = False  # black bars along the top and bottom edges (to see that nothing is cropped)


def picture(size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8: a red disc on a blue ground."""
    yy, xx = np.mgrid[:size, :size]
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (30, 60, 200)
    img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2] = PICTURE_RGB
    return img


def write_pdf(path: str | os.PathLike, pages: list[PdfPage], *, user_password: str | None = None) -> str:
    """A PDF of `pages` (folders made as needed); with `user_password`, encrypted so that it opens only with it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    from fpdf import FPDF
    from PIL import Image as PILImage

    pdf = FPDF(unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=11)
    for p in pages:
        pdf.add_page(orientation="L" if p.landscape else "P", format=p.size_mm or "A4")
        w, h = pdf.w, pdf.h
        if p.edge_marks:
            pdf.set_fill_color(0, 0, 0)
            pdf.rect(0, 0, w, 8, style="F")
            pdf.rect(0, h - 8, w, 8, style="F")
        if p.picture:
            pdf.image(PILImage.fromarray(picture()), x=w * 0.2, y=h * 0.2, w=w * 0.6)
        if p.text:
            pdf.set_xy(15, 15)
            pdf.multi_cell(w - 30, 5, p.text)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-" + user_password, user_password=user_password)
    pdf.output(str(path))
    rotated = {i: p.rotate for i, p in enumerate(pages) if p.rotate}
    if rotated:
        _rotate(str(path), rotated)
    return str(path)


def _rotate(path: str, rotations: dict[int, int]) -> None:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        for i, degrees in rotations.items():
            doc[i].set_rotation(degrees)
        tmp = path + ".tmp"
        doc.save(tmp)
    finally:
        doc.close()
    os.replace(tmp, path)


def write_many_pages(path: str | os.PathLike, n: int, line: str = "Page {n}: the quick brown fox.") -> str:
    """A PDF of `n` A4 pages, page i holding the one line `line.format(n=i)` (1-based)."""
    from fpdf import FPDF

    pdf = FPDF(unit="mm")
    pdf.set_font("helvetica", size=11)
    for i in range(1, n + 1):
        pdf.add_page()
        pdf.text(20, 20, line.format(n=i))
    pdf.output(str(path))
    return str(path)


def write_raw_pdf(path: str | os.PathLike, objects: list[bytes], root: int = 1) -> str:
    """A PDF of `objects` (the bodies of objects 1..n) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    with open(path, "wb") as f:
        f.write(out)
    return str(path)


def one_page_objects(media_box: bytes = b"0 0 612 792", catalog_extra: bytes = b"", count: int = 1) -> list[bytes]:
    """Objects of a raw one-page PDF (catalog, page tree claiming `count` pages, the page) for write_raw_pdf."""
    return [
        b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [%s] >>" % media_box,
    ]
