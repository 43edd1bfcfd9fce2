"""Run the real `gemb2` in a subprocess (tests/cli_run.py's command line and environment), with a timeout, sampling
the peak RSS of its process tree."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from benchmarks._util import PeakRSS
from tests.cli_run import ROOT_DIR, cli_env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes, the whole process tree (the CLI and its loader workers)


def without_root_read_override(cmd: list[str]) -> list[str]:
    """As root, run `cmd` without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (setpriv drops them from the
    bounding set before exec), so that permission bits hold as for any user; unchanged when not root."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]


def run(cmd: list[str], timeout: float, cwd: str | None = None) -> Result:
    """Run to the end, or kill the process group after `timeout` seconds and fail the test."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                         cwd=cwd or ROOT_DIR, start_new_session=True)
    with PeakRSS(p.pid, interval=0.05) as peak:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.communicate()
            raise AssertionError(f"{' '.join(cmd[:6])} ... hung: no exit within {timeout} s") from None
    return Result(p.returncode, out, err, peak.peak)
