"""An unchanged rerun of `gemb2 embed` with gemb2-mini does not load the model (README: "nor loads the model"):
traced with strace, the rerun opens none of the model's weight files, while the first run does."""

from __future__ import annotations

import json
import subprocess

import pytest

from gemb2.pretrained.release import installed_parts, release_folder
from tests.cli_run import cli_cmd, cli_env
from tests.media import write_image, write_text
from tests.syscalls import opened, weight_files
from tests.system import has_debian, install_line


@pytest.mark.slow
@pytest.mark.skipif(not has_debian("strace"), reason=f"needs {install_line('strace')}")
def test_an_unchanged_rerun_reads_no_model_weight(tmp_path):
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file() or None in installed_parts().values():
        pytest.skip("gemb2-mini (its added weights and part packages) is not installed")
    write_text(tmp_path / "m" / "a.txt", "a red car")
    write_text(tmp_path / "m" / "sub" / "b.md", "# notes\n\nthe quick brown fox")
    write_image(tmp_path / "m" / "c.png")
    args = cli_cmd("embed", str(tmp_path / "m"), "--model", "gemb2-mini", "--db", str(tmp_path / "db"), "--workers", "0",
                   "--json")
    weights = weight_files()

    def traced(name):
        trace = tmp_path / f"{name}.trace"
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace), *args],
                           capture_output=True, text=True, env=cli_env(), timeout=600)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout), opened(trace) & weights

    first, read_first = traced("first")
    assert first["files_added"] == 3 and first["model"].startswith("gemb2-mini-v2.1@")  # the default is v2.1
    assert read_first == weights  # the trace does see the weights being read when the model is loaded

    again, read_again = traced("again")
    assert again["files_unchanged"] == 3 and again["files_added"] == again["files_updated"] == 0
    assert again["model"] == first["model"]
    assert read_again == set(), f"the unchanged rerun read {sorted(read_again)}"
