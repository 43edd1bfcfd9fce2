"""`gemb2 query [TEXT] [--image F] [--audio F] [--video F]`: nearest neighbours of an interleaved query."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from . import common


def query(
    text: Annotated[str | None, typer.Argument(help="Query text (optional when a file is given).")] = None,
    image: Annotated[Path | None, typer.Option(help="An image file, part of the query.")] = None,
    audio: Annotated[Path | None, typer.Option(help="An audio file (its first window), part of the query.")] = None,
    video: Annotated[Path | None, typer.Option(help="A video file (its first window), part of the query.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many results.")] = 10,
    modality: Annotated[str | None, typer.Option(help="Only rows of this modality: text, image, audio, video.")] = None,
    where: Annotated[
        str | None, typer.Option(help="A SQL filter on the table's columns, e.g. \"path LIKE '%/2024/%'\".")
    ] = None,
    db: Annotated[str | None, typer.Option(help="LanceDB database folder or URI. [env: GEMB2_DB]")] = None,
    table: Annotated[str | None, typer.Option(help="Table name. [env: GEMB2_TABLE; default: media]")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model (a preset, a gemb2 model folder or a Hugging Face BERT folder); by default the one the table was built with."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N. [env: GEMB2_DEVICE]")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print a JSON array of rank, score, path, modality, start, end (and a PDF's page)."
        ),
    ] = False,
    hybrid: Annotated[
        bool,
        typer.Option(
            "--hybrid",
            help="Also full-text search the query text (BM25) and fuse both rankings (reciprocal-rank fusion). Needs `gemb2 index`.",
        ),
    ] = False,
    dim: Annotated[
        int | None, typer.Option(help="Query with this Matryoshka prefix of the vectors (re-ranked by prefix cosine).")
    ] = None,
    refine_factor: Annotated[
        int,
        typer.Option(
            min=0, help="With a vector index: re-rank this many x k candidates with the exact vectors (0: off)."
        ),
    ] = 5,
    nprobes: Annotated[
        int, typer.Option(min=1, help="With a vector index: IVF partitions to search (more: better recall, slower).")
    ] = 5,
    ef: Annotated[
        int | None, typer.Option(min=1, help="With an HNSW index: candidates per search. [default: max(64, 2k)]")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Ask a running `gemb2 serve` at this URL (in-process if it cannot answer). [env: GEMB2_SERVER]"
        ),
    ] = None,
) -> None:
    """Find the rows nearest to a query made of text and/or files (given together, they form one interleaved query)."""
    from gemb2.pipeline.query import Query, run_query
    from gemb2.store.index import QueryTuning

    files = [(m, str(p)) for m, p in (("image", image), ("audio", audio), ("video", video)) if p is not None]
    q = Query(
        text=text,
        files=files,
        k=k,
        modality=modality,
        where=where,
        hybrid=hybrid,
        dim=dim,
        tuning=QueryTuning(refine_factor=refine_factor or None, nprobes=nprobes, ef=ef),
        model=model,
        device=common.device_name(device),
        default_model=common.model_name(None),
    )
    server = server or os.environ.get("GEMB2_SERVER")
    hits = None
    if server:
        from gemb2.serve.client import search_remote

        hits = search_remote(server, q, common.db_uri(db), common.table_name(table), common.warn)
    if hits is None:
        hits = run_query(common.db_uri(db), common.table_name(table), q)
    common.exit_quickly_when_done()  # it only read: nothing for the interpreter to tear down but torch and LanceDB
    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return
    for h in hits:
        where_in = f" [{h.start:.1f}-{h.end:.1f}s]" if h.modality in ("audio", "video") else ""
        where_in = f" p. {h.page}" if h.page is not None else where_in
        typer.echo(f"{h.rank:>3}  {h.score:.4f}  {h.modality:<5}  {common.printable(h.path)}{where_in}")
