"""The real `gemb2` CLI in a subprocess: the one place that says how tests start it.

    r = gemb2("embed", tree, "--model", "tiny", "--db", db, "--json")   # CompletedProcess, text, output captured
    p = gemb2_popen("embed", "-", stdin=PIPE, stdout=PIPE)   # a Popen: to signal it or talk to it as it runs
    subprocess.run(["strace", ..., *cli_cmd("embed", tree)], env=cli_env())   # the command line, wrapped

Every test that uses these starts a process, so it is marked `slow` (tests/test_markers.py checks it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT_DIR = str(Path(__file__).resolve().parents[1])
CLI = [sys.executable, "-m", "gemb2"]  # how the CLI is started: change it here only


def cli_cmd(*args: object) -> list[str]:
    """The command line that runs `gemb2 ARGS...` (paths may be given as Path)."""
    return [*CLI, *map(str, args)]


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment, offline (HF_HUB_OFFLINE=1), LanceDB quiet, this tree first on PYTHONPATH
    (so the subprocess runs the code under test from any cwd), then `extra` (which may override them)."""
    path = os.pathsep.join(p for p in (ROOT_DIR, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LANCE_LOG": "error", "PYTHONPATH": path, **extra}


def gemb2(
    *args: object,
    input: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = 600,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `gemb2 ARGS...` to the end; stdout and stderr captured as text; `env` adds to cli_env()."""
    return subprocess.run(
        cli_cmd(*args),
        input=input,
        capture_output=True,
        text=True,
        env=cli_env(**(env or {})),
        cwd=cwd,
        timeout=timeout,
        check=check,
    )


def gemb2_popen(*args: object, env: dict[str, str] | None = None, **popen_kw) -> subprocess.Popen:
    """Start `gemb2 ARGS...` and return at once (stdin/stdout/stderr, text, cwd... as `popen_kw` say)."""
    return subprocess.Popen(cli_cmd(*args), env=cli_env(**(env or {})), **popen_kw)
