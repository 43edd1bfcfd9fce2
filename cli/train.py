"""`gemb2 train RECIPE`: run a training recipe stage by stage (`--check` validates it without running)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import printable, warn


def train(
    recipe: Annotated[Path, typer.Argument(help="A recipe YAML file (see recipes/).")],
    check: Annotated[bool, typer.Option("--check", help="Validate the recipe (keys, values, files) and exit.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a killed run from its last checkpoint.")] = False,
    output: Annotated[Path | None, typer.Option(help="Output folder (default: the recipe's `output`).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines on stderr.")] = False,
) -> None:
    """Train (or fine-tune) a model as a recipe says: stages in order, checkpoints, resumable.

    Several processes: `torchrun --nproc-per-node N -m gemb2 train RECIPE`.
    """
    from gemb2.pipeline.models import train as run
    from gemb2.train.recipe import load_recipe

    r = load_recipe(recipe)
    if check:
        stages = [{"name": s.name, "type": s.type} for s in r.stages]
        if as_json:
            typer.echo(json.dumps({"recipe": str(recipe), "ok": True, "stages": stages}))
        else:
            typer.echo(f"{printable(str(recipe))}: ok ({len(stages)} stage(s): {', '.join(s['name'] for s in stages)})")
        return
    final = run(r, output=output, resume=resume, log=(lambda m: None) if quiet else warn)
    from gemb2.train.distributed import is_main

    if is_main():
        if as_json:
            typer.echo(json.dumps({"recipe": str(recipe), "model": str(final)}))
        else:
            typer.echo(printable(str(final)))
