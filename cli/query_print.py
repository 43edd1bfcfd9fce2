"""Printing a query's results: by file (default), by segment (--segments), paths only (-l) or JSON (--json).

    rank  score   modality  path
       1  0.8123  text      /notes/boats.txt
          sailing boats on the blue sea at dawn, the harbour still asleep…
          also: /backup/boats.txt

Plain lines are for people: a header, one result per line, under it the matching text of the row (one line,
cut to the terminal's width; none for a row without text) and the other paths of identical files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence

import typer

from . import common

INDENT = " " * 6


def print_hits(hits: Sequence, *, k: int, as_json: bool, paths_only: bool, segments: bool) -> None:
    """Print the results of one query as the options say (`hits`: gemb2.pipeline.query.Hit, best first)."""
    from gemb2.pipeline.query_output import group_by_file, rank_files
    from gemb2.pipeline.query_output import paths_only as only_paths

    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in rank_files(hits[:k])], ensure_ascii=False))
        return
    if paths_only:
        for p in only_paths(group_by_file(hits, k)):
            typer.echo(common.printable(p))
        return
    width = shutil.get_terminal_size((100, 24)).columns
    if segments:
        typer.echo("rank  file  score   modality  path")
        for h in rank_files(hits[:k]):
            typer.echo(f"{h.rank:>4}  {h.file_rank:>4}  {_line(h)}")
            _snippet(h.text, width)
        return
    typer.echo("rank  score   modality  path")
    for f in group_by_file(hits, k):
        n = len({(h.path, h.segment) for h in f.segments if h.path == f.best.path})
        more = f"  ({n} matching segments)" if n > 1 else ""
        typer.echo(f"{f.rank:>4}  {_line(f.best)}{more}")
        _snippet(f.best.text, width)
        for p in f.also:
            typer.echo(f"{INDENT}also: {common.printable(p)}")


def _line(h) -> str:
    where_in = f" [{h.start:.1f}-{h.end:.1f}s]" if h.modality in ("audio", "video") else ""
    where_in = f" p. {h.page}" if h.page is not None else where_in
    return f"{h.score:.4f}  {h.modality:<8}  {common.printable(h.path)}{where_in}"


def snippet(text: str | None, width: int) -> str | None:
    """A row's text as one line of at most `width` characters (whitespace runs as one space; cut with '…')."""
    if not text:
        return None
    line = common.printable(" ".join(text.split()))
    if not line:
        return None
    width = max(width, 10)
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def _snippet(text: str | None, width: int) -> None:
    s = snippet(text, width - len(INDENT))
    if s:
        typer.echo(INDENT + s)
