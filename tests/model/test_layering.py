"""The native model never imports the pretrained importers: the arrow points one way, gemb2.pretrained -> gemb2.model.

Read from the source with `ast` (no import runs), so a lazy import inside a function counts as much as one at the
top of a file, and a relative import is resolved against its own package before it is judged."""

from __future__ import annotations

import ast
from pathlib import Path

import gemb2

ROOT = Path(gemb2.__file__).resolve().parent
FORBIDDEN = "gemb2.pretrained"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in module `name`'s source, relative ones resolved."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]  # `from gemb2 import pretrained`
    return found


def _reaches(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def test_the_native_model_imports_nothing_from_pretrained():
    files = sorted((ROOT / "model").rglob("*.py"))
    assert len(files) > 10  # the walk really sees the package
    bad = [
        f"{p.relative_to(ROOT.parent)}:{line}: {mod}"
        for p in files
        for line, mod in _imported(p.read_text(encoding="utf-8"), _module_name(p), p.name == "__init__.py")
        if _reaches(mod)
    ]
    assert not bad, "gemb2.model must not import gemb2.pretrained:\n" + "\n".join(bad)


def test_the_check_sees_relative_lazy_and_package_imports():
    """The checker itself, on made-up sources: each of these would break the rule and is seen."""
    lazy = "def f():\n    from ...pretrained.weights import minilm_folder\n"
    assert [m for _, m in _imported(lazy, "gemb2.model.stems.whisper") if _reaches(m)][0] == "gemb2.pretrained.weights"
    assert any(_reaches(m) for _, m in _imported("from .. import pretrained\n", "gemb2.model", is_package=True))
    assert any(_reaches(m) for _, m in _imported("import gemb2.pretrained.sources as s\n", "gemb2.model.io"))
    assert not any(_reaches(m) for _, m in _imported("from ..config import tiny\n", "gemb2.model.stems.patch"))
    assert not _reaches("gemb2.pretrained_other")
