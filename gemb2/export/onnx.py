"""The model as ONNX graphs for serving: one graph per modality encoder, plus a manifest saying how to feed them.

    export_onnx(model, "out/", dim=None)  ->  out/{text,image,audio,video}.onnx, tokenizer.json, manifest.json

Each graph is the whole model for items of one modality, from model-ready inputs to the L2-normalised
vector, the task prompt baked in where the model would add one:

    text   input_ids (B, T) int64, attention_mask (B, T) int64  ->  embedding (B, D)
           the caller tokenises: [CLS] + prompt ids + text ids + [SEP], right-padded with [PAD] (manifest)
    image  pixels (B, 3, S, S) uint8 RGB  ->  embedding (B, D)            sequence [CLS] doc-prompt <image> [SEP]
    audio  samples (B, N) float32, 16 kHz mono, N a multiple of samples_per_token  ->  embedding (B, D)
    video  frames (B, F, 3, S, S) uint8, times (B, F) float32 seconds, samples (B, N) float32 -> embedding (B, D)
           the frames through the image stem, pooled per frame + their time embedding, then the audio
           track through the audio stem, in one sequence: the graph composes the two stems as the model does.

Batch, text length, audio length and frame count are dynamic axes. `dim` bakes in a Matryoshka
truncation and re-normalisation (Kusupati et al. 2022), so the graph outputs (B, dim).

Stems: a graph calls `model.image_stem` / `model.audio_stem` through their contract ((B, 3, S, S) uint8
-> (B, k, H); (B, N) -> (B, N / samples_per_token, H)), so a new stem exports if it traces. torch.stft
does not export with the TorchScript exporter; while exporting, the log-mel front end
(`gemb2.model.audio_features.log_mel`) is swapped for `onnx_log_mel`, the same computation with the
DFT as a strided convolution against cos/sin kernels (numerically equal within float32 rounding).

Reference for the graph format: ONNX (onnx.ai) with the TorchScript-based `torch.onnx.export(dynamo=False)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OPSET = 17
MODALITIES = ("text", "image", "audio", "video")


class ExportError(Exception):
    """The model cannot be exported as asked (a missing stem, a bad --dim, onnx not installed)."""


# --- an ONNX-friendly log-mel ---------------------------------------------------------------


def onnx_log_mel(samples: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """`log_mel` (Whisper's front end) with the STFT as a convolution: (B, N) -> (B, n_mels, N // 160)."""
    from gemb2.model.audio_features import HOP_LENGTH, N_FFT, mel_filterbank

    x = samples.float().unsqueeze(1)  # (B, 1, N)
    x = F.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")  # centred frames, as torch.stft(center=True)
    n = torch.arange(N_FFT, dtype=torch.float64)
    f = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    angle = 2 * torch.pi * f[:, None] * n[None, :] / N_FFT  # (F, n_fft)
    kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window]).float().unsqueeze(1)  # (2F, 1, n_fft)
    spec = F.conv1d(x, kernels, stride=HOP_LENGTH)  # (B, 2F, frames + 1)
    re, im = spec.chunk(2, dim=1)  # (B, F, frames + 1) each
    power = (re * re + im * im)[..., :-1]  # (B, F, frames): Whisper drops the last frame
    filters = torch.from_numpy(mel_filterbank(n_mels=n_mels).copy())  # (n_mels, F)
    mel = torch.matmul(filters, power)  # (B, n_mels, frames)
    logs = torch.clamp(mel, min=1e-10).log10()
    peak = logs.amax(dim=(-2, -1), keepdim=True)  # per clip
    logs = torch.maximum(logs, peak - 8.0)
    return (logs + 4.0) / 4.0


@contextlib.contextmanager
def _exportable_front_ends() -> Iterator[None]:
    """Swap `log_mel` for `onnx_log_mel` in the stems that import it, for the duration of an export."""
    import importlib

    patched = []
    for name in ("gemb2.model.audio_stem", "gemb2.model.whisper_stem"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "log_mel"):
            patched.append((mod, mod.log_mel))
            mod.log_mel = onnx_log_mel
    try:
        yield
    finally:
        for mod, fn in patched:
            mod.log_mel = fn


# --- the graphs ------------------------------------------------------------------------------


class _Head(nn.Module):
    """What every graph ends with: backbone -> masked mean pool -> projection -> normalise (-> Matryoshka)."""

    def __init__(self, model, dim: int):
        super().__init__()
        self.m, self.dim = model, dim

    def finish(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # (B, T, H), (B, T) bool -> (B, dim)
        h = self.m.backbone(x, mask)  # (B, T, H)
        w = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * w).sum(1) / w.sum(1)  # (B, H)
        v = F.normalize(self.m.projection(pooled), dim=-1)  # (B, out_dim)
        return v if self.dim == v.shape[-1] else F.normalize(v[:, : self.dim], dim=-1)  # (B, dim)

    def wrap(self, ids: list[int], B: int) -> torch.Tensor:  # constant token ids -> (B, len, H), typed text
        t = torch.tensor(ids, dtype=torch.long)
        e = self.m.backbone.embeddings.word_embeddings(t) + self.m.modality_embeddings(torch.zeros_like(t))
        return e.unsqueeze(0).expand(B, -1, -1)

    def typed(self, tokens: torch.Tensor, kind: str) -> torch.Tensor:  # (B, m, H) media tokens + their type
        from gemb2.model.model import KINDS

        return tokens + self.m.modality_embeddings.weight[KINDS[kind]]


