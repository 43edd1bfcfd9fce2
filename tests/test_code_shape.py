"""The shape the code keeps (issue 12): in gemb2/ and cli/ no file over 500 lines and no function body over 60
(a docstring and a Typer signature's parameter list do not count; tests and benchmarks are not held to it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES, MAX_BODY_LINES = 500, 60


def _sources() -> list[Path]:
    files = [p for p in (ROOT / "gemb2").rglob("*.py") if "cli" not in p.relative_to(ROOT / "gemb2").parts[:1]]
    return sorted(files + list((ROOT / "cli").rglob("*.py")))


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    first = body[1] if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]
    return (fn.end_lineno or fn.lineno) - first.lineno + 1


def _too_long(path: Path) -> list[str]:
    src = path.read_text(encoding="utf-8")
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    if src.count("\n") > MAX_FILE_LINES:
        found.append(f"{name}: {src.count(chr(10))} lines")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > MAX_BODY_LINES:
            found.append(f"{name}:{node.lineno} {node.name}: {_body_lines(node)} lines")
    return found


def test_no_file_or_function_over_the_limits():
    sources = _sources()
    assert len(sources) > 50 and any(p.name == "main.py" for p in sources)
    assert [line for p in sources for line in _too_long(p)] == []


def test_the_check_finds_a_long_function(tmp_path):
    long = tmp_path / "long.py"
    long.write_text('def f():\n    """doc"""\n' + "    x = 1\n" * 61)
    short = tmp_path / "short.py"
    short.write_text('def f():\n    """doc"""\n' + "    x = 1\n" * 60)
    assert len(_too_long(long)) == 1 and _too_long(short) == []
