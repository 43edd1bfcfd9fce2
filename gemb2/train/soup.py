"""Model soup: the uniform average of fine-tuned checkpoints' weights.

Reference: Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned models
improves accuracy without increasing inference time" (ICML), section 2: the uniform soup. Gemini
Embedding (Lee et al. 2025, section 3.2) soups checkpoints of its fine-tuning runs. All ingredients
must share one architecture (same config apart from the name) and tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gemb2.model import save_pretrained
from gemb2.pretrained.sources import load_gemb2_model as load_model


def soup(folders: Sequence[str | Path], out: str | Path, name: str | None = None) -> Path:
    """Average the weights of the model folders into a new model folder `out`."""
    if not folders:
        raise ValueError("a soup needs at least one model")
    base = load_model(str(folders[0]))
    total = {k: v.detach().double().clone() for k, v in base.state_dict().items()}
    for f in folders[1:]:
        m = load_model(str(f))
        if m.config.replace(name=base.config.name) != base.config:
            raise ValueError(f"{f}: its config differs from {folders[0]}'s; a soup needs one architecture")
        if m.tokenizer.digest != base.tokenizer.digest:
            raise ValueError(f"{f}: its tokenizer differs from {folders[0]}'s")
        for k, v in m.state_dict().items():
            total[k] += v.double()
    n = len(folders)
    state = {k: (v / n).to(base.state_dict()[k].dtype) for k, v in total.items()}
    base.load_state_dict(state)
    if name:
        base.config = base.config.replace(name=name)
    return save_pretrained(base, out)