class TextGraph(_Head):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask > 0  # (B, T)
        x = self.m.backbone.embeddings.word_embeddings(input_ids)  # (B, T, H)
        x = self.typed(x, "text")
        return self.finish(x, mask)


class ImageGraph(_Head):
    def __init__(self, model, dim: int, prefix: list[int], sep: int):
        super().__init__(model, dim)
        self.prefix, self.sep = prefix, sep

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        B = pixels.shape[0]
        tokens = self.typed(self.m.image_stem(pixels), "image")  # (B, k, H)
        x = torch.cat([self.wrap(self.prefix, B), tokens, self.wrap([self.sep], B)], dim=1)  # (B, T, H)
        return self.finish(x, torch.ones(x.shape[:2], dtype=torch.bool))


class AudioGraph(ImageGraph):
    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        B = samples.shape[0]
        tokens = self.typed(self.m.audio_stem(samples), "audio")  # (B, m, H)
        x = torch.cat([self.wrap(self.prefix, B), tokens, self.wrap([self.sep], B)], dim=1)
        return self.finish(x, torch.ones(x.shape[:2], dtype=torch.bool))


class VideoGraph(ImageGraph):
    """Frames through the image stem, each pooled to r tokens plus its time embedding, then the audio track."""

    def forward(self, frames: torch.Tensor, times: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        cfg, m = self.m.config, self.m
        B, Fn = frames.shape[0], frames.shape[1]
        f = m.image_stem(frames.reshape(B * Fn, *frames.shape[2:]))  # (B*F, k, H)
        H, g = f.shape[-1], m.image_stem.grid
        f = f.transpose(1, 2).reshape(B * Fn, H, g, g)  # (B*F, H, g, g)
        side = int(round(cfg.video_tokens_per_frame ** 0.5))
        f = F.avg_pool2d(f, g // side) if g % side == 0 else F.adaptive_avg_pool2d(f, side)  # (B*F, H, s, s)
        f = f.flatten(2).transpose(1, 2)  # (B*F, r, H)
        buckets = torch.clamp(torch.floor(times / cfg.time_bucket_s), 0, cfg.max_time_buckets - 1).long()  # (B, F)
        f = f + m.time_embeddings(buckets.reshape(-1))[:, None, :]  # (B*F, r, H)
        f = self.typed(f.reshape(B, -1, H), "video")  # (B, F*r, H)
        a = self.typed(m.audio_stem(samples), "audio")  # (B, m, H)
        x = torch.cat([self.wrap(self.prefix, B), f, a, self.wrap([self.sep], B)], dim=1)
        return self.finish(x, torch.ones(x.shape[:2], dtype=torch.bool))


# --- export ---------------------------------------------------------------------------------


def _check_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ExportError("exporting to ONNX needs the onnx package: pip install 'gemb2[onnx]' (or pip install onnx)") from e


def export_onnx(model, out: str, *, dim: int | None = None, modalities: tuple[str, ...] = MODALITIES) -> dict:
    """Write one ONNX graph per modality the model has a stem for, the tokenizer and manifest.json into `out`.

    Returns the manifest. Raises ExportError for a `dim` that is not one of the model's Matryoshka dims.
    """
    _check_onnx()
    cfg = model.config
    try:
        dim = model.check_dim(dim)
    except ValueError as e:
        raise ExportError(f"--dim {dim}: {e}") from e
    os.makedirs(out, exist_ok=True)
    tok = model.tokenizer
    doc_prompt = tok.encode(cfg.document_prompt) if cfg.document_prompt else []
    prefix = [tok.cls_id] + doc_prompt[: cfg.max_text_tokens - 2]
    spt = model.audio_stem.samples_per_token if model.audio_stem is not None else 0
    S = cfg.image_size
    graphs: dict[str, dict] = {}
    model = model.eval().float().cpu()

    def one_second_audio(B: int) -> torch.Tensor:  # (B, N) a whole number of tokens
        n = max(1, 16000 // spt) * spt
        return torch.randn(B, n, generator=torch.Generator().manual_seed(0)) * 0.1

    plans = {
        # a padded example: tracing must take the masked-attention path (an all-ones mask may skip it)
        "text": (lambda: TextGraph(model, dim), (torch.full((2, 7), tok.pad_id), torch.tensor([[1] * 7, [1] * 4 + [0] * 3])),
                 ["input_ids", "attention_mask"], {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}),
        "image": (lambda: ImageGraph(model, dim, prefix, tok.sep_id), (torch.zeros(2, 3, S, S, dtype=torch.uint8),),
                  ["pixels"], {"pixels": {0: "batch"}}),
        "audio": (lambda: AudioGraph(model, dim, prefix, tok.sep_id), (one_second_audio(2),),
                  ["samples"], {"samples": {0: "batch", 1: "samples"}}),
        "video": (lambda: VideoGraph(model, dim, prefix, tok.sep_id),
                  (torch.zeros(2, 3, 3, S, S, dtype=torch.uint8), torch.tensor([[0.0, 1.0, 2.0]] * 2), one_second_audio(2)),
                  ["frames", "times", "samples"], {"frames": {0: "batch", 1: "frames"}, "times": {0: "batch", 1: "frames"},
                                                    "samples": {0: "batch", 1: "samples"}}),
    }
    needs = {"text": (), "image": ("image_stem",), "audio": ("audio_stem",), "video": ("image_stem", "audio_stem")}
    skipped = {}
    for name in modalities:
        missing = [s for s in needs[name] if getattr(model, s, None) is None]
        if missing:
            skipped[name] = f"the model has no {' or '.join(missing)}"
            continue
        build, args, inputs, axes = plans[name]
        path = os.path.join(out, f"{name}.onnx")
        with torch.no_grad(), _exportable_front_ends(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for these inputs
            torch.onnx.export(build(), args, path, input_names=inputs, output_names=["embedding"],
                              dynamic_axes=axes | {"embedding": {0: "batch"}}, opset_version=OPSET, dynamo=False)
        graphs[name] = {"file": f"{name}.onnx", "inputs": _describe_inputs(name, cfg, spt), "output": {
            "name": "embedding", "dtype": "float32", "shape": ["batch", dim], "l2_normalised": True}}
    tok.save(os.path.join(out, "tokenizer.json"))
    manifest = {
        "format": "gemb2 onnx export",
        "model": model.model_id,
        "opset": OPSET,
        "dim": dim,
        "out_dim": cfg.out_dim,
        "matryoshka": dim != cfg.out_dim,
        "graphs": graphs,
        "not_exported": skipped,
        "text": {
            "tokenizer": "tokenizer.json (encode without special tokens)",
            "cls_id": tok.cls_id, "sep_id": tok.sep_id, "pad_id": tok.pad_id,
            "max_text_tokens": cfg.max_text_tokens,
            "prompts": {"query": cfg.query_prompt, "document": cfg.document_prompt},
            "layout": "[CLS] + ids(prompt) + ids(text), cut to max_text_tokens - 1, + [SEP]; pad right with [PAD], attention_mask 0 there",
        },
        "media_prompt": {"task": "document", "ids": prefix, "note": "baked into the image, audio and video graphs"},
        "preprocessing": {
            "image": f"RGB uint8, resized so the shorter side is {S} then centre-cropped to {S}x{S} (gemb2.parts.fit_image), "
                     "channels first; the graph normalises with CLIP's mean and std",
            "audio": f"mono float32 in [-1, 1] at 16000 Hz, at most {cfg.audio_window_s:g} s (one window), "
                     f"zero-padded to a multiple of {spt} samples; the graph computes Whisper's log-mel",
            "video": f"frames sampled at {cfg.video_fps:g} fps, at most {cfg.max_frames} per window (evenly spaced), each as "
                     f"an image; times in seconds from the window start; samples: the window's audio track as for audio. "
                     f"The graph needs a sound track: gemb2 embeds a silent video with no audio tokens, which this "
                     f"graph does not reproduce (a silent-video graph is not exported yet)",
        },
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    return manifest


def _describe_inputs(name: str, cfg, spt: int) -> list[dict]:
    S = cfg.image_size
    return {
        "text": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "length"]},
                 {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "length"]}],
        "image": [{"name": "pixels", "dtype": "uint8", "shape": ["batch", 3, S, S]}],
        "audio": [{"name": "samples", "dtype": "float32", "shape": ["batch", f"samples (multiple of {spt})"]}],
        "video": [{"name": "frames", "dtype": "uint8", "shape": ["batch", "frames", 3, S, S]},
                  {"name": "times", "dtype": "float32", "shape": ["batch", "frames"]},
                  {"name": "samples", "dtype": "float32", "shape": ["batch", f"samples (multiple of {spt})"]}],
    }[name]


def text_inputs(model, texts: list[str], task: str | None = "document") -> tuple[np.ndarray, np.ndarray]:
    """What the manifest says to feed the text graph, for `texts`: (input_ids, attention_mask) int64 (B, T)."""
    cfg, tok = model.config, model.tokenizer
    prompt = {"query": cfg.query_prompt, "document": cfg.document_prompt, None: ""}[task]
    p = tok.encode(prompt) if prompt else []
    rows = [([tok.cls_id] + p + tok.encode(t))[: cfg.max_text_tokens - 1] + [tok.sep_id] for t in texts]
    T = max(len(r) for r in rows)
    ids = np.full((len(rows), T), tok.pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), T), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask
