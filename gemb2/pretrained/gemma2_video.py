"""EmbeddingGemma 2 video: the reference video processor's rules, natively (no torchvision).

The reference is transformers' `EmbeddingGemma2VideoProcessor` (video_processing_embedding_gemma2.py) with
`EmbeddingGemma2Processor.replace_video_token` (processing_embedding_gemma2.py). It needs torchvision, which gemb2
does not install (it pins a torch of its own), so its rules are implemented here, line by line:

    frames     `sample_frames`: with `fps` set, `max(1, int(duration * fps))` frames, frame i the decoded frame
               number `int(i * native_fps / fps)` (`min`ed with the last), duration = frames / native fps; more
               than `max_frames`: `overflow_strategy` "uniform" keeps `linspace(0, n - 1, max_frames)` of them,
               "truncate" the first `max_frames`. gemb2's loader does this per video window
               (`LoadSpec.video_sampling = "index"`, gemb2/data/video.py): a clip within one window (30 s) gets
               exactly the reference's frames; a longer video is embedded window by window, each as a clip.
    pixels     `_preprocess`: each frame resized to `get_aspect_ratio_preserving_size` (the soft-token budget:
               `max_soft_tokens` x pooling_kernel_size^2 patches, sides multiples of patch x pool; unchanged when
               already that size) by torchvision's `resize(..., BICUBIC, antialias=True)`, which on a CPU and
               uint8 frames is torch's own `interpolate(uint8, mode="bicubic", antialias=True,
               align_corners=False)` (torchvision's `resize_image`: `_do_native_uint8_resize_on_cpu(BICUBIC)`),
               called here directly; then the fused rescale-and-normalise, (x - 0) / 255 in float32 (mean 0, std 1
               fused with 1/255); then `convert_video_to_patches`, the (x, y) patch grid and the padding to
               max_patches (zeros, positions -1): the model's `pixel_values_videos`, `video_position_ids`,
               `num_frames_per_video` (frames of all videos concatenated).
    text       `replace_video_token`: without timestamps (the processor's default, `add_timestamps` False) each
               frame is <|image> + n x <|video|> + <image|> (n: the frame's soft tokens), the frames joined with
               nothing between them; with `add_timestamps`, each is "mm:ss " + that block (its time rounded to the
               second), joined by single spaces.

The settings are the folder's video_preprocessor_config.json (else the class defaults: patch 16, pooling 3, 70 soft
tokens, 1 frame/s, at most 32 frames, uniform). The soundtrack: the reference embeds it only when the caller asks
(`load_audio_from_video=True`, default False; then timestamped frame / audio blocks), so a video's audio is not
part of its vector here either (the loader still decodes it with the frames; it is not used).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gemb2.parts import Video, patch_budget_size

SUPPORTED_SOFT_TOKENS = (70, 140, 280, 560, 1120)  # the reference's _SUPPORTED_SOFT_TOKENS


@dataclass(frozen=True)
class VideoRules:
    """The video processor's settings (its class defaults unless the folder's config says otherwise)."""

    patch_size: int = 16
    pooling_kernel_size: int = 3
    max_soft_tokens: int = 70
    fps: float = 1.0
    max_frames: int = 32
    overflow_strategy: str | None = "uniform"
    add_timestamps: bool = False

    @property
    def max_patches(self) -> int:
        return self.max_soft_tokens * self.pooling_kernel_size**2

    def frame_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) a frame of h x w is resized to (get_aspect_ratio_preserving_size)."""
        return patch_budget_size(h, w, self.patch_size, self.pooling_kernel_size, self.max_soft_tokens)

    def soft_tokens(self, h: int, w: int) -> int:
        """Soft tokens of one frame of h x w: its patches at the resized size over pooling_kernel_size^2."""
        th, tw = self.frame_size(h, w)
        return (th // self.patch_size) * (tw // self.patch_size) // self.pooling_kernel_size**2


def read_rules(path: Path) -> VideoRules | None:
    """The folder's video_preprocessor_config.json as VideoRules; None when there is none. A setting gemb2 cannot
    follow is a ValueError naming it."""
    f = path / "video_preprocessor_config.json"
    if not f.is_file():
        return None
    raw = json.loads(f.read_text(encoding="utf-8"))
    known = {x.name for x in fields(VideoRules)}
    rules = VideoRules(**{k: v for k, v in raw.items() if k in known})
    if rules.max_soft_tokens not in SUPPORTED_SOFT_TOKENS:
        raise ValueError(f"{f}: max_soft_tokens must be one of {SUPPORTED_SOFT_TOKENS}, got {rules.max_soft_tokens}")
    if rules.overflow_strategy not in (None, "uniform", "truncate"):
        raise ValueError(f"{f}: overflow_strategy must be uniform or truncate, got {rules.overflow_strategy!r}")
    if raw.get("do_sample_frames") is False or raw.get("fps", 1) is None or raw.get("num_frames") is not None:
        raise ValueError(f"{f}: gemb2 samples video frames by fps (and max_frames) only, as the processor does")
    if not rules.fps or rules.fps <= 0 or rules.max_frames < 1:
        raise ValueError(f"{f}: fps must be positive and max_frames at least 1")
    return rules


def video_text(video: Video, rules: VideoRules, marks: tuple[str, str, str]) -> str:
    """The text a video stands for (replace_video_token): per frame <|image> + n x <|video|> + <image|>."""
    boi, tok, eoi = marks
    frame = boi + tok * rules.soft_tokens(*video.frames.shape[1:3]) + eoi
    if not rules.add_timestamps:
        return frame * len(video.frames)
    return " ".join(f"{_timestamp(float(s))} {frame}" for s in video.times)


def _timestamp(sec: float) -> str:
    s = round(sec)  # the reference rounds (29.97 fps frames land just below the second)
    return f"{s // 60:02d}:{s % 60:02d}"


def video_inputs(videos: Sequence[Video], rules: VideoRules) -> dict[str, torch.Tensor]:
    """The model's video inputs for these videos in order: pixel_values_videos (frames, max_patches, p*p*3)
    float32, video_position_ids (frames, max_patches, 2), num_frames_per_video (videos,)."""
    pixels, positions, counts = [], [], []
    p, max_patches = rules.patch_size, rules.max_patches
    for v in videos:
        x = torch.from_numpy(np.ascontiguousarray(v.frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        th, tw = rules.frame_size(x.shape[2], x.shape[3])
        if (th, tw) != tuple(x.shape[2:]):
            x = F.interpolate(x.contiguous(), size=[th, tw], mode="bicubic", align_corners=False, antialias=True)
        x = x.to(torch.float32) / 255.0  # (T, 3, th, tw)
        t, c = x.shape[:2]
        gh, gw = th // p, tw // p
        patches = x.reshape(t, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(t, gh * gw, -1)
        gx, gy = torch.meshgrid(torch.arange(gw), torch.arange(gh), indexing="xy")
        pos = torch.stack((gx, gy), dim=-1).reshape(gh * gw, 2)[None].repeat(t, 1, 1)  # (T, n, 2): (x, y)
        pad = max_patches - patches.shape[1]
        if pad > 0:
            patches = F.pad(patches, [0, 0, 0, pad, 0, 0], value=0)
            pos = F.pad(pos, (0, 0, 0, pad, 0, 0), value=-1)
        pixels.append(patches)
        positions.append(pos)
        counts.append(t)
    return {
        "pixel_values_videos": torch.cat(pixels, dim=0),
        "video_position_ids": torch.cat(positions, dim=0),
        "num_frames_per_video": torch.tensor(counts, dtype=torch.long),
    }
