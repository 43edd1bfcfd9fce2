"""The folders and files a walk passes over by rule, besides hidden names and OS junk (see discover.py).

    rules = Rules().within(folder, names)           # the rules in force among a folder's entries
    rules.ignored(path, name, is_dir)               # "node_modules" | "build output" | ".gemb2ignore" | None

The rules, in this order (each tested in tests/data/test_discover.py):

1. ``.gemb2ignore`` files, in gitignore syntax (https://git-scm.com/docs/gitignore, matched by `pathspec`): one in
   a folder applies to that folder's subtree, its patterns relative to that folder; a deeper file's patterns
   win over a higher one's, and a later pattern over an earlier one (so ``!keep.md`` re-includes). A folder that
   is passed over is not entered, so nothing under it can be re-included, as in git. A pattern that re-includes
   a folder also overrides rule 2 (``!build/`` walks a project's build folder).
2. Folders passed over by name, wherever they are: ``node_modules``, ``__pycache__``; and ``build``, ``dist`` and
   ``target`` beside a project file (PROJECT_FILES: pyproject.toml, setup.py, package.json, Cargo.toml...) -
   a build tool's output, while a ``build`` folder among photos is walked.
3. Environments: a folder holding ``pyvenv.cfg`` (a Python virtualenv) or ``conda-meta`` (a conda environment),
   checked in discover.py when the folder is listed (`is_environment`).

The folders named as roots are walked whatever their names; the rules apply below them. ``.gemb2ignore`` files
above a root do not apply. Only folder listings decide: no file is opened except the ``.gemb2ignore`` files.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

IGNORE_FILE = ".gemb2ignore"
MAX_IGNORE_BYTES = 1 << 20  # a larger .gemb2ignore is refused (its folder is skipped with the reason)
ALWAYS = frozenset({"node_modules", "__pycache__"})
OUTPUT_DIRS = frozenset({"build", "dist", "target"})
PROJECT_FILES = frozenset(
    {
        *("pyproject.toml", "setup.py", "setup.cfg", "package.json", "Cargo.toml", "pom.xml"),
        *("build.gradle", "build.gradle.kts", "CMakeLists.txt"),
    }
)
ENV_MARKERS = frozenset({"pyvenv.cfg", "conda-meta"})
RULED_NAMES = ALWAYS | OUTPUT_DIRS  # where no .gemb2ignore applies, only entries of these names need a look


class IgnoreFileError(Exception):
    """A .gemb2ignore that cannot be read or parsed; the message is the reason, for a person."""


def is_environment(names: Collection[str]) -> bool:
    """Whether a folder with these entry names is a Python virtualenv or a conda environment."""
    return not ENV_MARKERS.isdisjoint(names)


@dataclass(frozen=True)
class Rules:
    """The rules in force among one folder's entries: the .gemb2ignore specs from the root down (each with the
    folder it sits in), and whether the folder holds a project file."""

    specs: tuple[tuple[str, GitIgnoreSpec], ...] = ()
    project: bool = False

    def within(self, folder: str, names: Collection[str]) -> Rules:
        """The rules among the entries of `folder` (a folder under these rules), whose entry names are `names`
        (hidden ones included). Raises IgnoreFileError for a .gemb2ignore it cannot use."""
        specs = self.specs
        if IGNORE_FILE in names:
            specs += ((folder, read_ignore_file(os.path.join(folder, IGNORE_FILE))),)
        return Rules(specs, not PROJECT_FILES.isdisjoint(names))

    def ignored(self, path: str, name: str, is_dir: bool) -> str | None:
        """The rule that passes over the entry `path` (named `name`) of this folder, or None to keep it."""
        for folder, spec in reversed(self.specs):
            rel = path[len(folder) + 1 :].replace(os.sep, "/") + ("/" if is_dir else "")
            include = spec.check_file(rel).include
            if include is not None:
                return IGNORE_FILE if include else None
        if is_dir and name in ALWAYS:
            return name
        if is_dir and self.project and name in OUTPUT_DIRS:
            return "build output"
        return None


def read_ignore_file(path: str) -> GitIgnoreSpec:
    """A .gemb2ignore's patterns. Names that are not UTF-8 match as the walk sees them (surrogate escapes)."""
    import pathspec  # only where a .gemb2ignore exists: most walks never pay for the import

    try:
        if not os.path.isfile(path):
            raise IgnoreFileError(f"{IGNORE_FILE} is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in must not block
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_IGNORE_BYTES + 1)
    except OSError as e:
        raise IgnoreFileError(f"cannot read {IGNORE_FILE}: {e.strerror or e}") from None
    if len(data) > MAX_IGNORE_BYTES:
        raise IgnoreFileError(f"{IGNORE_FILE} is larger than {MAX_IGNORE_BYTES} bytes")
    lines = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff").splitlines()
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError as e:  # pathspec's GitIgnorePatternError: "Invalid git pattern: 'foo\\'"
        raise IgnoreFileError(f"{IGNORE_FILE}: {e}") from None
