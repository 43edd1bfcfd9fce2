"""`gemb2 index`: build or refresh a table's vector, scalar and full-text indexes, then optimise it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from . import common
from .common import EXIT_BUSY, EXIT_USAGE, die


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
    from gemb2.store.index import VECTOR_KINDS, IndexBuildError, build_indexes
    from gemb2.store.lock import LockBusy, table_lock

    if type_ not in VECTOR_KINDS:
        die(f"--type must be one of {', '.join(VECTOR_KINDS)}, not {type_!r}", EXIT_USAGE)
    store = common.open_table(db, table)
    uri, name = store.uri, store.table_name
    try:
        with table_lock(uri, name, wait_s=wait):  # the whole table: no embed writes while indexes are rebuilt
            store.refresh()
            rep = build_indexes(
                store.table,
                dim=store.dim,
                kind=type_,
                name=name,
                cleanup_older_than=timedelta(seconds=keep_versions),
                rebuild=rebuild,
            )
    except LockBusy as e:
        die(str(e), EXIT_BUSY)
    except IndexBuildError as e:
        die(str(e), EXIT_USAGE)
    except (OSError, RuntimeError, ValueError) as e:
        die(f"building the indexes of {name!r} failed: {e}")

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
