"""The model as ONNX graphs for serving: one graph per input kind, plus a manifest a client in any language can follow.

    export_onnx(model, "out/", dim=None, force=False)
        -> out/{text,image,audio,video,video_frames}.onnx, tokenizer.json, manifest.json

Each graph is the whole model for items of one kind, from model-ready inputs to the L2-normalised vector,
the task prompt baked in where the model would add one:

    text          input_ids (B, T) int64, attention_mask (B, T) int64  ->  embedding (B, D)
                  the caller tokenises: [CLS] + prompt ids + text ids + [SEP], right-padded with [PAD] (manifest)
    image         pixels (B, 3, S, S) uint8 RGB  ->  embedding (B, D)     sequence [CLS] doc-prompt <image> [SEP]
    audio         samples (B, N) float32, 16 kHz mono, N a multiple of samples_per_token  ->  embedding (B, D)
    video         frames (B, F, 3, S, S) uint8, times (B, F) float32 s, samples (B, N) float32  ->  embedding (B, D)
    video_frames  frames, times  ->  embedding (B, D): a video window without sound (no audio track, or past
                  its end), and every video of a model without an audio stem

The graphs are the model's own pieces (`Gemb2Model.text_tokens`, `image_tokens`, `audio_tokens`, `video_tokens`,
`sequence`, `head`), so they cannot drift from `forward`, and a new stem exports if it traces. Two of the model's
functions take an ONNX-friendly form while exporting (torch.onnx.is_in_onnx_export): the STFT of the log-mel
(audio_features._power_spectrum: a strided convolution against cos/sin kernels) and the adaptive average pooling
of a frame's grid (model.pool_grid: two matmuls with a constant bin matrix; 7x7 -> 2x2 has overlapping bins the
exporter cannot convert).

What a client must do before the graphs (decode, resize, resample, sample frames, tokenise) is written in
manifest.json as numbers and exact rules, taken from gemb2's loaders; tests/export/client.py is a client built
from the manifest alone (numpy, OpenCV, PyAV, tokenizers) that matches `gemb2 embed`.

Every graph is checked after export: onnxruntime (when installed) runs it on inputs of other shapes than the
traced ones and it must match `model.encode` on the same items (max abs difference <= CHECK_TOL); the
difference is in the manifest. A graph that fails to export or to match is left out and named, with the
reason, in the manifest's `not_exported`; the others are written.

Writing is all or nothing: everything goes into a hidden temporary folder beside OUT
(`.OUT.<random>.tmp`), renamed to OUT at the end. An existing non-empty OUT is refused unless `force`;
with `force` the old folder is moved aside, the new one renamed in, then the old one deleted (on a failed
rename the old one is put back). An error, SIGINT or SIGTERM (raised as `Interrupted`) removes the temporary
folder; only a killed process (SIGKILL) can leave it behind, never a half-written OUT.

Reference for the graph format: ONNX (onnx.ai) with the TorchScript-based `torch.onnx.export(dynamo=False)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gemb2.model.model import Gemb2Model, truncate

OPSET = 17
GRAPHS = ("text", "image", "audio", "video", "video_frames")
MODALITIES = GRAPHS  # the name older callers used
CHECK_TOL = 1e-3  # max abs difference between a graph and model.encode on unit vectors, else the graph is dropped
MANIFEST_VERSION = 2


class ExportError(Exception):
    """The model cannot be exported as asked (a bad --dim, OUT exists, onnx not installed)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during an export (`signum` says which); the temporary folder is removed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_as_interrupts(received: list[int]) -> Iterator[None]:
    """While exporting, SIGINT and SIGTERM raise Interrupted and are also recorded in `received`: a
    KeyboardInterrupt raised inside library code can be swallowed (C code that calls hasattr clears any error),
    so the export loop also checks the record between steps. Only in the main thread (signal handlers live there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        received.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


# --- the graphs ------------------------------------------------------------------------------


class _Graph(nn.Module):
    """What every graph shares: the model's head and Matryoshka prefix on input embeddings the model made."""

    def __init__(self, model: Gemb2Model, dim: int):
        super().__init__()
        self.m, self.dim = model, dim

    def vector(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) input embeddings, (B, T) bool (None: every position real) -> (B, dim)."""
        mask = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask
        return truncate(self.m.head(x, mask), self.dim)  # (B, dim)


class TextGraph(_Graph):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.text_tokens(input_ids), attention_mask > 0)


class ImageGraph(_Graph):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.m.image_tokens(pixels)]))


class AudioGraph(_Graph):
    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.m.audio_tokens(samples)]))


class VideoGraph(_Graph):
    """Every video's frames through `video_tokens` (pooled grid + time embedding), then its audio track."""

    def frames(self, frames: torch.Tensor, times: torch.Tensor) -> torch.Tensor:  # -> (B, F * r, H)
        f = self.m.video_tokens(frames.flatten(0, 1), times.reshape(-1))  # (B*F, r, H)
        return f.reshape(frames.shape[0], -1, f.shape[-1])

    def forward(self, frames: torch.Tensor, times: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.frames(frames, times), self.m.audio_tokens(samples)]))


