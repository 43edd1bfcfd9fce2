"""`gemb2 pull` and `--model hf:ORG/NAME` for EmbeddingGemma 2, against a Hugging Face Hub on loopback (fake_hub.py:
a real HTTP server that real huggingface_hub talks to in a real gemb2 process; only the network is stood in for).

The fake repo is the tiny checkpoint (gemma2_folder.py) plus pickles (.bin / .pt / .pkl) that must never be
fetched; a 404 and a 500 are one-line errors, and what a failed download leaves in the cache never loads."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")

from gemb2.errors import EXIT_FATAL, EXIT_USAGE
from gemb2.pretrained.sources import HubError, ModelSourceError, load_model, pull, resolve
from tests.cli_run import gemb2
from tests.pretrained.fake_hub import FakeHub

REPO = "google/embeddinggemma-2"
PICKLES = ["pytorch_model.bin", "model.pt", "extra/optimizer.pkl"]
LINES = ["a red car on a wet road", "def main(): pass"]


@pytest.fixture(scope="module")
def hub_folder(gemma_folder, tmp_path_factory):
    """The tiny checkpoint as a Hub repo holds it, with pickled weights beside the safetensors (as many repos
    have): real pickles, never opened."""
    repo = tmp_path_factory.mktemp("hub-repo") / "repo"
    shutil.copytree(gemma_folder, repo)
    for name in PICKLES:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(pickle.dumps({"weight": list(range(8))}))
    return repo


@pytest.fixture(scope="module")
def want(gemma_folder):
    return load_model(str(gemma_folder)).encode(LINES, task="query", dim=128)


def _vectors(stdout: str) -> np.ndarray:
    return np.array([json.loads(x)["vector"] for x in stdout.splitlines()], dtype=np.float32)


def _error_lines(r) -> list[str]:
    """stderr's lines that are not huggingface_hub's progress bars (they go to stderr too)."""
    return [x for x in r.stderr.replace("\r", "\n").splitlines() if x.strip() and "it/s]" not in x and "B/s]" not in x]


def _files(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.slow
def test_pull_fetches_safetensors_and_json_only_and_the_name_then_embeds_offline(hub_folder, want, tmp_path):
    cache = tmp_path / "hub"
    with FakeHub({REPO: hub_folder}) as hub:
        r = gemb2("pull", "embeddinggemma-2", "--json", env=hub.env(cache))
        assert r.returncode == 0, r.stderr
        fetched = hub.fetched()
    path = Path(json.loads(r.stdout)["path"])
    assert path.is_relative_to(cache) and (path / "model.safetensors").is_file()
    served = {p.relative_to(hub_folder).as_posix() for p in hub_folder.rglob("*") if p.is_file()}
    assert fetched == served - set(PICKLES)  # the pickles are never even asked for
    assert not {Path(p).name for p in PICKLES} & _files(cache)
    # the server is gone and HF_HUB_OFFLINE=1 (cli_env): the name is found in the cache
    r = gemb2(
        "embed", "-", "--model", "embeddinggemma-2", "--task", "query", "--dim", "128",
        input="\n".join(LINES), env={"HF_HUB_CACHE": str(cache)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert np.abs(_vectors(r.stdout) - want).max() < 1e-6


@pytest.fixture
def online(monkeypatch, tmp_path):
    """huggingface_hub in this process, online, pointed at `hub` with an empty cache (what HF_ENDPOINT and
    HF_HUB_CACHE do in a new process: the tests below call gemb2's Python entry points, no process started)."""
    import huggingface_hub.constants as hc

    def point(hub: FakeHub) -> Path:
        monkeypatch.setattr(hc, "ENDPOINT", hub.url)
        monkeypatch.setattr(hc, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
        return tmp_path / "hub"

    return point


def test_pull_offline_a_missing_repo_and_a_hub_down_are_usage_usage_and_fatal(
    hub_folder, online, monkeypatch, tmp_path
):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelSourceError, match="HF_HUB_OFFLINE"):  # HF_HUB_OFFLINE=1 as in every test
        pull("embeddinggemma-2")
    pickled_only = tmp_path / "pickled-only"  # a repo whose weights are a pickle alone: nothing gemb2 may load
    pickled_only.mkdir()
    shutil.copy(hub_folder / "config.json", pickled_only / "config.json")
    shutil.copy(hub_folder / "pytorch_model.bin", pickled_only / "pytorch_model.bin")
    with FakeHub({REPO: hub_folder, "someone/pickled": pickled_only}) as hub:
        online(hub)
        with pytest.raises(ModelSourceError, match=r"^hf:nobody/no-such-model: cannot fetch .*RepositoryNotFound"):
            pull("hf:nobody/no-such-model")
        with pytest.raises(ModelSourceError, match=r"^hf:someone/pickled: no complete safetensors weights"):
            pull("hf:someone/pickled")
        assert hub.fetched() == {"config.json"}
        hub.down = 503  # the whole Hub: the same command may work later
        with pytest.raises(HubError, match="503") as e:
            pull("embeddinggemma-2")
        assert e.value.exit_code == EXIT_FATAL and "\n" not in str(e.value)
        hub.down = None
        assert (pull("embeddinggemma-2") / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_failed_pull_is_one_line_and_what_it_left_never_loads_until_pulled_again(hub_folder, tmp_path, online):
    cache = tmp_path / "hub"
    with FakeHub({REPO: hub_folder}) as hub:
        hub.fail["model.safetensors"] = 500  # the configs arrive, the weights do not
        r = gemb2("pull", "embeddinggemma-2", env=hub.env(cache))
        assert r.returncode == EXIT_FATAL, r.stderr
        assert _error_lines(r) == [_error_lines(r)[0]] and _error_lines(r)[0].startswith("gemb2: error: hf:google/")
        assert "500" in r.stderr and "Traceback" not in r.stderr
        assert "config.json" in _files(cache) and "model.safetensors" not in _files(cache)
        # what is in the cache is refused offline, naming the command that completes it
        r = gemb2("embed", "-", "--model", "embeddinggemma-2", input="x\n", env={"HF_HUB_CACHE": str(cache)})
        assert r.returncode == EXIT_USAGE and r.stdout == ""
        assert len(_error_lines(r)) == 1 and "gemb2 pull embeddinggemma-2" in r.stderr
        hub.fail.clear()  # the Hub is back: pulling again completes the same snapshot
        assert online(hub) == cache
        path = pull("embeddinggemma-2")
    assert resolve("embeddinggemma-2") == ("gemma2", path) and (path / "model.safetensors").is_file()


def _snapshot(cache: Path, src: Path, leave_out: str) -> Path:
    """A cache entry for REPO as an older huggingface_hub leaves an interrupted download: refs/main and a
    snapshot missing `leave_out`, and no tree listing to tell it is incomplete."""
    repo = cache / "models--google--embeddinggemma-2"
    snap = repo / "snapshots" / ("1" * 40)
    shutil.copytree(src, snap, ignore=shutil.ignore_patterns(*PICKLES, "extra"))
    (snap / leave_out).unlink()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("1" * 40)
    return snap


def test_a_snapshot_without_its_weights_is_refused_even_without_a_tree_listing(hub_folder, tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    cache = tmp_path / "hub"
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    snap = _snapshot(cache, hub_folder, "model.safetensors")
    with pytest.raises(ModelSourceError, match=r"only partly in the Hugging Face cache.*run `gemb2 pull embedding"):
        resolve("embeddinggemma-2")
    # sharded weights: every shard the index names must be there
    (snap / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    )
    shutil.copy(hub_folder / "model.safetensors", snap / "model-00001-of-00002.safetensors")
    with pytest.raises(ModelSourceError, match="only partly"):
        resolve("embeddinggemma-2")
    shutil.copy(hub_folder / "model.safetensors", snap / "model-00002-of-00002.safetensors")
    assert resolve("embeddinggemma-2") == ("gemma2", snap)


def test_hf_org_name_downloads_this_family_told_apart_by_its_config(hub_folder, want, online):
    with FakeHub({"someone/eg2-tiny-finetune": hub_folder}) as hub:
        online(hub)
        kind, path = resolve("hf:someone/eg2-tiny-finetune")
        assert kind == "gemma2" and not set(PICKLES) & hub.fetched()
        got = load_model("hf:someone/eg2-tiny-finetune").encode(LINES, task="query", dim=128)
    assert np.abs(got - want).max() < 1e-6
