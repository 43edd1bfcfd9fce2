"""LoRA: low-rank adapters on the backbone's linear layers, merged into the weights when saving.

Reference: Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", section 4.1:
h = W0 x + (alpha / r) * B A x, with W0 frozen, A (r, in) Gaussian-initialised and B (out, r) zero,
so training starts from exactly the pretrained function. The saved model is a plain gemb2 model:
`merged(model)` swaps every adapter for one nn.Linear with W0 + (alpha / r) B A while saving.

    wrapped = apply_lora(model.backbone, rank=8, alpha=16)   # names of the wrapped layers
    with merged(model):
        save_pretrained(model, folder)                       # the parameter names of a plain model
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

DEFAULT_TARGETS = ("query", "key", "value", "dense")  # BERT names: attention and MLP projections


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update. (..., in) -> (..., out)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and the reference code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T.to(x.dtype)) @ self.lora_B.T.to(x.dtype) * self.scale

    def merged_linear(self) -> nn.Linear:
        """A plain nn.Linear computing the same function."""
        b = self.base
        out = nn.Linear(
            b.in_features, b.out_features, bias=b.bias is not None, device=b.weight.device, dtype=b.weight.dtype
        )
        with torch.no_grad():
            out.weight.copy_(b.weight + (self.lora_B @ self.lora_A) * self.scale)
            if b.bias is not None:
                out.bias.copy_(b.bias)
        return out


def freeze(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Stop training the parameters whose names start with any of `prefixes` (a recipe's `freeze`); a prefix that
    matches nothing is a ValueError naming a real parameter."""
    names = dict(model.named_parameters())
    for prefix in prefixes:
        hit = [n for n in names if n.startswith(prefix)]
        if not hit:
            raise ValueError(f"freeze prefix {prefix!r} matches no parameter (e.g. {next(iter(names))!r})")
        for n in hit:
            names[n].requires_grad_(False)


def apply_lora(module: nn.Module, rank: int, alpha: float, targets: Sequence[str] = DEFAULT_TARGETS) -> list[str]:
    """Wrap every nn.Linear under `module` whose own name is in `targets`; returns their qualified names."""
    found = [
        (name, m)
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    ]
    if not found:
        raise ValueError(f"no linear layer named {', '.join(targets)} to put LoRA on")
    for name, lin in found:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, LoRALinear(lin, rank, alpha))
    return [n for n, _ in found]


@contextlib.contextmanager
def merged(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every LoRALinear is replaced by its merged nn.Linear (the adapters are put back after)."""
    swapped = []
    for name, m in list(model.named_modules()):
        if isinstance(m, LoRALinear):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, m.merged_linear())
            swapped.append((parent, attr, m))
    try:
        yield model
    finally:
        for parent, attr, m in swapped:
            setattr(parent, attr, m)
