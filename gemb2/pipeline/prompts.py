"""`--prompt NAME`: a named prompt of the model (EmbeddingGemma 2: its folder's prompts), and how a table records
the prompt its documents were embedded with.

A table's model id is the model's id, plus "+prompt=NAME" when its documents carry a prompt other than the default
("document"). Files embedded with another prompt then do not match the table: a run with another `--prompt` is a
"table of another model" (--rebuild it, or use another table), so one table never mixes prompts; and a query knows
the prompt of the table's documents (a query of files alone is embedded with it, so a file finds itself).

    with_prompt("embeddinggemma-2@abc", "Clustering")  -> "embeddinggemma-2@abc+prompt=Clustering"
    split_prompt("embeddinggemma-2@abc+prompt=Clustering") -> ("embeddinggemma-2@abc", "Clustering")
"""

from __future__ import annotations

from gemb2.errors import UsageError

SUFFIX = "+prompt="
DOCUMENT = "document"


def with_prompt(model_id: str, prompt: str | None) -> str:
    """The id a table of `model_id` records when its documents are embedded with `prompt` (None: the default)."""
    return model_id if prompt is None or prompt == DOCUMENT else f"{model_id}{SUFFIX}{prompt}"


def split_prompt(table_model: str) -> tuple[str, str]:
    """A table's recorded model id -> (the model's id, its documents' prompt name)."""
    base, sep, prompt = table_model.partition(SUFFIX)
    return (base, prompt) if sep else (table_model, DOCUMENT)


def check_prompt(source: str, name: str) -> str:
    """`--prompt NAME` for the model `source` names, checked without loading its weights: a name of its folder's
    prompts (or query / document / none). A model without named prompts, or an unknown name, is a UsageError
    (listing the known names)."""
    from gemb2.pretrained.embedding_gemma2 import prompt_name, read_info
    from gemb2.pretrained.sources import resolve

    found = resolve(source)
    if not (isinstance(found, tuple) and found[0] == "gemma2"):
        raise UsageError(
            f"--prompt {name}: model {source!r} has no named prompts (an EmbeddingGemma 2 folder has); "
            "use --task document|query|none"
        )
    try:
        prompt_name(read_info(found[1], 0).prompts, name)
    except ValueError as e:  # PromptError, or a folder whose prompts file is broken
        raise UsageError(str(e)) from None
    return name
