"""`gemb2 data to-shards MANIFEST OUT`: a JSONL training manifest as WebDataset tar shards (one shard set per task)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import common

data_app = typer.Typer(help="Training data: convert JSONL manifests to WebDataset shards.", no_args_is_help=True)


@data_app.command("to-shards")
def to_shards(
    manifest: Annotated[Path, typer.Argument(help="A JSONL training manifest (see gemb2/data/manifest.py).")],
    out: Annotated[Path, typer.Argument(help="Folder for the shards (<task>-000000.tar...); must hold no .tar yet.")],
    shard_size: Annotated[int, typer.Option("--shard-size", help="Examples per shard.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar on stderr.")] = False,
) -> None:
    """Write a manifest's examples as tar shards: files copied in as members under their extension, texts as .txt
    members, each example's .json naming them. Deterministic; a recipe's `data: {shards: PATTERN}` reads them."""
    from gemb2.data.shard_write import count_examples
    from gemb2.data.shard_write import to_shards as convert

    bar = None
    if not quiet and common.stderr_is_tty() and manifest.is_file():
        from tqdm import tqdm

        bar = tqdm(total=count_examples(manifest), unit="example", desc="sharding", file=sys.stderr)
    try:
        summary = convert(manifest, out, shard_size, progress=bar.update if bar else (lambda n: None))
    finally:
        if bar:
            bar.close()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for task, t in summary["tasks"].items():
        typer.echo(f"{common.printable(task)}: {t['examples']} examples in {t['shards']} shard(s): {t['pattern']}")
