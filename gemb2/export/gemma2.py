"""EmbeddingGemma 2 (gemb2/pretrained/embedding_gemma2.py) as ONNX graphs, with a manifest a client can follow.

    export_gemma2(model, "out/", dim=None, force=False)
        -> out/text.onnx, image.onnx and audio.onnx (those whose tower the folder has), tokenizer.json, the
           folder's processor and prompt configs (COPIED), manifest.json

    text   input_ids (B, T) int64, attention_mask (B, T) int64  ->  embedding (B, dim)
           rows as EmbeddingGemma2.token_ids makes them: prompt + text through tokenizer.json (<bos> ... <eos>),
           right-padded with pad_id
    image  input_ids, attention_mask as above, with each image's slots in the text (<|image> + n x <|image|> +
           <image|>, n its soft tokens), pixel_values (N, max_patches, 3 * patch^2) float32 and image_position_ids
           (N, max_patches, 2) int64 from the folder's image processor (transformers' Gemma4ImageProcessor), the N
           images of the batch in the order of their slots  ->  embedding (B, dim)
    audio  input_ids, attention_mask with each clip's slots (<|audio> + n x <|audio|> + <audio|>), input_features
           (N, frames, 128) float32 and input_features_mask (N, frames) bool from Gemma4AudioFeatureExtractor
           ->  embedding (B, dim)

Every graph is the wrapped transformers model, mean pooling over the attention mask and L2 normalisation (then
the Matryoshka prefix, re-normalised, when `dim` < out_dim), traced with `torch.onnx.export(dynamo=False)`; the
text model's sliding-window and full bidirectional masks, its per-layer embeddings (computed from the input
embeddings) and the 2-D patch positions trace as they are. What does not:
- transformers' `get_image_features` splits the soft tokens per image with a Python list (`tolist()`), which the
  tracer freezes to the traced images. The media graphs (_MediaGraph) therefore do what
  `EmbeddingGemma2Model.forward` does without that split: the towers' soft tokens, padding dropped, in order, are
  scattered into the slots (masked_scatter), as the reference does after concatenating the split.
- the audio tower builds its masks with torch.vmap and its block context with a dynamic-length Tensor.unfold:
  `traceable_audio` swaps both for equivalent index arithmetic while the audio graph is traced.
(The dynamo exporter needs onnxscript, which gemb2 does not depend on.)

Every graph is checked before anything is written (`check`): onnxruntime runs it on other batch sizes and lengths
than the traced ones (texts of several lengths with padding; a PNG and a WAV written here and decoded by gemb2's
own loaders, beside text, other media and text-only rows) and its vectors must match `model.encode` within
CHECK_TOL; past it the export fails with a one-line error and writes nothing. Video is listed under the
manifest's `not_exported` with the reason. Writing is all or nothing (onnx.write_folder).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import types
import warnings
import wave
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gemb2.errors import FatalError
from gemb2.export import ExportError
from gemb2.model.model import truncate
from gemb2.parts import Audio, Image, Item, Part, Text, as_item
from gemb2.pipeline.interrupt import StopSignal
from gemb2.pretrained.embedding_gemma2 import AUDIO_TOKENS, FAMILY, EmbeddingGemma2

from .manifest import MANIFEST_VERSION, plain_tokenizer_json

OPSET = 17
CHECK_TOL = 1e-4  # max abs difference between a graph and model.encode on unit vectors (fp32)
COPIED = (  # the folder's files a client needs besides tokenizer.json, copied as they are when present
    "tokenizer_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    "config_sentence_transformers.json",
)
NOT_EXPORTED = {
    "video": "not exported yet: gemb2 embeds video with this family through PyTorch only (the text, image and "
    "audio graphs are the ones exported)"
}


class ExportCheckError(FatalError):
    """A graph that does not reproduce the model within CHECK_TOL: nothing is written."""


class TextGraph(nn.Module):
    def __init__(self, model: EmbeddingGemma2, dim: int) -> None:
        super().__init__()
        self.m, self.dim = model, dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return truncate(self.m(input_ids, attention_mask), self.dim)  # (B, dim)


class _MediaGraph(TextGraph):
    """EmbeddingGemma2Model.forward for text with media slots: the tower's soft tokens of every clip or image, in
    order and without padding, scattered into the slots of `token_id`; then the text model, pooling, normalising."""

    def vector(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_id: int, soft) -> torch.Tensor:
        hf: Any = self.m.hf
        slots = input_ids == token_id  # (B, T)
        pad = hf.config.text_config.pad_token_id
        x = hf.get_input_embeddings()(torch.where(slots, pad, input_ids))  # (B, T, H)
        x = x.masked_scatter(slots.unsqueeze(-1).expand_as(x), soft.to(x.dtype))  # soft: (slots in the batch, H)
        h = hf.language_model(attention_mask=attention_mask, inputs_embeds=x).last_hidden_state  # (B, T, H)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)  # (B, H): EmbeddingGemma2.forward's pooling
        return truncate(F.normalize(pooled.float(), dim=-1), self.dim)


class ImageGraph(_MediaGraph):
    """Images without transformers' per-image split (module docstring): the vision tower drops the padding."""

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_position_ids: torch.Tensor,
    ) -> torch.Tensor:
        hf: Any = self.m.hf
        soft = hf.vision_tower(pixel_values=pixel_values, pixel_position_ids=image_position_ids).last_hidden_state
        return self.vector(input_ids, attention_mask, hf.config.image_token_id, hf.embed_vision(inputs_embeds=soft))


