"""`gemb2 search QUERY [PATH...]`: index what is new or changed under PATH (within a time budget), then query it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import common
from .embed import _Bar
from .query import answer_lines, show
from .query_options import QueryOptions, with_query_options

SCRIPT_BUDGET_S = 10.0  # in a script (stdout not a terminal), indexing stops after this long unless --budget says


@with_query_options
def search(
    query: Annotated[str, typer.Argument(help="Query text.")],
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files and folders to search (and index first). [default: .]")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            min=0,
            help=f"Index for at most this many seconds, then answer from what is indexed. [default: none at a terminal, {SCRIPT_BUDGET_S:g} in a script]",
        ),
    ] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Do not index; answer from what is indexed.")] = False,
    *,
    opts: QueryOptions,
) -> None:
    """Search files in one step: embed what is new or changed under PATH into the table (as `gemb2 embed PATH`),
    then answer the query among the rows under PATH. The rest of a budget-limited indexing is done next time."""
    from gemb2.pipeline.query import QuerySession, run_query
    from gemb2.pipeline.search import table_exists, under_paths

    roots = paths or ["."]
    q = opts.query(query)  # its usage errors before any indexing
    model = None if no_index else _index(roots, opts, budget)
    if not table_exists(opts.db_uri, opts.table_name):
        common.warn(f"nothing is indexed yet under {' '.join(roots)}: no results")
        return
    where = under_paths(roots, opts.where)
    if opts.interactive or model is not None:  # the model indexing loaded answers too
        session = QuerySession(opts.db_uri, opts.table_name, q, model=model)
        if opts.interactive:
            answer_lines(session, opts, first=query, where=where)
            return
        hits = session.run(opts.query(query, where=where))
    else:
        hits = run_query(opts.db_uri, opts.table_name, opts.query(query, where=where))
    common.exit_quickly_when_done()
    show(hits, opts)


def _index(roots: list[str], opts: QueryOptions, budget: float | None):
    """The indexing step, and what it left to do, on stderr; the model if it loaded it."""
    from gemb2.pipeline.search import index_paths

    interactive = sys.stdout.isatty()
    if budget is None and not interactive:
        budget = SCRIPT_BUDGET_S
    done = index_paths(
        roots,
        source=opts.model,
        default_source=common.model_name(None),
        db=opts.db_uri,
        table=opts.table_name,
        device=common.device_name(opts.device),
        budget=budget,
        progress=_Bar(enabled=common.stderr_is_tty()),
    )
    if done.busy:
        common.warn(f"not indexed ({done.busy}); answering from what is indexed")
    elif done.rest > 0:
        common.warn(
            f"indexed {done.done} of {done.total} new or changed files in {budget:g} s; the rest next time "
            f"— run gemb2 embed {' '.join(roots)} to finish"
        )
    if done.report is not None:
        for f in done.report.failures:
            common.warn("failed: " + f"{f.path}: {f.reason}")
    return done.model
