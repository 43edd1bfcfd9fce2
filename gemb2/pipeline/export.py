"""`gemb2 export`: the model as ONNX graphs (gemb2/export/onnx.py; EmbeddingGemma 2: gemb2/export/gemma2.py) or, for
EmbeddingGemma 2, a Hugging Face / sentence-transformers folder (`--format hf`: pretrained/gemma2_save.py), a table's
vectors as files (embeddings.py).

Failures are `gemb2.errors` errors that say what was not written: UsageError (a bad format, --dim or OUT),
FatalError (the files could not be written), Interrupted (SIGINT/SIGTERM; an ONNX export leaves nothing).
"""

from __future__ import annotations

import signal
from pathlib import Path

from gemb2.errors import FatalError, Interrupted, UsageError, interrupted_by
from gemb2.pipeline.open import check_dim, load_model, open_table


def export_model(source: str, out: Path, *, dim: int | None = None, force: bool = False, fmt: str = "onnx") -> dict:
    """Export the model `source` names as ONNX graphs into the folder `out` (all or nothing); the manifest."""
    from gemb2.export.onnx import export_onnx

    if fmt == "hf":
        return export_hf_folder(source, out, dim=dim, force=force)
    if fmt != "onnx":
        raise UsageError(f"--format must be onnx or hf, not {fmt!r}")
    if out.exists() and not out.is_dir():  # said before the model is loaded (export_onnx checks again)
        raise UsageError(f"{out} exists and is not a folder")
    if out.exists() and not force and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty (use --force to replace it)")
    from gemb2.model.model import Gemb2Model
    from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2

    m = load_model(source, "cpu")
    if not isinstance(m, Gemb2Model | EmbeddingGemma2):
        raise UsageError(
            f"{source}: ONNX export of this model family is not there yet (gemb2's own models and EmbeddingGemma 2)"
        )
    check_dim(m, dim)
    try:
        if isinstance(m, EmbeddingGemma2):
            from gemb2.export.gemma2 import export_gemma2

            return export_gemma2(m, out, dim=dim, force=force)
        return export_onnx(m, str(out), dim=dim, force=force)
    except OSError as e:
        raise FatalError(f"ONNX export failed, nothing written to {out}: {e}") from e
    except KeyboardInterrupt as e:  # Interrupted (SIGINT 130, SIGTERM 143), or a bare Ctrl-C
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        raise Interrupted(signum, f"{interrupted_by(signum)}, nothing written to {out}") from e


def export_hf_folder(source: str, out: Path, *, dim: int | None = None, force: bool = False) -> dict:
    """`--format hf`: an EmbeddingGemma 2 model (e.g. a fine-tuned one) as a Hugging Face / sentence-transformers
    folder, checked against the model once written (pretrained/gemma2_save.py); a summary."""
    from gemb2.pretrained.gemma2_save import export_hf
    from gemb2.train.gemma2 import is_gemma2

    if dim is not None:
        raise UsageError("--dim: an hf folder keeps the whole vector (sentence-transformers truncates: truncate_dim)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
        raise UsageError(f"{out} exists and is not an empty folder (use --force to replace it)")
    m = load_model(source, "cpu")
    if not is_gemma2(m):
        raise UsageError(f"{source}: --format hf writes EmbeddingGemma 2 models; gemb2's own models export as onnx")
    return export_hf(m, out, force=force)  # type: ignore[arg-type]


def export_table(uri: str, table: str, out: Path, *, fmt: str = "parquet", batch_rows: int = 8192) -> dict:
    """Stream every row of the table into `out` as safetensors, Parquet or JSON lines; a summary (rows, dim, files)."""
    from gemb2.export.embeddings import FORMATS, export_embeddings

    if fmt not in FORMATS:
        raise UsageError(f"--to must be one of {', '.join(FORMATS)}, not {fmt!r}")
    store = open_table(uri, table)
    try:
        return export_embeddings(store, str(out), fmt, batch_rows=batch_rows)
    except OSError as e:
        raise FatalError(f"writing {out} failed: {e}") from e
