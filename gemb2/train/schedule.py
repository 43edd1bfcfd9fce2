"""Learning-rate schedule: linear warmup, then cosine decay to a floor.

References: Goyal et al. 2017 ("Accurate, Large Minibatch SGD", section 2.2: gradual warmup);
Loshchilov and Hutter 2017 ("SGDR", eq. 5: cosine annealing). A pure function of the step, so a
resumed run needs no scheduler state beyond the step number.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, total: int, warmup: int, peak: float, floor_ratio: float = 0.0) -> float:
    """The learning rate for optimizer step `step` (0-based) of `total`."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = peak * floor_ratio
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
