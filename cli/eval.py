"""`gemb2 eval MANIFEST --model M`: Recall@1/5/10, nDCG@10 and MRR of a model on a manifest's tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import common
from .common import warn

COLUMNS = ("recall@1", "recall@5", "recall@10", "ndcg@10", "mrr")


def eval_(  # registered as `gemb2 eval`
    manifest: Annotated[list[Path], typer.Argument(help="One or more JSONL manifests (the training format).")],
    model: Annotated[str | None, typer.Option(help="A preset or a model folder. [env: GEMB2_MODEL]")] = None,
    task: Annotated[list[str] | None, typer.Option(help="Only this task (repeatable).")] = None,
    dim: Annotated[int | None, typer.Option(help="A Matryoshka prefix of the model's vectors.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Items per forward pass.")] = 32,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N. [env: GEMB2_DEVICE]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {task: {metric: value}} as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines on stderr.")] = False,
) -> None:
    """Evaluate retrieval: each task's queries against all of that task's documents."""
    from gemb2.pipeline.models import evaluate

    model_id, results = evaluate(
        common.model_name(model),
        common.device_name(device),
        manifest,
        dim=dim,
        batch_size=batch_size,
        tasks=task,
        log=(lambda s: None) if quiet else warn,
    )
    if as_json:
        typer.echo(json.dumps({"model": model_id, "tasks": results}))
        return
    width = max(len(common.printable(t)) for t in results) if results else 4
    typer.echo(f"{'task':<{width}}  {'queries':>7}  {'docs':>6}  " + "  ".join(f"{c:>9}" for c in COLUMNS))
    for t, r in results.items():
        typer.echo(
            f"{common.printable(t):<{width}}  {r['queries']:>7}  {r['documents']:>6}  "
            + "  ".join(f"{100 * r[c]:>9.2f}" for c in COLUMNS)
        )
