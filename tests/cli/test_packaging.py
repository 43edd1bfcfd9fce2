"""The CLI as users install it: from a wheel it is `gemb2.cli` (no top-level `cli` module), `gemb2` and
`python -m gemb2` run from any folder; an editable install runs the repo's own cli/ files.

Each environment is a fresh venv that sees this interpreter's third-party packages (torch, typer, ...) through a
.pth listing its site-packages folders, but not the .pth files in them: the dev checkout's own editable install
(which puts the repo root, and so its `cli/` folder, on sys.path) stays out, as on a user's machine.
"""

import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.cli_run import gemb2

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _run(args, cwd, check=True, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def _venv(path: Path) -> Path:
    """A fresh venv whose sys.path also holds this interpreter's site-packages folders (their .pth files unread)."""
    _run([sys.executable, "-m", "venv", path], cwd=path.parent)
    py = path / "bin" / "python"
    purelib = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=path).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    Path(purelib, "_outer_site_packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    return py


def _pip_build_args() -> list[str]:
    """Build with this interpreter's hatchling when it has one, else in pip's isolated build environment."""
    return ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []


def _skip_if_no_backend(r: subprocess.CompletedProcess) -> None:
    if r.returncode != 0 and "hatchling" in r.stdout + r.stderr and "No matching distribution" in r.stdout + r.stderr:
        pytest.skip("no hatchling here and no package index to fetch it from (pip install hatchling)")


def _check_runs(venv: Path, py: Path, cwd: Path) -> None:
    for cmd in ([venv / "bin" / "gemb2", "--help"], [py, "-m", "gemb2", "--help"]):
        r = _run(cmd, cwd=cwd)
        assert r.stdout.startswith("Usage: gemb2 ") and "embed" in r.stdout and "query" in r.stdout, r.stdout
    assert _run([venv / "bin" / "gemb2", "--version"], cwd=cwd).stdout.startswith("gemb2 ")


def test_the_wheel_ships_the_cli_inside_gemb2_and_runs_from_anywhere(tmp_path):
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *_pip_build_args(), "-w", tmp_path / "dist", ROOT],
             cwd=tmp_path, check=False)
    _skip_if_no_backend(r)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp_path / "dist").glob("gemb2-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gemb2/cli/main.py" in names and "gemb2/__main__.py" in names
    assert not [n for n in names if n.split("/")[0] == "cli"], "a top-level `cli` package in the wheel"

    venv = tmp_path / "venv"
    py = _venv(venv)
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _check_runs(venv, py, elsewhere)
    where = _run([py, "-c", "import gemb2.cli.main as m; print(m.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the repo's
    r = _run([py, "-c", "import cli"], cwd=elsewhere, check=False)
    assert r.returncode != 0 and "No module named 'cli'" in r.stderr, r.stdout + r.stderr


def test_an_editable_install_runs_the_repo_cli_folder(tmp_path):
    venv = tmp_path / "venv"
    py = _venv(venv)
    r = _run([py, "-m", "pip", "install", "--no-deps", *_pip_build_args(), "-e", ROOT], cwd=tmp_path, check=False)
    _skip_if_no_backend(r)
    assert r.returncode == 0, r.stdout + r.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _check_runs(venv, py, elsewhere)
    _check_runs(venv, py, ROOT)
    where = _run([py, "-c", "import gemb2.cli.main as m; print(m.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).resolve() == ROOT / "cli" / "main.py", where  # edits to cli/ take effect at once


def test_python_m_gemb2_in_the_repo():
    r = gemb2("--help", cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("Usage: gemb2 "), r.stdout + r.stderr
