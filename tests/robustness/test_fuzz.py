"""The hypothesis fuzzing of the loaders (fuzz_loaders.py), in a subprocess under a timeout: a codec that
hangs or crashes on random bytes fails this test instead of taking pytest down with it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli_run import ROOT_DIR, cli_env

TIMEOUT_S = 300


@pytest.mark.slow
def test_loaders_survive_random_bytes_under_every_extension():
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header",
           os.path.join(ROOT_DIR, "tests", "robustness", "fuzz_loaders.py")]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=ROOT_DIR, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the loader fuzzing hung (no end within {TIMEOUT_S} s):\n{(e.stdout or '')[-2000:]}") from None
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
