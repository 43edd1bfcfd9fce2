"""Combined queries: the main query plus weighted terms added (`--plus`) and subtracted (`--minus`).

    v = normalize(1 * v_query + sum_i w_i * v_plus_i - sum_j w_j * v_minus_j)

Each v is the unit-length embedding of its term alone: a text term with the query prompt (as a text query is
embedded), a file term as a document (as a query of files alone is embedded, so a file of the table matches
itself). A text term is always literal text ("2:30 pm" is text, never a weight and a term); a file is always
named by its own option (`--plus-file`, `--minus-file`); a weight is its own option, given in the order of the
terms of the option it belongs to (`--plus-weight` for `--plus`, `--plus-file-weight` for `--plus-file`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gemb2.errors import UsageError


@dataclass(frozen=True)
class Term:
    """One added or subtracted term: a literal text or a file, with its weight (> 0) and sign (+1 / -1)."""

    sign: int
    weight: float = 1.0
    text: str | None = None
    file: str | None = None

    @property
    def signed_weight(self) -> float:
        return self.sign * self.weight


def terms_from_options(
    plus: Sequence[str] = (),
    plus_weight: Sequence[float] = (),
    plus_file: Sequence[str] = (),
    plus_file_weight: Sequence[float] = (),
    minus: Sequence[str] = (),
    minus_weight: Sequence[float] = (),
    minus_file: Sequence[str] = (),
    minus_file_weight: Sequence[float] = (),
) -> list[Term]:
    """The terms the command line gives: each weight option applies, in order, to the terms of its option;
    terms without a weight weigh 1. More weights than terms, a weight <= 0 or not finite, an empty text or a
    file that does not exist: UsageError."""
    terms: list[Term] = []
    for option, values, weights, sign, is_file in (
        ("--plus", plus, plus_weight, 1, False),
        ("--plus-file", plus_file, plus_file_weight, 1, True),
        ("--minus", minus, minus_weight, -1, False),
        ("--minus-file", minus_file, minus_file_weight, -1, True),
    ):
        if len(weights) > len(values):
            raise UsageError(
                f"{len(weights)} {option}-weight for {len(values)} {option} term(s): "
                f"each weight goes with one {option}, in the order given"
            )
        for i, value in enumerate(values):
            w = float(weights[i]) if i < len(weights) else 1.0
            if not math.isfinite(w) or w <= 0:
                raise UsageError(f"{option}-weight {weights[i]}: a weight must be a positive number")
            if is_file:
                if not Path(value).is_file():
                    raise UsageError(f"{option} {value}: no such file")
                terms.append(Term(sign, w, file=value))
            else:
                if not value.strip():
                    raise UsageError(f"{option}: an empty text")
                terms.append(Term(sign, w, text=value))
    return terms


def term_vector(model, term: Term, spec, query: str = "query", document: str = "document") -> np.ndarray:
    """The unit vector of one term: a text with the query prompt (`query`), a file (its first segment) as a
    document (`document`: the table's documents' prompt)."""
    from gemb2.data.discover import modality_of
    from gemb2.parts import Text
    from gemb2.pipeline.query import query_parts

    if term.text is not None:
        return _unit(model.encode([[Text(term.text)]], task=query)[0])
    assert term.file is not None
    parts = query_parts(None, [(modality_of(term.file) or "unknown", term.file)], spec)
    return _unit(model.encode([list(parts)], task=document)[0])


def combine(main: np.ndarray | None, weighted: Sequence[tuple[float, np.ndarray]]) -> np.ndarray:
    """normalize(main + sum of w * v) over the (signed weight, unit vector) pairs; `main` (None: no main query)
    counts with weight 1. A combination with nothing positive in it, or whose terms cancel out, is a UsageError."""
    if main is None and not any(w > 0 for w, _ in weighted):
        raise UsageError("a combined query needs a query text, a file or a --plus term: --minus alone has no direction")
    total = np.zeros_like(weighted[0][1] if main is None else main, dtype=np.float64)
    if main is not None:
        total += _unit(main)
    for w, v in weighted:
        total += w * _unit(v)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise UsageError("the query's terms cancel out (their weighted sum is zero): nothing to search for")
    return (total / norm).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)