class SilentVideoGraph(VideoGraph):
    def forward(self, frames: torch.Tensor, times: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.vector(self.m.sequence([self.frames(frames, times)]))


# --- export ---------------------------------------------------------------------------------


def _check_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ExportError(
            "exporting to ONNX needs the onnx package: pip install 'gemb2[onnx]' (or pip install onnx)"
        ) from e


def export_onnx(
    model, out: str | os.PathLike, *, dim: int | None = None, modalities: tuple[str, ...] = GRAPHS, force: bool = False
) -> dict:
    """Write the graphs `model` can have (of `modalities`), tokenizer.json and manifest.json as the folder `out`.

    All or nothing (see the module docstring): `out` appears complete or not at all. Returns the manifest.
    Raises ExportError for a `dim` that is not one of the model's Matryoshka dims, an unknown graph name, or an
    existing non-empty `out` without `force`; OSError when the folder cannot be written.
    """
    _check_onnx()
    try:
        dim = model.check_dim(dim)
    except ValueError as e:
        raise ExportError(f"--dim {dim}: {e}") from e
    unknown = [m for m in modalities if m not in GRAPHS]
    if unknown:
        raise ExportError(f"unknown graph(s) {', '.join(unknown)}: choose from {', '.join(GRAPHS)}")
    target = Path(out).absolute()
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        if any(target.iterdir()) and not force:
            raise ExportError(f"{out} exists and is not empty (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    received: list[int] = []
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; OUT gets the permissions of a new folder
        with _signals_as_interrupts(received):
            manifest = _write(model, tmp, dim, modalities, received)
            _move_into_place(tmp, target)
    except BaseException:  # an error or an interrupt: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder to `target`; an existing `target` is swapped out, then deleted."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(tmp, target)  # rename(2) replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old)  # `old` is empty: the rename replaces it
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write(model, folder: Path, dim: int, names: tuple[str, ...], received: list[int]) -> dict:
    cfg = model.config
    tok = model.tokenizer
    model = model.eval().float().cpu()
    prefix = model.layout.prefix("document")
    spt = model.audio_stem.samples_per_token if model.audio_stem is not None else 0
    S = cfg.image_size

    def audio(B: int, seconds: float, seed: int) -> torch.Tensor:  # (B, N) a whole number of tokens, in one window
        n = max(1, min(round(seconds * 16000 / spt), int(cfg.audio_window_s * 16000) // spt)) * spt
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(n, dtype=torch.float32) / 16000
        return (0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(B, n, generator=g)).clamp(-1, 1)

    def pixels(*shape: int, seed: int) -> torch.Tensor:
        return torch.randint(
            0, 256, (*shape, 3, S, S), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
        )

    video_axes = {"frames": {0: "batch", 1: "frames"}, "times": {0: "batch", 1: "frames"}}
    samples_axes = {"samples": {0: "batch", 1: "samples"}}
    plans = {  # graph, trace inputs, input names, dynamic axes
        # a padded example: tracing must take the masked-attention path (an all-ones mask may skip it)
        "text": (
            TextGraph(model, dim),
            (torch.full((2, 7), tok.pad_id), torch.tensor([[1] * 7, [1] * 4 + [0] * 3])),
            ["input_ids", "attention_mask"],
            {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}},
        ),
        "image": (
            ImageGraph(model, dim),
            (pixels(2, seed=0),),
            ["pixels"],
            {"pixels": {0: "batch"}},
        ),
        "audio": (AudioGraph(model, dim), lambda: (audio(2, 1.0, 0),), ["samples"], samples_axes),
        "video": (
            VideoGraph(model, dim),
            lambda: (pixels(2, 1, seed=0), torch.tensor([[1.0]] * 2), audio(2, 1.0, 0)),
            ["frames", "times", "samples"],
            video_axes | samples_axes,
        ),
        "video_frames": (
            SilentVideoGraph(model, dim),
            (pixels(2, 1, seed=0), torch.tensor([[1.0]] * 2)),
            ["frames", "times"],
            video_axes,
        ),
    }
    needs = {
        "text": (),
        "image": ("image_stem",),
        "audio": ("audio_stem",),
        "video": ("image_stem", "audio_stem"),
        "video_frames": ("image_stem",),
    }
    graphs: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for name in names:
        missing = [s for s in needs[name] if getattr(model, s, None) is None]
        if missing:
            skipped[name] = f"the model has no {' or '.join(m.replace('_', ' ') for m in missing)}"
            continue
        module, args, inputs, axes = plans[name]
        path = folder / f"{name}.onnx"
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for these inputs
                torch.onnx.export(
                    module,
                    args() if callable(args) else args,
                    str(path),
                    input_names=inputs,
                    output_names=["embedding"],
                    dynamic_axes=axes | {"embedding": {0: "batch"}},
                    opset_version=OPSET,
                    dynamo=False,
                )
            check = _check_graph(name, path, model, dim, pixels, audio)
        except Exception as e:  # this graph only: the others are still exported
            if received:  # a signal whose KeyboardInterrupt became another error (or was swallowed)
                raise Interrupted(received[0]) from e
            for p in folder.iterdir():
                if p.name != "tokenizer.json" and p.stem.split(".")[0] == name:
                    p.unlink()
            skipped[name] = f"export failed: {_one_line(e)}"
            continue
        if received:
            raise Interrupted(received[0])
        graphs[name] = {
            "file": path.name,
            "inputs": _describe_inputs(name, cfg, spt),
            "check": check,
            "output": {"name": "embedding", "dtype": "float32", "shape": ["batch", dim], "l2_normalised": True},
        }
    (folder / "tokenizer.json").write_text(plain_tokenizer_json(tok.to_str()), encoding="utf-8")
    manifest = _manifest(model, dim, prefix, spt, graphs, skipped)
    with open(folder / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    if received:
        raise Interrupted(received[0])
    return manifest


def _one_line(e: BaseException, limit: int = 300) -> str:
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_graph(name: str, path: Path, model, dim: int, pixels, audio) -> dict:
    """Run the graph with onnxruntime on inputs shaped unlike the traced ones; compare with model.encode."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"checked": False, "why": "onnxruntime is not installed"}
    from gemb2.parts import Audio, Image, Video

    if name == "text":
        texts = ["A photo of a dog running on the beach.", "x", "Ünïcödé, ∑ and 東京 " * 6]
        ids, mask = text_inputs(model, texts, "query")
        feed, items, task = {"input_ids": ids, "attention_mask": mask}, texts, "query"
    elif name == "image":
        px = pixels(3, seed=1)  # (3, 3, S, S)
        feed, task = {"pixels": px.numpy()}, "document"
        items = [Image(np.ascontiguousarray(p.permute(1, 2, 0).numpy())) for p in px]
    elif name == "audio":
        s = audio(3, 2.3, 1)  # (3, N)
        feed, task, items = {"samples": s.numpy()}, "document", [Audio(np.ascontiguousarray(r.numpy())) for r in s]
    else:  # video, video_frames
        n = min(2, model.config.max_frames)  # the model keeps max_frames of a longer item
        frames, times = pixels(1, n, seed=1), torch.tensor([[0.4, 7.5][:n]])  # batch 1, 2 frames: not as traced
        feed, task = {"frames": frames.numpy(), "times": times.numpy()}, "document"
        tracks = [None]
        if name == "video":
            s = audio(1, 1.7, 1)
            feed["samples"] = s.numpy()
            tracks = [Audio(np.ascontiguousarray(r.numpy())) for r in s]
        items = [
            Video(np.ascontiguousarray(f.permute(0, 2, 3, 1).numpy()), t.numpy(), a)
            for f, t, a in zip(frames, times, tracks)
        ]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feed)[0]
    want = model.encode(items, task=task, dim=dim, precision="fp32")
    diff = float(np.abs(got - want).max())
    if not diff <= CHECK_TOL:
        raise ValueError(
            f"the graph does not reproduce the model: max abs difference {diff:.3g} > {CHECK_TOL:g} "
            f"on a check batch of {len(items)}"
        )
    return {
        "checked": True,
        "max_abs_diff": diff,
        "batch": len(items),
        "against": "gemb2 model.encode on the same inputs, other shapes than the traced ones",
    }


def plain_tokenizer_json(text: str) -> str:
    """A tokenizer.json with its own padding and truncation removed: gemb2 tokenises without them (all-MiniLM-L6-v2's
    file pads and cuts every text to 128 tokens; a client that kept that would feed the graph padding as text)."""
    doc = json.loads(text)
    doc["padding"], doc["truncation"] = None, None
    return json.dumps(doc, ensure_ascii=False)


def _describe_inputs(name: str, cfg, spt: int) -> list[dict]:
    S = cfg.image_size
    frames = [
        {"name": "frames", "dtype": "uint8", "shape": ["batch", "frames", 3, S, S]},
        {"name": "times", "dtype": "float32", "shape": ["batch", "frames"]},
    ]
    samples = [{"name": "samples", "dtype": "float32", "shape": ["batch", f"samples (multiple of {spt})"]}]
    return {
        "text": [
            {"name": "input_ids", "dtype": "int64", "shape": ["batch", "length"]},
            {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "length"]},
        ],
        "image": [{"name": "pixels", "dtype": "uint8", "shape": ["batch", 3, S, S]}],
        "audio": samples,
        "video": frames + samples,
        "video_frames": frames,
    }[name]


def _manifest(model, dim: int, prefix: list[int], spt: int, graphs: dict, skipped: dict) -> dict:
    """manifest.json: the graphs, and every preprocessing step as numbers and exact rules (from gemb2's loaders)."""
    from gemb2.data.audio import MIN_TAIL_S, SOUNDFILE_EXTENSIONS
    from gemb2.data.video import sample_step
    from gemb2.parts import SAMPLE_RATE
    from gemb2.pipeline.loadspec import load_spec_for

    cfg, tok = model.config, model.tokenizer
    spec = load_spec_for(model)
    S = cfg.image_size
    stem = model.image_stem
    norm = getattr(stem, "pixel_normalisation", None) if stem is not None else None
    window = int(round(cfg.audio_window_s * SAMPLE_RATE))
    manifest = {
        "format": "gemb2 onnx export",
        "format_version": MANIFEST_VERSION,
        "model": model.model_id,
        "opset": OPSET,
        "dim": dim,
        "out_dim": cfg.out_dim,
        "matryoshka": dim != cfg.out_dim,
        "graphs": graphs,
        "not_exported": skipped,
        "text": {
            "graph": "text",
            "tokenizer": {
                "file": "tokenizer.json",
                "add_special_tokens": False,
                "padding": None,
                "truncation": None,
                "note": "encode each text alone (Hugging Face tokenizers: Tokenizer.from_file(...).encode("
                "text, add_special_tokens=False).ids); the file's padding and truncation are removed",
            },
            "cls_id": tok.cls_id,
            "sep_id": tok.sep_id,
            "pad_id": tok.pad_id,
            "max_text_tokens": cfg.max_text_tokens,
            "prompts": {"query": cfg.query_prompt, "document": cfg.document_prompt},
            "prompt_ids": {
                "query": tok.encode(cfg.query_prompt) if cfg.query_prompt else [],
                "document": tok.encode(cfg.document_prompt) if cfg.document_prompt else [],
            },
            "layout": "row = [cls_id] + prompt_ids[task][:max_text_tokens - 2] + ids(text); cut the row to "
            "max_text_tokens - 1 ids; append sep_id. Pad rows on the right with pad_id to the batch's "
            "longest; attention_mask 1 on real ids, 0 on padding",
            "tasks": "query for search queries, document for what is searched (gemb2 embed)",
            "files": {
                "window_tokens": spec.text_window_tokens,
                "overlap_tokens": spec.text_overlap_tokens,
                "note": "text files are cut into windows of this many tokens (gemb2.data.text); one vector each",
            },
        },
        "media_prompt": {"task": "document", "ids": prefix, "note": "baked into the image, audio and video graphs"},
        "max_positions": cfg.max_positions,
        "preprocessing": {
            "image": {
                "graph": "image",
                "decode": {
                    "library": "Pillow; JPEG through libjpeg(-turbo)",
                    "max_pixels": spec.max_image_pixels,
                    "jpeg_reduced_decode": {
                        "target": S,
                        "scales": [8, 4, 2, 1],
                        "rule": "s = the largest of 8, 4, 2, 1 with s <= min(width // target, height // target), "
                        "width and height as stored (before EXIF rotation); decode with libjpeg's DCT "
                        "scaling 1/s, giving ceil(width / s) x ceil(height / s) pixels (Pillow "
                        "Image.draft('RGB', (target, target)); OpenCV imread with IMREAD_REDUCED_COLOR_s)",
                        "applies_to": "JPEG files only",
                    },
                    "orientation": "EXIF orientation applied (Pillow ImageOps.exif_transpose)",
                    "frames": "animated files: the first frame",
                    "to_rgb": "RGBA / LA / palette transparency: composited on white, round(c * a / 255 + 255 * "
                    "(1 - a / 255)); 16-bit grey: round(v / 257); other modes: Pillow convert('RGB')",
                },
                "resize": {
                    "size": S,
                    "rule": "if the image is not already size x size: scale = size / min(h, w); new_h = max(size, "
                    "round(h * scale)), new_w = max(size, round(w * scale)) (round half to even); resize "
                    "with OpenCV cv2.resize, interpolation shrink when scale < 1 else enlarge; then crop "
                    "rows top .. top + size, columns left .. left + size with top = (new_h - size) // 2, "
                    "left = (new_w - size) // 2",
                    "interpolation": {"shrink": "INTER_AREA", "enlarge": "INTER_CUBIC", "library": "OpenCV"},
                },
                "tensor": "uint8 RGB, channels first: (3, size, size), stacked to (batch, 3, size, size)",
                "normalisation": None
                if norm is None
                else {
                    "in_graph": True,
                    "formula": "(x * scale - mean) / std per RGB channel, x the uint8 value",
                    **norm,
                },
            },
            "audio": {
                "graph": "audio",
                "sample_rate": SAMPLE_RATE,
                "decode": {
                    "soundfile_extensions": sorted(SOUNDFILE_EXTENSIONS),
                    "soundfile": "libsndfile as float32; the channels averaged (mean) to mono; NaN/inf -> 0 and "
                    "clip to [-1, 1]; then resampled (below) when the rate is not sample_rate",
                    "other": "FFmpeg (PyAV), the first audio stream: libswresample converts to mono float32 at "
                    "sample_rate in one step (av.AudioResampler(format='flt', layout='mono', rate=16000)); "
                    "also when libsndfile cannot open a file",
                    "resampler": "libswresample (FFmpeg) with its default options (windowed-sinc polyphase filter), "
                    "fed the whole stream in order and flushed at the end; PyAV: "
                    "av.AudioResampler(format='flt', layout='mono', rate=16000)",
                    "clean": "after resampling: NaN/inf -> 0, clip to [-1, 1]",
                },
                "windows": {
                    "seconds": cfg.audio_window_s,
                    "samples": window,
                    "min_last_s": MIN_TAIL_S,
                    "rule": "window i = samples [i * samples, (i + 1) * samples); the last may be shorter; "
                    f"a last window under {MIN_TAIL_S:g} s after a full one is dropped; one vector "
                    "per window",
                },
                "samples_per_token": spt or None,
                "pad": "zero-pad each window at the end to a multiple of samples_per_token (at least one token); "
                "a batch must share one length: batch windows of equal padded length",
                "in_graph": "Whisper's log-mel and the audio stem",
            },
            "video": {
                "graphs": {
                    "with_sound": "video",
                    "without_sound": "video_frames",
                    "rule": "video when the window has audio samples and the model an audio stem "
                    "(graph video exported), else video_frames",
                },
                "decode": "FFmpeg (PyAV), the first video stream, every frame in presentation order",
                "frame_time": "t = (pts - stream.start_time) * time_base (start_time unknown: the first frame's "
                "pts; no pts: frame index * d), at least 0; d = 1 / stream.average_rate "
                "(else guessed_rate; 0.04 s when neither is in (0, 1000))",
                "windows": {
                    "seconds": spec.video_window_s,
                    "rule": "a frame belongs to window w = floor((t + d / 2) / seconds); one vector per "
                    "window that has a taken frame",
                },
                "sampling": {
                    "fps": spec.video_fps,
                    "max_frames": spec.max_frames,
                    "step_s": sample_step(spec),
                    "rule": "step_s = max(1 / fps, window seconds / max_frames). In window w the next grid time "
                    "starts at w * seconds; walking the frames in order, a frame is taken when t + d / 2 >= "
                    "the next grid time and fewer than max_frames are taken; then the next grid time "
                    "advances by step_s until it is > t + d / 2",
                },
                "frame_pixels": "frame.to_ndarray(format='rgb24') (FFmpeg swscale), turned upright by the stream's "
                "display matrix: numpy.rot90(rgb, k = round(rotation / 90) % 4), then the image "
                "resize and crop (preprocessing.image.resize)",
                "times": "t - w * seconds (seconds from the window's start), float32",
                "in_graph": f"time bucket = clamp(floor(time / {cfg.time_bucket_s:g}), 0, "
                f"{cfg.max_time_buckets - 1}); each frame's grid average-pooled to "
                f"{cfg.video_tokens_per_frame} tokens",
                "max_frames_per_item": {
                    "max_frames": cfg.max_frames,
                    "rule": "an item with more frames keeps indices round(linspace(0, n - 1, "
                    "max_frames)) (round half to even); the sampling above never gives more",
                },
                "audio": "the first audio stream of the file, decoded as preprocessing.audio.decode.other over the "
                "whole file; window w gets the next round(end * sample_rate) - (samples given to earlier "
                "windows) samples, end = (w + 1) * seconds, or for the last window max(w * seconds, "
                "the end t + d of the last frame); no samples: no sound. Then cut to the first "
                f"{window} samples and zero-padded as preprocessing.audio.pad",
            },
        },
    }
    return manifest


def text_inputs(model: Gemb2Model, texts: list[str], task: str | None = "document") -> tuple[np.ndarray, np.ndarray]:
    """What the manifest says to feed the text graph, for `texts`: (input_ids, attention_mask) int64 (B, T). The
    model's own layout makes them (a text item's row is exactly the manifest's rule)."""
    batch = model.collate(texts, task)
    return batch.input_ids.numpy(), batch.mask.long().numpy()
