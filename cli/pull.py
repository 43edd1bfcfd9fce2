"""`gemb2 pull`: download a model folder (EmbeddingGemma 2, or any `hf:ORG/NAME`) into the Hugging Face cache."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from . import common


def pull(
    source: Annotated[str, typer.Argument(help="embeddinggemma-2 (google/embeddinggemma-2) or hf:ORG/NAME.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {source, path} as one JSON object.")] = False,
) -> None:
    """Download a model through huggingface_hub (safetensors, JSON and tokenizer files only; never pickles) into
    its cache, where `--model NAME` finds it offline. Exit codes: 0 done, 1 the Hub or the network failed (try
    again later: what was fetched is kept, never loaded half), 2 unknown name or repo, or offline (HF_HUB_OFFLINE)."""
    from gemb2.pretrained.sources import pull as run_pull

    path = run_pull(source)
    if as_json:
        typer.echo(json.dumps({"source": source, "path": str(path)}))
    else:
        typer.echo(common.printable(str(path)))