class AudioGraph(_MediaGraph):
    """Audio clips: the audio tower's soft tokens where its output mask says real, as the reference keeps them."""

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        input_features: torch.Tensor,
        input_features_mask: torch.Tensor,
    ) -> torch.Tensor:
        hf: Any = self.m.hf
        out = hf.get_audio_features(input_features, input_features_mask, return_dict=True)
        soft = out.pooler_output[out.attention_mask]  # (real soft tokens of all clips, H)
        return self.vector(input_ids, attention_mask, hf.config.audio_token_id, soft)


GRAPH_MODULES = {"text": TextGraph, "image": ImageGraph, "audio": AudioGraph}
AXES = {
    "input_ids": {0: "batch", 1: "length"},
    "attention_mask": {0: "batch", 1: "length"},
    "pixel_values": {0: "images"},
    "image_position_ids": {0: "images"},
    "input_features": {0: "clips", 1: "frames"},
    "input_features_mask": {0: "clips", 1: "frames"},
}


@contextmanager
def traceable_audio(model: EmbeddingGemma2) -> Iterator[None]:
    """While tracing the audio graph, two pieces of the audio tower take a form the TorchScript exporter converts
    (as optimum's export patchers do): its attention masks are built by broadcasting index tensors instead of
    torch.vmap (transformers' sdpa_mask use_vmap=False: the mask functions are index-based), and each attention
    layer's overlapping block context is a gather of window indices instead of Tensor.unfold (which needs a static
    length). Both give the same numbers; the check compares the graph with the unpatched model."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS as masks

    def no_vmap(make: Callable) -> Callable:
        return lambda *a, **kw: make(*a, **(kw | {"use_vmap": False}))

    def block_context(self: Any, h: torch.Tensor) -> torch.Tensor:  # (B, T, heads, d) -> (B, blocks, context, ...)
        h = F.pad(h, (0, 0, 0, 0, self.max_past_horizon, self.max_future_horizon + self.chunk_size - 1))
        n = (h.shape[1] - self.context_size) // self.chunk_size + 1
        idx = (torch.arange(n) * self.chunk_size)[:, None] + torch.arange(self.context_size)[None, :]
        return h[:, idx]

    tower: Any = model.hf.audio_tower
    layers = [m for m in tower.modules() if hasattr(m, "_extract_block_context")]
    for key in ("sdpa", "eager"):
        masks[key] = no_vmap(masks[key])  # this interface's local override; del restores the global one
    for m in layers:
        m._extract_block_context = types.MethodType(block_context, m)
    try:
        yield
    finally:
        for key in ("sdpa", "eager"):
            del masks[key]
        for m in layers:
            del m._extract_block_context


def feeds(model: EmbeddingGemma2, items: Sequence[Item | Part | str], task: str | None) -> dict[str, np.ndarray]:
    """What the manifest says to feed a graph for `items` (texts, or items with images): input_ids and
    attention_mask (B, T) int64 (right-padded with pad_id), and with images pixel_values and image_position_ids
    from the folder's image processor, in slot order. The model's own layout makes them, as `encode` does."""
    laid = [model.layout(as_item(x), model.prompt(task)) for x in items]
    ids = model._ids([t for t, _ in laid], [not media for _, media in laid])
    longest = max(len(r) for r in ids)
    x = np.full((len(ids), longest), model.pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), longest), dtype=np.int64)
    for i, r in enumerate(ids):
        x[i, : len(r)], mask[i, : len(r)] = r, 1
    media = model._media([m for _, ms in laid for m in ms], torch.device("cpu"), trim=False)  # max_patches
    return {"input_ids": x, "attention_mask": mask} | {k: v.numpy() for k, v in media.items()}


def _tone(seconds: float, freq: float, seed: int, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * noise).astype(np.float32)


def _trace_items(model: EmbeddingGemma2, name: str) -> list[Item | str]:
    """What a graph is traced on (batch 2, one padded row); the check uses other batch sizes and lengths."""
    if name == "text":
        return ["a photo of a dog on the beach", "hi"]
    if name == "audio":
        return [[Audio(_tone(1.0, 440, 0))], [Text("a sound: "), Audio(_tone(2.3, 300, 1))]]
    rng = np.random.default_rng(0)
    return [
        [Image(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8))],
        [Text("a cat"), Image(rng.integers(0, 256, (64, 30, 3), dtype=np.uint8))],
    ]


def _check_items(model: EmbeddingGemma2, name: str, scratch: Path) -> list[list[Item | str]]:
    """Check batches: texts of several lengths with padding (one longer than the sliding window and the traced
    rows); an image written as a PNG, or a clip as a 22.05 kHz WAV, decoded (and resampled) by gemb2's loader,
    beside text, another image or clip, and a text-only row."""
    if name == "text":
        long = "a long sentence about many things, " * 6
        return [["x", long, "the cat sat on the mat", "hello world"], [long + "and more"]]
    from gemb2.data.load import load_file

    if name == "audio":
        pcm = (_tone(3.7, 523, 2, rate=22050) * 32767).astype("<i2")
        with wave.open(str(scratch / "check.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(22050)
            w.writeframes(pcm.tobytes())
        clip = next(iter(load_file(scratch / "check.wav", "audio", model.load_spec()))).parts[0]
        return [[[clip]], [[clip], [Text("a beep: "), Audio(_tone(0.6, 880, 3))], "no sound here"]]
    from PIL import Image as PILImage

    yy, xx = np.mgrid[0:90, 0:120]
    rgb = np.stack([xx * 2, yy * 2, ((xx - 60) ** 2 + (yy - 45) ** 2 < 900) * 255], -1).astype(np.uint8)
    PILImage.fromarray(rgb).save(scratch / "check.png")
    decoded = next(iter(load_file(scratch / "check.png", "image", model.load_spec()))).parts[0]
    small = Image(np.ascontiguousarray(rgb[::3, ::2]))
    return [[[decoded]], [[decoded], [Text("a red circle: "), small], "no image here"]]


def check(model: EmbeddingGemma2, name: str, path: Path, dim: int, scratch: Path) -> dict[str, Any]:
    """Run graph `name` with onnxruntime on the check batches and compare with model.encode (fp32); the manifest's
    record, or ExportCheckError past CHECK_TOL."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"checked": False, "why": "onnxruntime is not installed"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff, batches = 0.0, []
    for items in _check_items(model, name, scratch):
        got = session.run(None, feeds(model, items, "query"))[0]
        want = model.encode(items, task="query", dim=dim, precision="fp32")
        diff = max(diff, float(np.abs(got - want).max()))
        batches.append(len(items))
    if not diff <= CHECK_TOL:
        raise ExportCheckError(
            f"the {name} graph does not reproduce the model: max abs difference {diff:.3g} > {CHECK_TOL:g}; "
            "nothing written"
        )
    return {
        "checked": True,
        "max_abs_diff": diff,
        "tolerance": CHECK_TOL,
        "batches": batches,
        "against": "gemb2 model.encode (fp32) on the same items, other batch sizes and lengths than the traced ones",
    }


