"""`--prompt NAME` on `gemb2 embed DIR` (the documents' prompt, recorded with the table) and `gemb2 query` (the
query's prompt), through the command line on the tiny EmbeddingGemma 2 folder, against the Python API."""

from __future__ import annotations

import json

import lancedb
import numpy as np
import pytest

from gemb2.pretrained.sources import load_model
from tests.cli_run import gemb2
from tests.media import write_image
from tests.pretrained.gemma2_folder import PROMPTS

KNOWN = ", ".join(sorted(PROMPTS))


@pytest.mark.slow
def test_embed_dir_and_query_take_a_prompt_and_the_table_keeps_one(gemma_folder, tmp_path):
    from gemb2.parts import Image

    tree, db = tmp_path / "docs", tmp_path / "db"
    tree.mkdir()
    (tree / "a.txt").write_text("a red car on a wet road", encoding="utf-8")
    (tree / "b.txt").write_text("the cat sat on the mat", encoding="utf-8")
    pic = write_image(tree / "pic.png", seed=4, size=(40, 56))
    base = ("--db", db, "--workers", "0", "--json")
    r = gemb2("embed", tree, "--model", gemma_folder, "--prompt", "Clustering", *base)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"].endswith("+prompt=Clustering")  # the table records its documents' prompt
    rows = {row["path"].rsplit("/", 1)[-1]: np.asarray(row["vector"], np.float32) for row in _rows(db)}
    model = load_model(str(gemma_folder))
    want = model.encode(["a red car on a wet road", "the cat sat on the mat"], task="Clustering")
    assert np.abs(np.stack([rows["a.txt"], rows["b.txt"]]) - want).max() < 1e-5
    assert np.abs(rows["a.txt"] - model.encode(["a red car on a wet road"], task="document")[0]).max() > 1e-3

    again = gemb2("embed", tree, "--model", gemma_folder, "--prompt", "STS", *base)  # another prompt: refused
    assert again.returncode == 2 and "holds vectors of model" in again.stderr and "+prompt=STS" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and len(_rows(db)) == 3

    bogus = gemb2("query", "red car", "--db", db, "--prompt", "Bogus")
    assert bogus.returncode == 2 and bogus.stderr.strip().splitlines() == [
        f"gemb2: error: unknown prompt 'Bogus': this model's prompts are {KNOWN}"
    ]
    q = gemb2("query", "red car", "--db", db, "--prompt", "CodeRetrieval", "--json", "-k", "3")
    assert q.returncode == 0, q.stderr
    qv = model.encode(["red car"], task="CodeRetrieval")[0]
    for hit in json.loads(q.stdout):
        assert hit["score"] == pytest.approx(float(rows[hit["path"].rsplit("/", 1)[-1]] @ qv), abs=1e-5)
    by_image = gemb2("query", "--image", pic, "--db", db, "--json", "-k", "1")  # files alone: the table's prompt
    assert by_image.returncode == 0, by_image.stderr
    [top] = json.loads(by_image.stdout)
    assert top["path"].endswith("pic.png") and top["score"] == pytest.approx(1.0, abs=1e-5)
    from PIL import Image as PILImage

    pixels = np.asarray(PILImage.open(pic).convert("RGB"))
    assert np.abs(rows["pic.png"] - model.encode([Image(pixels)], task="Clustering")[0]).max() < 1e-5


@pytest.mark.slow
def test_an_unknown_prompt_or_a_model_without_prompts_is_exit_2_before_anything_is_written(gemma_folder, tmp_path):
    tree = tmp_path / "docs"
    tree.mkdir()
    (tree / "a.txt").write_text("hello", encoding="utf-8")
    db = tmp_path / "db"
    r = gemb2("embed", tree, "--model", gemma_folder, "--prompt", "Bogus", "--db", db)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"gemb2: error: unknown prompt 'Bogus': this model's prompts are {KNOWN}"
    ]
    assert not db.exists() or not any(db.iterdir())  # nothing written
    for args in (("embed", tree, "--db", tmp_path / "db2"), ("embed", "-")):
        other = gemb2(*args, "--model", "tiny", "--prompt", "query", input="x\n")
        assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
        assert "model 'tiny' has no named prompts" in other.stderr


def _rows(db) -> list[dict]:
    return lancedb.connect(str(db)).open_table("media").to_arrow().to_pylist()
