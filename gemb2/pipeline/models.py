"""The commands that make or judge a model: `gemb2 init` (assemble one from pretrained parts), `gemb2 train`
(run a recipe) and `gemb2 eval` (retrieval metrics on manifests), as the command line runs them.

Their own errors are `gemb2.errors` errors already (RecipeError, ManifestError: usage; ItemLoadError, a missing
weight package: fatal). The ValueErrors the model and training code raise for a setting that cannot work
(every parameter frozen, a batch not divisible by the ranks, an unknown task) are reported here with their
message; `GEMB2_DEBUG=1` shows where they came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from gemb2.errors import FatalError, Gemb2Error, UsageError
from gemb2.pipeline.open import check_dim, load_model


def assemble_model(parts, out: Path, *, force: bool = False):
    """Assemble a model from `parts` (a gemb2.pretrained.assemble.Parts) and save it as the folder `out`."""
    from gemb2.model.io import save_pretrained
    from gemb2.pretrained.assemble import assemble, assemble_config

    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not force:
        raise UsageError(f"{out} exists and is not empty (use --force to replace it)")
    try:
        assemble_config(parts)  # option errors first, before any weight is read
    except FileNotFoundError as e:  # a weight package missing (MissingWeightsError names the pip package)
        raise FatalError(str(e)) from e
    except ValueError as e:  # options that do not go together
        raise UsageError(str(e)) from e
    try:
        model = assemble(parts)
        save_pretrained(model, out)
    except (OSError, ValueError) as e:
        raise FatalError(f"cannot assemble the model: {e}") from e
    return model


def train(recipe, *, output: Path | None, resume: bool, log: Callable[[str], None]) -> Path:
    """Run a loaded recipe (gemb2.train.recipe) stage by stage; the final model folder."""
    from gemb2.train.recipe import run_recipe

    try:
        return run_recipe(recipe, output=output, resume=resume, log=log)
    except Gemb2Error:
        raise
    except (ValueError, OSError, FloatingPointError) as e:  # a setting that cannot work, a full disk, a diverged loss
        raise FatalError(str(e)) from e


def evaluate(
    source: str,
    device: str | None,
    manifests: Sequence[Path],
    *,
    dim: int | None = None,
    batch_size: int = 32,
    tasks: Sequence[str] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[str, dict]:
    """Recall@k, nDCG@10 and MRR of the model `source` names on each task of `manifests`: (model id, results)."""
    from gemb2.eval.retrieval import evaluate as run

    for p in manifests:
        if not p.is_file():
            raise UsageError(f"no such manifest: {p}")
    m = load_model(source, device)
    check_dim(m, dim)
    try:
        names = list(tasks) if tasks else None
        results = run(m, [str(p) for p in manifests], dim=dim, batch_size=batch_size, tasks=names, log=log)
    except Gemb2Error:
        raise
    except (KeyError, ValueError) as e:  # a task that is not in the manifests
        raise UsageError(str(e)) from e
    return m.model_id, results
