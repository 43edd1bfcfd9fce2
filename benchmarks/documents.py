"""PDF pages through `gemb2 embed` (tiny and the default model) against decoding them alone, on this CPU.

    python benchmarks/documents.py [--pdfs 20] [--pages 100] [--workers 2] [--default-pdfs 10] [--skip-default]

Prints pages/s, each measured in the same run, each a whole process (interpreter start and imports included):
  (baseline) decode alone: pypdfium2 opens each PDF, renders every page at the model's image size and extracts
             its text layer, in a pool of the same number of spawned processes as gemb2's loader workers;
  (b)        `gemb2 embed DIR --model tiny --workers W` (loaders, the tiny model, LanceDB); goal >= 0.8x (a);
  (c)        the same with the default model (gemb2-mini), against the baseline at its image size (224 px).
The start-up of `gemb2 embed` alone (the same command on an empty folder) is printed beside them.
The PDFs are like reports: A4 pages of dense text (~50 lines, ~4 KB of text: 3 windows of the model's
text budget), every tenth page with a picture, one page in twenty a scan (a picture and no text layer).
Results go in BENCHMARKS.md (section "PDF pages").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")

from benchmarks._util import WORDS  # noqa: E402


def _decode_pages(args: tuple[str, int]) -> int:
    """The baseline's work on one PDF: every page rendered at `side` pixels (longer side) and its text extracted."""
    import pypdfium2 as pdfium

    path, side = args
    doc = pdfium.PdfDocument(path)
    n = len(doc)
    for i in range(n):
        page = doc[i]
        w, h = page.get_size()
        bitmap = page.render(scale=side / max(w, h), rev_byteorder=True)
        bitmap.to_numpy().copy()
        bitmap.close()
        textpage = page.get_textpage()
        textpage.get_text_bounded()
        textpage.close()
        page.close()
    doc.close()
    return n


def decode_only(side: int, workers: int, paths: list[str]) -> None:
    """The baseline as its own process (`documents.py --decode-only SIDE WORKERS PATH...`): prints the pages."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        print(sum(pool.imap_unordered(_decode_pages, [(p, side) for p in paths])))


def make_pdfs(root: str, n_pdfs: int, n_pages: int, scans: bool = False) -> int:
    """`n_pdfs` PDFs of `n_pages` pages each (reports, or with `scans` pictures without text); the page count."""
    import numpy as np
    from fpdf import FPDF
    from PIL import Image as PILImage

    from tests.pdfs import picture

    rng = np.random.default_rng(0)
    pic = PILImage.fromarray(picture(200))
    os.makedirs(root, exist_ok=True)
    for k in range(n_pdfs):
        pdf = FPDF(unit="mm")
        pdf.set_font("helvetica", size=10)
        pdf.set_auto_page_break(False)
        for p in range(n_pages):
            pdf.add_page()
            scan = scans or p % 20 == 19
            if p % 10 == 9 or scan:
                pdf.image(pic, x=55, y=150 if not scan else 40, w=100)
            for line in range(0 if scan else (27 if p % 10 == 9 else 50)):
                pdf.text(15, 15 + line * 5.3, " ".join(rng.choice(WORDS, size=14)))
        pdf.output(os.path.join(root, f"{'scan' if scans else 'report'}{k:03d}.pdf"))
    return n_pdfs * n_pages


def decode_only_seconds(folder: str, side: int, workers: int) -> float:
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--decode-only", str(side), str(workers), *paths]
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
    dt = time.perf_counter() - t0
    assert int(out.stdout) > 0
    return dt


def embed_seconds(folder: str, model: str, workers: int) -> tuple[float, dict]:
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    cmd = [sys.executable, "-m", "gemb2", "embed", folder, "--model", model, "--db", db, "--json", "--quiet"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", LANCE_LOG="error")
    t0 = time.perf_counter()
    out = subprocess.run([*cmd, "--workers", str(workers)], check=True, capture_output=True, env=env, timeout=3600)
    dt = time.perf_counter() - t0
    shutil.rmtree(db)
    report = json.loads(out.stdout)
    assert report["files_failed"] == 0, report["failures"]
    return dt, report


def image_size(model: str) -> int:
    from gemb2 import load_model

    return load_model(model).config.image_size


def model_alone_rows_per_s(folder: str, model_name: str) -> float:
    """The model's `encode` alone on the rows gemb2 makes of the folder (loaded beforehand, in this process,
    batched by modality as the pipeline batches them): how fast the pipeline could be if loading were free."""
    from gemb2 import load_model
    from gemb2.data.load import load_file
    from gemb2.parts import item_modality
    from gemb2.pipeline.loadspec import load_spec_for

    model = load_model(model_name)
    spec = load_spec_for(model)
    by_kind: dict[str, list] = {}
    for name in sorted(os.listdir(folder)):
        for seg in load_file(os.path.join(folder, name), "document", spec):
            by_kind.setdefault(item_modality(seg.parts), []).append(seg.parts)
    t0 = time.perf_counter()
    for items in by_kind.values():
        for i in range(0, len(items), 32):
            model.encode(items[i : i + 32], task="document", batch_size=32)
    return sum(map(len, by_kind.values())) / (time.perf_counter() - t0)


def compare(folder: str, pages: int, model: str, workers: int, start_up: float) -> None:
    side = image_size(model)
    base = pages / decode_only_seconds(folder, side, workers)
    dt, report = embed_seconds(folder, model, workers)
    ours, rows = pages / dt, report["rows_added"]
    alone = model_alone_rows_per_s(folder, model)
    name = os.path.basename(folder)
    print(f"\n## {name}, {model}: {pages} pages in {report['files_added']} PDFs, {workers} loader processes, {side} px")
    print(f"(baseline) pypdfium2 render + text alone:   {base:8.1f} pages/s")
    print(
        f"gemb2 embed --model {model:<12}          {ours:8.1f} pages/s  ({ours / base:.2f}x baseline; "
        f"{rows} rows, {rows / dt:.1f} rows/s; start-up alone {start_up:.1f} s)"
    )
    print(f"the model's encode alone, same rows:      {alone * pages / rows:8.1f} pages/s  ({alone:.1f} rows/s)")


def main() -> None:
    if sys.argv[1:2] == ["--decode-only"]:
        decode_only(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdfs", type=int, default=20)
    ap.add_argument("--pages", type=int, default=100, help="pages per PDF")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--skip-default", action="store_true", help="only the tiny model")
    ap.add_argument("--default-pdfs", type=int, default=10, help="PDFs of the reports the default model embeds")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gemb2-bench-pdf-")
    try:
        reports = os.path.join(tmp, "reports")
        pages = make_pdfs(reports, a.pdfs, a.pages)
        scanned = make_pdfs(os.path.join(tmp, "scans"), a.pdfs, a.pages, scans=True)
        os.makedirs(os.path.join(tmp, "empty"))
        start_up, _ = embed_seconds(os.path.join(tmp, "empty"), "tiny", a.workers)
        compare(reports, pages, "tiny", a.workers, start_up)
        compare(os.path.join(tmp, "scans"), scanned, "tiny", a.workers, start_up)
        if not a.skip_default:
            fewer = os.path.join(tmp, "reports-for-default")
            compare(fewer, make_pdfs(fewer, a.default_pdfs, a.pages), "gemb2-mini", a.workers, start_up)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
