"""model_source_id: the id `load_model(source).model_id` gives, and for a release (gemb2-mini) resolved from the
release's files alone: no weight file read, no model built (an unchanged `gemb2 embed` rerun needs only the id)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gemb2.pretrained.release import RELEASES, installed_parts, release_folder, release_model_id
from gemb2.pretrained.sources import FOLDER_PRESETS, PRESETS, ModelSourceError, load_model, model_source_id
from tests.system import has_debian, install_line


def _loadable(source: str):
    try:
        return load_model(source)
    except ModelSourceError as e:  # a preset whose weights are not installed here
        pytest.skip(f"{source}: {e}")


@pytest.mark.parametrize("source", sorted({*PRESETS, *FOLDER_PRESETS, *RELEASES}))
def test_the_resolved_id_is_the_loaded_models_id(source):
    model = _loadable(source)
    assert model_source_id(source) == model.model_id


def _release_with_parts():
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file():
        pytest.skip("gemb2-mini's added weights are not in this checkout")
    if None in installed_parts().values():
        pytest.skip("gemb2-mini's part packages are not installed")


def _count_modules(code: str) -> dict:
    """Run `code` in a fresh interpreter that counts torch.nn.Module constructions; -> its JSON line."""
    prelude = ("import json, torch\n"
               "built = [0]\n"
               "_init = torch.nn.Module.__init__\n"
               "def counting(self, *a, **k):\n"
               "    built[0] += 1\n"
               "    _init(self, *a, **k)\n"
               "torch.nn.Module.__init__ = counting\n")
    r = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.slow
def test_resolving_the_release_id_builds_no_module():
    _release_with_parts()
    resolved = _count_modules("from gemb2.pretrained.sources import model_source_id\n"
                              "i = model_source_id('gemb2-mini')\n"
                              "print(json.dumps({'id': i, 'modules': built[0]}))\n")
    loaded = _count_modules("from gemb2.pretrained.sources import load_model\n"
                            "i = load_model('gemb2-mini').model_id\n"
                            "print(json.dumps({'id': i, 'modules': built[0]}))\n")
    assert resolved["id"] == loaded["id"]
    assert resolved["modules"] == 0 and loaded["modules"] > 50  # the count does see a model being built


@pytest.mark.slow
@pytest.mark.skipif(not has_debian("strace"), reason=f"needs {install_line('strace')}")
def test_resolving_the_release_id_opens_no_weight_file(tmp_path):
    _release_with_parts()
    from tests.syscalls import opened, weight_files

    code = "from gemb2.pretrained.sources import {f}; print({call})"
    for fn, call, expect_weights in (("model_source_id", "model_source_id('gemb2-mini')", False),
                                     ("load_model", "load_model('gemb2-mini').model_id", True)):
        trace = tmp_path / f"{fn}.trace"
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace),
                            sys.executable, "-c", code.format(f=fn, call=call)],
                           capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().startswith("gemb2-mini-v2.1@")  # the default is v2.1
        read = opened(trace) & weight_files()
        assert bool(read) == expect_weights, (fn, read)


def test_a_model_id_json_for_other_part_versions_is_not_trusted(tmp_path):
    """Installed parts of other versions may hold other weights: the id is then loaded and hashed, not read."""
    doc = {"model_id": "gemb2-mini@000000000000", "parts": installed_parts()}
    (tmp_path / "model_id.json").write_text(json.dumps(doc))
    assert release_model_id("gemb2-mini", tmp_path) == "gemb2-mini@000000000000"
    other = dict(doc["parts"], **{next(iter(doc["parts"])): "9.9.9"})
    (tmp_path / "model_id.json").write_text(json.dumps({**doc, "parts": other}))
    assert release_model_id("gemb2-mini", tmp_path) is None
    (tmp_path / "model_id.json").write_text(json.dumps({**doc, "model_id": "tiny@000000000000"}))
    assert release_model_id("gemb2-mini", tmp_path) is None  # another model's id
    (tmp_path / "model_id.json").write_text("{not json")
    assert release_model_id("gemb2-mini", tmp_path) is None
    assert release_model_id("gemb2-mini", tmp_path / "missing") is None
