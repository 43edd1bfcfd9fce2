"""Files that must never be accepted as weights, written by the tests themselves."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class _RunsCode:
    """Unpickling this calls os.system: a loader that executes pickles would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Custom:
    """A plain custom class: not a tensor, not allowed by weights_only."""

    def __init__(self):
        self.weight = [1.0, 2.0]


def write_code_pickle(path: Path, marker: Path) -> Path:
    """A pickle (protocol 2, the first byte torch's legacy format has) whose loading would run a command."""
    path.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}, protocol=2))
    return path


def write_custom_pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"weight": Custom()}, protocol=2))
    return path


def write_text(path: Path) -> Path:
    path.write_text("these are not weights\n" * 4, encoding="utf-8")
    return path
