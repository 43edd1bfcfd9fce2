"""`gemb2 index`: build or refresh a table's vector, scalar and full-text indexes, then optimise it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from . import common


def index(
    type_: Annotated[
        str,
        typer.Option(
            "--type", help="Vector index: auto (none for small tables, else IVF_HNSW_SQ), hnsw, ivf_pq, none."
        ),
    ] = "auto",
    db: Annotated[str | None, typer.Option(help="LanceDB database folder or URI. [env: GEMB2_DB]")] = None,
    table: Annotated[str | None, typer.Option(help="Table name. [env: GEMB2_TABLE; default: media]")] = None,
    keep_versions: Annotated[
        float,
        typer.Option(
            "--keep-versions",
            min=0,
            help="Keep table versions younger than this many seconds; older ones are deleted (0: keep only the latest).",
        ),
    ] = 600,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for a running `gemb2 embed` on the table before giving up (exit 4)."),
    ] = 0,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild every index, even those that are up to date.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
) -> None:
    """Compact a table, delete its old versions and refresh its indexes, then build the ones it lacks: vector (ANN),
    scalar (path, modality), full-text (text). Exit codes: 0 done, 2 usage error, 1 fatal, 4 the table is busy."""
    from gemb2.pipeline.index import index_table

    rep = index_table(
        common.db_uri(db),
        common.table_name(table),
        kind=type_,
        keep_versions_s=keep_versions,
        rebuild=rebuild,
        wait_s=wait,
    )
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), ensure_ascii=False))
        return
    v = rep.vector
    if v.get("present"):
        params = ", ".join(
            f"{k}={v[k]}" for k in ("num_partitions", "m", "ef_construction", "num_sub_vectors") if k in v
        )
        typer.echo(f"vector index: {v['kind']} ({params}){'' if v['built'] else ', kept: up to date'}")
    else:
        typer.echo(f"vector index: none ({v['reason']})")
    typer.echo(f"scalar indexes: {', '.join(rep.scalar) or 'none'}")
    typer.echo(f"full-text index: {', '.join(rep.fts) or 'none'}")
    typer.echo(
        f"rows: {rep.rows}  versions: {rep.versions_before} -> {rep.versions_after} (now v{rep.version})  "
        f"size: {rep.size_bytes / 1e6:.1f} MB"
    )
    for m in rep.messages:
        common.warn(m)
