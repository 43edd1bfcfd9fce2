"""gemb2-mini-v1's vectors, pinned (v1, the default before gemb2-mini-v2, unchanged bit for bit): the shipped sample folder through `gemb2 embed` and a few queries through the
model, compared with vectors saved in `pinned/gemb2-mini.safetensors`.

On the machine and torch build that saved them the comparison is bit for bit (a refactor must not move a single
bit); elsewhere (another CPU's kernels, another torch) within 2e-5 per component. Rewrite them, only when a change
is meant to move vectors, with `GEMB2_PIN_WRITE=1 pytest tests/model/test_pinned_vectors.py`.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import gemb2
from tests import cli_run

PINNED = Path(__file__).parent / "pinned" / "gemb2-mini.safetensors"
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media"
QUERIES = ["a red car", "a cat sitting on a rug", "the sound of a bell", "how do I parse JSON in Python?"]

pytestmark = pytest.mark.slow


def _machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {cpu} torch {torch.__version__} threads {torch.get_num_threads()}"


def _vectors(tmp_path) -> dict[str, np.ndarray]:
    out = tmp_path / "shards"
    r = cli_run.gemb2("embed", str(SAMPLE), "--out", str(out), "--model", "gemb2-mini-v1", "--quiet", timeout=900)
    if r.returncode == 2 and "pip install" in r.stderr:
        pytest.skip(f"gemb2-mini's parts are not installed: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    records, vecs = gemb2.read_shards(str(out))
    found = {f"doc:{Path(rec['path']).relative_to(SAMPLE)}#{rec['segment']}": vecs[i] for i, rec in enumerate(records)}
    from gemb2 import load_model

    model = load_model("gemb2-mini-v1")
    q = model.encode(QUERIES, task="query")
    found.update({f"query:{t}": np.asarray(q[i]) for i, t in enumerate(QUERIES)})
    return found




def test_gemb2_mini_vectors_are_pinned(tmp_path):
    found = _vectors(tmp_path)
    assert len(found) >= len(QUERIES) + 9  # every sample file gives at least one row
    if os.environ.get("GEMB2_PIN_WRITE") == "1":
        save_file(dict(sorted(found.items())), str(PINNED), metadata={"machine": _machine()})
        pytest.skip(f"wrote {len(found)} pinned vectors to {PINNED}")
    pinned = load_file(str(PINNED))
    with open(PINNED, "rb") as f:  # the safetensors header: 8-byte length, then JSON
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
    assert sorted(found) == sorted(pinned)
    same_machine = meta["machine"] == _machine()
    for key, want in pinned.items():
        got = found[key].astype(np.float32)
        if same_machine:
            assert np.array_equal(got, want), f"{key}: not bit-identical ({np.abs(got - want).max():.3g} apart)"
        else:
            np.testing.assert_allclose(got, want, atol=2e-5, err_msg=key)
