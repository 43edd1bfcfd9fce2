"""The `gemb2` command line: a thin Typer layer over the gemb2 package (flags, printing, exit codes)."""
