"""Python standard library: docstring <-> code (task `docstring-code`), held out by qualified name.

    python scripts/build_data/stdlib.py [--out data/stdlib] [--limit N]

Each public function and method with a docstring gives one pair: the query is the docstring's first
paragraph, the positive is the function's source WITHOUT its docstring (so the match is not a copy).
Only the running Python is needed. Writes train.jsonl and test.jsonl (gemb2.data.manifest format).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_splits  # noqa: E402

MODULES = ["argparse", "base64", "bisect", "calendar", "collections", "colorsys", "configparser", "csv",
           "datetime", "difflib", "email.utils", "fnmatch", "fractions", "ftplib", "functools", "getopt",
           "gettext", "glob", "gzip", "heapq", "hmac", "html", "http.cookies", "imaplib", "inspect",
           "ipaddress", "json", "locale", "logging", "mailbox", "mimetypes", "netrc", "ntpath", "numbers",
           "optparse", "pathlib", "pickletools", "platform", "plistlib", "posixpath", "pprint", "queue",
           "quopri", "random", "shlex", "shutil", "smtplib", "statistics", "string", "tarfile", "tempfile",
           "textwrap", "threading", "tokenize", "traceback", "urllib.parse", "urllib.request", "uuid",
           "wave", "weakref", "zipfile"]
MAX_CODE_LINES = 30


def strip_docstring(source: str, max_lines: int = MAX_CODE_LINES) -> str | None:
    """The function's source with its docstring statement removed (None if it cannot be parsed)."""
    source = textwrap.dedent(source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    fn = tree.body[0] if tree.body else None
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.body:
        return None
    first = fn.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return None
    lines = source.splitlines()
    del lines[first.lineno - 1 : first.end_lineno]
    body = [ln for ln in lines if ln.strip()]
    return "\n".join(body[:max_lines]) if len(body) > 1 else None


def functions(limit: int | None, max_lines: int = MAX_CODE_LINES):
    seen = set()
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for qual, obj in _members(mod, name):
            if qual in seen:
                continue
            doc = inspect.getdoc(obj)
            if not doc or len(doc) < 20:
                continue
            try:
                src = inspect.getsource(obj)
            except (OSError, TypeError):
                continue
            code = strip_docstring(src, max_lines)
            summary = doc.split("\n\n")[0].replace("\n", " ").strip()
            if code and 20 <= len(summary) <= 400:
                seen.add(qual)
                yield qual, summary, code
                if limit and len(seen) >= limit:
                    return


def _members(mod, name):
    for attr, obj in sorted(vars(mod).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj):
            yield f"{name}.{attr}", obj
        elif inspect.isclass(obj):
            for m, f in sorted(vars(obj).items()):
                if not m.startswith("_") and inspect.isfunction(f):
                    yield f"{name}.{attr}.{m}", f


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/stdlib")
    ap.add_argument("--limit", type=int, default=None, help="at most this many pairs (before the split)")
    ap.add_argument("--max-lines", type=int, default=MAX_CODE_LINES, help="code lines kept per function")
    args = ap.parse_args(argv)
    rows = [(qual, {"task": "docstring-code", "query": [{"text": summary}], "positive": [{"text": code}]})
            for qual, summary, code in functions(args.limit, args.max_lines)]
    counts = write_splits(args.out, rows)
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
