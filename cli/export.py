"""`gemb2 export model|embeddings`: the model as ONNX graphs for serving; a table's vectors as files for other systems."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer

from . import common
from .common import EXIT_USAGE, die

export_app = typer.Typer(
    help="Export the model (ONNX) or a table's embeddings (safetensors, Parquet, JSON lines).", no_args_is_help=True
)


@export_app.command("model")
def export_model(
    out: Annotated[
        Path,
        typer.Argument(
            help="Folder to write the graphs, tokenizer.json and manifest.json into (must not exist, or be empty, unless --force)."
        ),
    ],
    format_: Annotated[str, typer.Option("--format", help="Only onnx for now.")] = "onnx",
    model: Annotated[
        str | None, typer.Option(help="Model: a preset name (tiny) or a model folder. [env: GEMB2_MODEL]")
    ] = None,
    dim: Annotated[
        int | None, typer.Option(help="Bake in a Matryoshka truncation to this many dimensions (one of the model's).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUT if it exists (the new folder is renamed in once complete).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest on stdout.")] = False,
) -> None:
    """One ONNX graph per input kind (text, image, audio, video, video_frames) with dynamic batch and length, and a
    manifest.json saying how to prepare and feed each one. Each graph is checked against the model with
    onnxruntime when it is installed; a graph that cannot be exported is listed in the manifest's not_exported
    with its reason, and the others are written. OUT appears complete or not at all. Needs `pip install 'gemb2[onnx]'`.
    Exit codes: 0 written (some graphs may be listed as not exported), 1 export failed, 2 bad options or OUT exists."""
    from gemb2.export.onnx import ExportError, Interrupted, export_onnx

    if format_ != "onnx":
        die(f"--format must be onnx, not {format_!r}", EXIT_USAGE)
    if out.exists() and not out.is_dir():
        die(f"{out} exists and is not a folder", EXIT_USAGE)
    if out.exists() and not force and any(out.iterdir()):
        die(f"{out} exists and is not empty (use --force to replace it)", EXIT_USAGE)
    m = common.load_model(common.model_name(model), "cpu")
    common.check_dim(m, dim)
    try:
        manifest = export_onnx(m, str(out), dim=dim, force=force)
    except ExportError as e:
        die(str(e), EXIT_USAGE)
    except OSError as e:
        die(f"ONNX export failed, nothing written to {out}: {e}")
    except Interrupted as e:  # SIGINT 130, SIGTERM 143
        die(
            f"{'terminated' if e.signum == signal.SIGTERM else 'interrupted'}, nothing written to {out}", 128 + e.signum
        )
    except KeyboardInterrupt:
        die(f"interrupted, nothing written to {out}", 128 + signal.SIGINT)
    except Exception as e:  # never a traceback: one line, nothing half-written (export_onnx removed its temp folder)
        first = next((line for line in str(e).splitlines() if line.strip()), "")
        die(f"ONNX export failed, nothing written to {out}: {type(e).__name__}: {first}")
    if as_json:
        typer.echo(json.dumps(manifest, ensure_ascii=False))
    else:
        for name, g in manifest["graphs"].items():
            typer.echo(f"{name}\t{common.printable(str(out / g['file']))}")
        typer.echo(f"manifest\t{common.printable(str(out / 'manifest.json'))}")
    for name, why in manifest["not_exported"].items():
        common.warn(f"no {name} graph: {why}")


@export_app.command("embeddings")
def export_embeddings(
    out: Annotated[
        Path, typer.Argument(help="Output file (safetensors also writes a .jsonl index of ids and paths next to it).")
    ],
    to: Annotated[str, typer.Option("--to", help="safetensors | parquet | jsonl")] = "parquet",
    db: Annotated[str | None, typer.Option(help="LanceDB database folder or URI. [env: GEMB2_DB]")] = None,
    table: Annotated[str | None, typer.Option(help="Table name. [env: GEMB2_TABLE; default: media]")] = None,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows read and written at a time: bounds memory.")] = 8192,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary (rows, dim, files) on stdout.")] = False,
) -> None:
    """Stream every row of a table (key, path, modality, segment, start, end, text, vector) into a file."""
    from gemb2.export.embeddings import FORMATS, ExportError
    from gemb2.export.embeddings import export_embeddings as run

    if to not in FORMATS:
        die(f"--to must be one of {', '.join(FORMATS)}, not {to!r}", EXIT_USAGE)
    store = common.open_table(db, table)
    try:
        summary = run(store, str(out), to, batch_rows=batch_rows)
    except ExportError as e:
        die(str(e), EXIT_USAGE)
    except OSError as e:
        die(f"writing {out} failed: {e}")
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        common.warn(f"exported {summary['rows']} rows of dimension {summary['dim']} to {', '.join(summary['files'])}")
