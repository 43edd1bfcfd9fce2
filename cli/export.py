"""`gemb2 export model|embeddings`: the model as ONNX graphs for serving; a table's vectors as files for other systems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import common

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
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="onnx, or hf: an EmbeddingGemma 2 model (a fine-tuned one) as a Hugging Face / sentence-transformers folder.",
        ),
    ] = "onnx",
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
    manifest.json saying how to prepare and feed each one (an EmbeddingGemma 2 folder: its text and image graphs,
    with its tokenizer and processor configs). Each graph is checked against the model with
    onnxruntime when it is installed; a graph that cannot be exported is listed in the manifest's not_exported
    with its reason, and the others are written. OUT appears complete or not at all. Needs `pip install 'gemb2[onnx]'`.
    Exit codes: 0 written (some graphs may be listed as not exported), 1 export failed, 2 bad options or OUT exists."""
    from gemb2.pipeline.export import export_model as run

    manifest = run(common.model_name(model), out, dim=dim, force=force, fmt=format_)
    if format_ == "hf":  # a summary: the folder and its files
        typer.echo(json.dumps(manifest, ensure_ascii=False) if as_json else common.printable(str(out)))
        return
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
    from gemb2.pipeline.export import export_table

    summary = export_table(common.db_uri(db), common.table_name(table), out, fmt=to, batch_rows=batch_rows)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        common.warn(f"exported {summary['rows']} rows of dimension {summary['dim']} to {', '.join(summary['files'])}")
