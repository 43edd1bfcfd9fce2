"""`gemb2 query [TEXT] [--image F] [--audio F] [--video F]`: nearest neighbours of an interleaved query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import common
from .common import EXIT_USAGE, die


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
) -> None:
    """Find the rows nearest to a query made of text and/or files (given together, they form one interleaved query)."""
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.pipeline.query import QueryError, hybrid_search, query_parts, query_vector, search
    from gemb2.store import StoreError
    from gemb2.store.index import QueryTuning

    if modality is not None and modality not in ("text", "image", "audio", "video", "mixed"):
        die(f"--modality must be text, image, audio, video or mixed, not {modality!r}", EXIT_USAGE)
    files = [(m, str(p)) for m, p in (("image", image), ("audio", audio), ("video", video)) if p is not None]
    for _, p in files:
        if not Path(p).is_file():
            die(f"no such file: {p}", EXIT_USAGE)
    if not text and not files:
        die("give a query text, or --image/--audio/--video", EXIT_USAGE)

    store = common.open_table(db, table)
    name = store.table_name
    source = model or store.source or common.model_name(None)
    if common.model_id_of(source) != store.model:
        die(f"table {name!r} was built with model {store.model!r}, not {source!r}", EXIT_USAGE)
    m = common.load_model(source, device)
    try:
        parts = query_parts(text, files, load_spec_for(m))
        tuning = QueryTuning(refine_factor=refine_factor or None, nprobes=nprobes, ef=ef)
        common.check_dim(m, dim)
        vec = query_vector(m, parts)
        if hybrid:
            hits = hybrid_search(store, vec, text or "", k, modality=modality, where=where, tuning=tuning, dim=dim)
        else:
            hits = search(store, vec, k, modality=modality, where=where, tuning=tuning, dim=dim)
    except QueryError as e:
        die(str(e), EXIT_USAGE)
    except StoreError as e:
        die(str(e), EXIT_USAGE)
    except ValueError as e:  # a bad --where reaches us from LanceDB as a ValueError / lance error
        die(f"query failed: {e}", EXIT_USAGE)

    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return
    for h in hits:
        where_in = f" [{h.start:.1f}-{h.end:.1f}s]" if h.modality in ("audio", "video") else ""
        where_in = f" p. {h.page}" if h.page is not None else where_in
        typer.echo(f"{h.rank:>3}  {h.score:.4f}  {h.modality:<5}  {common.printable(h.path)}{where_in}")
