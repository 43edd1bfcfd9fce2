"""The `gemb2` Typer app: one module per subcommand; this file only wires them."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("LANCE_LOG", "error")

from cli.embed import embed  # noqa: E402
from cli.query import query  # noqa: E402

app = typer.Typer(
    name="gemb2",
    help="Native multimodal embeddings: text, images, audio and video in one vector space.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.command()(embed)
app.command()(query)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
