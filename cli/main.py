"""The `gemb2` Typer app: one module per subcommand; this file only wires them."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("LANCE_LOG", "error")

os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust logger of lancedb (LANCE_LOG is lance's)

from cli.embed import embed  # noqa: E402
from cli.eval import eval_  # noqa: E402
from cli.export import export_app  # noqa: E402
from cli.index import index  # noqa: E402
from cli.init import init  # noqa: E402
from cli.query import query  # noqa: E402
from cli.train import train  # noqa: E402

app = typer.Typer(
    name="gemb2",
    help="Native multimodal embeddings: text, images, audio and video in one vector space.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.command()(embed)
app.command()(query)
app.command()(train)
app.command(name="eval")(eval_)
app.command()(index)
app.add_typer(export_app, name="export")
app.command()(init)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
