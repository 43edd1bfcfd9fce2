"""Disk full: `gemb2 embed` into a database on a full filesystem (a small tmpfs the test mounts, as root)
fails with a clear one-line message and exit code 1; once space is freed, a rerun completes and the table
is consistent (the keys of a clean run, no duplicate)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cli_run import cli_cmd
from tests.robustness._run import run
from tests.robustness.test_crash_safety import lance_rows

TMPFS_SIZE = "8m"


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder, leave_bytes: int) -> str:
    """Write a ballast file that leaves about `leave_bytes` free on the filesystem of `folder`."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    ballast = os.path.join(folder, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return ballast


def embed_on_full_disk(tmp_path, small_fs):
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(150):
        (tree / f"t{i:03d}.txt").write_text(f"text number {i} " + "filler words " * 70)
    db = str(small_fs / "db")
    cmd = cli_cmd("embed", str(tree), "--model", "tiny", "--db", db, "--json", "--commit-rows", "32", "--quiet")
    ballast = fill(small_fs, leave_bytes=200_000)
    return tree, db, cmd, ballast, run(cmd, timeout=300)


@pytest.mark.slow
def test_disk_full_is_one_clear_line_and_exit_code_1(tmp_path, small_fs):
    *_, full = embed_on_full_disk(tmp_path, small_fs)
    assert full.returncode == 1, (full.returncode, full.stderr[-2000:])
    assert "Traceback" not in full.stderr, full.stderr[-1500:]
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gemb2: error: "), full.stderr[-3000:]
    assert "no space left on device" in lines[0].lower(), lines[0]


@pytest.mark.slow
def test_after_disk_full_and_space_freed_a_rerun_completes_consistently(tmp_path, small_fs):
    tree, db, cmd, ballast, full = embed_on_full_disk(tmp_path, small_fs)
    assert full.returncode == 1, (full.returncode, full.stderr[-2000:])  # fatal, not "partial" (3) nor a crash signal
    assert "No space left on device" in full.stderr
    os.unlink(ballast)
    again = run(cmd, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    clean = run(cli_cmd("embed", str(tree), "--model", "tiny", "--db", str(tmp_path / "clean"), "--quiet"), timeout=300)
    assert clean.returncode == 0
    assert sorted(lance_rows(db)) == sorted(lance_rows(str(tmp_path / "clean")))