def export_gemma2(model: EmbeddingGemma2, out: str | Path, *, dim: int | None = None, force: bool = False) -> dict:
    """Write the text (and image) graphs, tokenizer and processor configs and manifest.json as the folder `out`,
    all or nothing. ExportError for a bad `dim` or an existing `out`; ExportCheckError when a graph fails its
    check (nothing written)."""
    from .onnx import _check_onnx, write_folder

    _check_onnx()
    try:
        dim = model.check_dim(dim)
    except ValueError as e:
        raise ExportError(f"--dim {dim}: {e}") from e
    return write_folder(out, force, lambda folder, stop: _write(model.eval().float().cpu(), folder, dim, stop))


def _write(model: EmbeddingGemma2, folder: Path, dim: int, stop: StopSignal) -> dict[str, Any]:
    has = {"image": model.image_processor is not None, "audio": model.audio_features is not None}
    names = ["text"] + [n for n, ok in has.items() if ok]
    skipped = dict(NOT_EXPORTED)
    if not has["image"]:
        skipped["image"] = "this folder has no vision tower (or no preprocessor_config.json)"
    if not has["audio"]:
        skipped["audio"] = "this folder has no audio tower"
    graphs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            graphs[name] = _export_graph(model, name, folder, dim, Path(scratch))
            stop.raise_if_set()
    source = Path(model.tokenizer_file).parent
    tok = plain_tokenizer_json(Path(model.tokenizer_file).read_text(encoding="utf-8"))
    (folder / "tokenizer.json").write_text(tok, encoding="utf-8")
    copied = [f for f in COPIED if (source / f).is_file()]
    for f in copied:
        shutil.copyfile(source / f, folder / f)
    manifest = build_manifest(model, dim, graphs, skipped, copied)
    with open(folder / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    stop.raise_if_set()
    return manifest


def _export_graph(model: EmbeddingGemma2, name: str, folder: Path, dim: int, scratch: Path) -> dict[str, Any]:
    """Trace graph `name` to folder/name.onnx and check it; its record in the manifest."""
    feed = feeds(model, _trace_items(model, name), "query")
    inputs = list(feed)
    axes = {k: AXES[k] for k in inputs}
    path = folder / f"{name}.onnx"
    patched = traceable_audio(model) if name == "audio" else nullcontext()
    with torch.no_grad(), warnings.catch_warnings(), patched:
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for these inputs
        torch.onnx.export(
            GRAPH_MODULES[name](model, dim),
            tuple(torch.from_numpy(feed[k]) for k in inputs),
            str(path),
            input_names=inputs,
            output_names=["embedding"],
            dynamic_axes=axes | {"embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return {
        "file": path.name,
        "inputs": [
            {"name": k, "dtype": str(feed[k].dtype), "shape": [axes[k].get(i, n) for i, n in enumerate(feed[k].shape)]}
            for k in inputs
        ],
        "output": {"name": "embedding", "dtype": "float32", "shape": ["batch", dim], "l2_normalised": True},
        "check": check(model, name, path, dim, scratch),
    }


def build_manifest(
    model: EmbeddingGemma2, dim: int, graphs: dict[str, Any], skipped: dict[str, str], copied: list[str]
) -> dict[str, Any]:
    """The manifest of an export at `dim`: graphs written (name -> record), `skipped` (name -> why), the rules."""
    cfg = model.config
    return {
        "format": "gemb2 onnx export",
        "format_version": MANIFEST_VERSION,
        "family": FAMILY,
        "model": model.model_id,
        "opset": OPSET,
        "dim": dim,
        "out_dim": cfg.out_dim,
        "matryoshka": dim != cfg.out_dim,
        "matryoshka_dims": [d for d in cfg.matryoshka_dims if d <= dim],
        "matryoshka_rule": "keep the first d coordinates of `embedding` (d one of matryoshka_dims) and re-normalise",
        "graphs": graphs,
        "not_exported": skipped,
        "files": ["tokenizer.json", *copied],
        "text": _text(model),
        "image": _image(model) if "image" in graphs else None,
        "audio": _audio(model) if "audio" in graphs else None,
    }


def _text(model: EmbeddingGemma2) -> dict[str, Any]:
    cfg = model.config
    return {
        "tokenizer": {
            "file": "tokenizer.json",
            "add_special_tokens": True,
            "note": "Tokenizer.from_file(...).encode(prompt + text).ids: the file's post-processor adds <bos> and "
            "<eos>; its padding and truncation are removed",
        },
        "pad_id": model.pad_id,
        "max_text_tokens": cfg.max_text_tokens,
        "prompts": dict(cfg.prompts),
        "tasks": {t: model.prompt_name(t) for t in ("query", "document")},
        "layout": "row = ids(prompts[name] + text); a text-only row longer than max_text_tokens keeps its first "
        "max_text_tokens - 1 ids and its last (<eos>); rows with images are not cut. Pad rows on the right with "
        "pad_id to the batch's longest; attention_mask 1 on real ids, 0 on padding",
        "windows": "gemb2 embeds long text files as windows of load_spec text_window_tokens tokens, one vector each",
    }


def _image(model: EmbeddingGemma2) -> dict[str, Any]:
    ip: Any = model.image_processor
    hf: Any = model.hf
    boi, tok, eoi = model._image_marks
    c = hf.config
    return {
        "graph": "image",
        "processor": "preprocessor_config.json (transformers' Gemma4ImageProcessor: resize to the soft-token "
        "budget, patchify, pad to max_patches with position (-1, -1))",
        "patch_size": ip.patch_size,
        "pooling_kernel_size": ip.pooling_kernel_size,
        "max_soft_tokens": ip.max_soft_tokens,
        "max_patches": ip.max_soft_tokens * ip.pooling_kernel_size**2,
        "slots": {"begin": boi, "token": tok, "end": eoi, "ids": [c.boi_token_id, c.image_token_id, c.eoi_token_id]},
        "layout": "each image of an item becomes begin + n x token + end in its text, where it stands; n = (h // "
        "patch_size) * (w // patch_size) // pooling_kernel_size^2 with (h, w) the processor's resized size "
        "(gemb2.parts.patch_budget_size); pixel_values and image_position_ids stack the batch's images in the "
        "order of their slots, and the slots must number the images' soft tokens",
        "decode": "gemb2's image loader (Pillow, EXIF orientation applied, RGB), whole images",
    }


def _audio(model: EmbeddingGemma2) -> dict[str, Any]:
    fe: Any = model.audio_features
    boa, tok, eoa = model._audio_marks
    c: Any = model.hf.config
    return {
        "graph": "audio",
        "feature_extractor": "transformers' Gemma4AudioFeatureExtractor with its defaults (the folder has no "
        "config for it): log-mel input_features (clips, frames, feature_size) float32 and input_features_mask "
        "(clips, frames) bool, the batch's clips padded to the longest",
        "sample_rate": fe.sampling_rate,
        "feature_size": fe.feature_size,
        "hop_length": fe.hop_length,
        "max_soft_tokens": AUDIO_TOKENS,
        "slots": {"begin": boa, "token": tok, "end": eoa, "ids": [c.boa_token_id, c.audio_token_id, c.eoa_token_index]},
        "layout": "each clip of an item becomes begin + n x token + end in its text, where it stands; n = "
        "min(EmbeddingGemma2Processor.compute_sscp(its input_features_mask), max_soft_tokens) (the frames through "
        "two stride-2 convolutions); the clips are stacked in the order of their slots",
        "decode": "gemb2's audio loader: mono float32 at sample_rate (libsndfile / FFmpeg, libswresample), "
        "cut into 30 s windows, one vector each",
    }
