"""manifest.json: what a client in any language needs besides the graphs, as numbers and exact rules.

The graphs and their checks, the tokenizer file and the text layout (from the model's `layout`), and every
preprocessing step before a graph (decode, resize, resample, windows, frame sampling), taken from gemb2's loaders.
tests/export/client.py is a client built from the manifest alone that matches `gemb2 embed`.
"""

from __future__ import annotations

import json
from typing import Any

from gemb2.data.audio import MIN_TAIL_S, SOUNDFILE_EXTENSIONS
from gemb2.data.segments import LoadSpec
from gemb2.data.video import sample_step
from gemb2.model.model import Gemb2Model
from gemb2.parts import SAMPLE_RATE
from gemb2.pipeline.loadspec import load_spec_for

from .graphs import OPSET

MANIFEST_VERSION = 2


def build_manifest(model: Gemb2Model, dim: int, graphs: dict[str, Any], skipped: dict[str, str]) -> dict[str, Any]:
    """The manifest of an export of `model` at `dim`: `graphs` written (name -> record), `skipped` (name -> why)."""
    cfg = model.config
    spec = load_spec_for(model)
    return {
        "format": "gemb2 onnx export",
        "format_version": MANIFEST_VERSION,
        "model": model.model_id,
        "opset": OPSET,
        "dim": dim,
        "out_dim": cfg.out_dim,
        "matryoshka": dim != cfg.out_dim,
        "graphs": graphs,
        "not_exported": skipped,
        "text": _text(model, spec),
        "media_prompt": {
            "task": "document",
            "ids": model.layout.prefix("document"),
            "note": "baked into the image, audio and video graphs",
        },
        "max_positions": cfg.max_positions,
        "preprocessing": {"image": _image(model, spec), "audio": _audio(model), "video": _video(model, spec)},
    }


def plain_tokenizer_json(text: str) -> str:
    """A tokenizer.json with its own padding and truncation removed: gemb2 tokenises without them (all-MiniLM-L6-v2's
    file pads and cuts every text to 128 tokens; a client that kept that would feed the graph padding as text)."""
    doc = json.loads(text)
    doc["padding"], doc["truncation"] = None, None
    return json.dumps(doc, ensure_ascii=False)


def _text(model: Gemb2Model, spec: LoadSpec) -> dict[str, Any]:
    """The text graph's inputs: tokenizer, special ids, prompts and the row layout."""
    cfg, tok = model.config, model.tokenizer
    return {
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
        "prompt_ids": {"query": model.layout.prompt_ids["query"], "document": model.layout.prompt_ids["document"]},
        "layout": "row = [cls_id] + prompt_ids[task][:max_text_tokens - 2] + ids(text); cut the row to "
        "max_text_tokens - 1 ids; append sep_id. Pad rows on the right with pad_id to the batch's "
        "longest; attention_mask 1 on real ids, 0 on padding",
        "tasks": "query for search queries, document for what is searched (gemb2 embed)",
        "files": {
            "window_tokens": spec.text_window_tokens,
            "overlap_tokens": spec.text_overlap_tokens,
            "note": "text files are cut into windows of this many tokens (gemb2.data.text); one vector each",
        },
    }


def _image(model: Gemb2Model, spec: LoadSpec) -> dict[str, Any]:
    """Image files to the image graph's pixels: decode, resize and crop, tensor layout, normalisation."""
    S = model.config.image_size
    stem = model.image_stem
    norm = getattr(stem, "pixel_normalisation", None) if stem is not None else None
    return {
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
    }


def _audio(model: Gemb2Model) -> dict[str, Any]:
    """Audio files to the audio graph's samples: decode, resample, windows, padding."""
    cfg, spt = model.config, model.layout.samples_per_token
    window = model.layout.audio_window
    return {
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
    }


def _video(model: Gemb2Model, spec: LoadSpec) -> dict[str, Any]:
    """Video files to the video graphs' frames, times and samples: decode, windows, frame sampling, the track."""
    cfg = model.config
    window = model.layout.audio_window
    return {
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
    }
