"""`gemb2 query [TEXT] [--image F] [--audio F] [--video F] [--plus T] [--minus T] ...`: nearest neighbours of an
interleaved query, combined with weighted terms; printed by file, by segment, as paths or as JSON."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Annotated

import typer

from gemb2.errors import Gemb2Error, Interrupted

from . import common
from .query_options import QueryOptions, with_query_options
from .query_print import print_hits


@with_query_options
def query(
    text: Annotated[
        str | None, typer.Argument(help="Query text (optional when a file or --plus term is given).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Ask a running `gemb2 serve` at this URL (in-process if it cannot answer). [env: GEMB2_SERVER]"
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="The query's prompt by name (EmbeddingGemma 2: its folder's prompts). [default: query]"),
    ] = None,
    *,
    opts: QueryOptions,
) -> None:
    """Find the files nearest to a query made of text and/or files (given together, they form one interleaved query).

    Combined queries: --plus/--minus add and subtract texts, --plus-file/--minus-file files, each weighted 1 or
    by its weight option (given in the same order): vector = normalize(query + sum w*plus - sum w*minus).
    """
    from gemb2.pipeline.query import QuerySession

    q = dataclasses.replace(opts.query(text), prompt=prompt)
    if not opts.interactive:
        from gemb2.pipeline.query import run_query

        hits = _ask_server(server or os.environ.get("GEMB2_SERVER"), q, opts)
        if hits is None:
            hits = run_query(opts.db_uri, opts.table_name, q)
        common.exit_quickly_when_done()  # it only read: nothing for the interpreter to tear down but torch and LanceDB
        show(hits, opts)
        return
    session = QuerySession(opts.db_uri, opts.table_name, q)
    answer_lines(session, opts, first=text)


def _ask_server(server: str | None, q, opts: QueryOptions):
    """The hits from a running `gemb2 serve` (None: no server, or it could not answer, or --plus/--minus terms,
    which the server does not take)."""
    if not server:
        return None
    if q.terms or q.prompt is not None:
        common.warn(f"server {server}: --plus/--minus terms and --prompt are in-process only; searching in-process")
        return None
    from gemb2.serve.client import search_remote

    return search_remote(server, dataclasses.replace(q, k=q.rows or q.k), opts.db_uri, opts.table_name, common.warn)


def show(hits, opts: QueryOptions) -> None:
    print_hits(hits, k=opts.k, as_json=opts.as_json, paths_only=opts.paths_only, segments=opts.segments)


def answer_lines(session, opts: QueryOptions, *, first: str | None = None, where: str | None = None) -> None:
    """--interactive: answer `first` (if given), then one query per line of stdin with the session's model,
    until a blank line, the end of input or Ctrl-C (all exit 0). A query that fails prints its one-line error
    and the loop goes on."""
    prompt = common.stderr_is_tty() and sys.stdin.isatty()
    line = first or None
    try:
        while True:
            if line is None:
                if prompt:
                    sys.stderr.write("query> ")
                    sys.stderr.flush()
                line = sys.stdin.readline()
            text = line.strip()
            if not text:
                return
            try:
                show(session.run(opts.query(text, where=where)), opts)
            except Gemb2Error as e:
                typer.echo(f"gemb2: error: {common.printable(str(e))}", err=True)
            sys.stdout.flush()
            line = None
    except KeyboardInterrupt as e:
        if isinstance(e, Interrupted):  # SIGTERM: exit 143 as any command does
            raise
        if prompt:
            sys.stderr.write("\n")
