"""`gemb2 serve`: keep the model(s) loaded and answer embeddings and searches over HTTP (see gemb2/serve)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from . import common


def serve(
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="A model to serve (repeatable; the first is the default). [default: the table's, else $GEMB2_MODEL or gemb2-mini]"
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="LanceDB database folder or URI searched by /v1/search. [env: GEMB2_DB]")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="Table searched by /v1/search. [env: GEMB2_TABLE; default: media]")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default: nothing else can connect).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0: a free one). The URL is printed on stdout.")
    ] = 8000,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body, in MB.")] = 16.0,
    max_inputs: Annotated[int, typer.Option(min=1, help="Most inputs in one /v1/embeddings request.")] = 2048,
    max_concurrent: Annotated[int, typer.Option(min=1, help="Most requests in hand at once (more: 503).")] = 64,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N. [env: GEMB2_DEVICE]")] = None,
) -> None:
    """Serve embeddings (OpenAI-compatible POST /v1/embeddings) and searches of a table (POST /v1/search) over HTTP."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        from gemb2.errors import UsageError

        raise UsageError("gemb2 serve needs its HTTP stack: pip install 'gemb2[serve]'") from None
    from gemb2.serve.app import Limits
    from gemb2.serve.server import serve as run
    from gemb2.store.lance import DEFAULT_TABLE

    explicit = bool(db or table or os.environ.get("GEMB2_DB") or os.environ.get(common.ENV_TABLE))
    uri, name = common.db_uri(db), common.table_name(table)
    served = (uri, name) if explicit or _exists(uri, name) else None
    if served is None and name != DEFAULT_TABLE:
        served = (uri, name)
    limits = Limits(max_body=int(max_body_mb * 1024 * 1024), max_inputs=max_inputs, max_concurrent=max_concurrent)

    def ready(url: str) -> None:
        typer.echo(url)  # one line on stdout: scripts read it

    signum = run(
        list(model or []),
        common.device_name(device),
        served,
        host=host,
        port=port,
        limits=limits,
        default_model=common.model_name(None),
        ready=ready,
        log=common.warn,
    )
    if signum:
        common.warn(f"serve: stopped by {'SIGTERM' if signum == 15 else 'SIGINT'}; requests in hand were answered")
        raise typer.Exit(128 + signum)


def _exists(uri: str, name: str) -> bool:
    from gemb2.errors import UsageError
    from gemb2.pipeline.open import open_table

    try:
        open_table(uri, name)
    except UsageError:
        return False
    return True
