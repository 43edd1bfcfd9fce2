"""EmbeddingGemma 2 through the command line: `gemb2 embed -` (prompts by name, Matryoshka --dim) and
`gemb2 embed DIR` into a real LanceDB table, against the Python API on the same tiny folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gemb2.pretrained.sources import load_model
from tests.cli_run import gemb2
from tests.media import write_image
from tests.pretrained.gemma2_folder import PROMPTS


@pytest.mark.slow
def test_embed_stdin_takes_any_prompt_of_the_folder_and_a_matryoshka_dim(gemma_folder):
    lines = ["a red car", "def main(): pass"]
    r = gemb2(
        "embed", "-", "--model", gemma_folder, "--prompt", "CodeRetrieval", "--dim", "256", input="\n".join(lines)
    )
    assert r.returncode == 0, r.stderr
    got = np.array([json.loads(x)["vector"] for x in r.stdout.splitlines()], dtype=np.float32)
    want = load_model(str(gemma_folder)).encode(lines, task="CodeRetrieval", dim=256)
    assert got.shape == (2, 256)
    assert np.abs(got - want).max() < 1e-6


@pytest.mark.slow
def test_an_unknown_prompt_exits_2_listing_the_folders_prompts(gemma_folder):
    r = gemb2("embed", "-", "--model", gemma_folder, "--prompt", "Bogus", input="x\n")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"gemb2: error: unknown prompt 'Bogus': this model's prompts are {', '.join(sorted(PROMPTS))}"
    ]


@pytest.mark.slow
def test_the_name_not_in_the_cache_exits_2_naming_gemb2_pull(tmp_path):
    r = gemb2("embed", "-", "--model", "embeddinggemma-2", input="x\n", env={"HF_HUB_CACHE": str(tmp_path)})
    assert r.returncode == 2
    assert "run `gemb2 pull embeddinggemma-2`" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_embed_dir_windows_long_text_and_embeds_images_into_lancedb_rows_equal_to_the_api(gemma_folder, tmp_path):
    import lancedb
    from PIL import Image as PILImage

    from gemb2.parts import Image

    tree = tmp_path / "docs"
    tree.mkdir()
    long = " ".join(f"line {i}: the red car passed the old cat." for i in range(30))
    (tree / "long.txt").write_text(long, encoding="utf-8")
    (tree / "short.md").write_text("hello world", encoding="utf-8")
    write_image(tree / "pic.png", seed=2, size=(90, 40))
    db = tmp_path / "db"
    r = gemb2("embed", tree, "--model", gemma_folder, "--db", db, "--json", "--workers", "0")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["files_added"] == 3 and report["model"].startswith("embeddinggemma-2@")
    rows = lancedb.connect(str(db)).open_table("media").to_arrow().to_pylist()
    by_file = {}
    for row in rows:
        by_file.setdefault(row["path"].rsplit("/", 1)[-1], []).append(row)
    assert len(by_file["long.txt"]) > 3 and len(by_file["short.md"]) == 1
    model = load_model(str(gemma_folder))
    for row in sorted(by_file["long.txt"], key=lambda r: r["segment"])[:2]:
        want = model.encode([long[int(row["start"]) : int(row["end"])]], task="document")[0]
        assert float(np.dot(np.asarray(row["vector"]), want)) >= 0.9999
    [pic] = by_file["pic.png"]
    pixels = np.asarray(PILImage.open(tree / "pic.png").convert("RGB"))
    assert float(np.dot(np.asarray(pic["vector"]), model.encode([Image(pixels)])[0])) >= 0.9999
