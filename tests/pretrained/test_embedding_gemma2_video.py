"""EmbeddingGemma 2 video against the reference: transformers' own video code on a real video file.

The reference video processor (video_processing_embedding_gemma2.py) cannot be imported without torchvision (its
signatures name `tvF.InterpolationMode`), and torchvision is not installed (it would replace gemb2's torch). So its
functions are compiled here from its installed source, unchanged: `sample_frames`, `aspect_ratio_preserving_resize`,
`_preprocess`, `get_aspect_ratio_preserving_size`, `convert_video_to_patches`, `pad_to_max_patches`, and the
fused rescale-and-normalise of its torchvision backend (image_processing_backends.py). What stands in for
torchvision is `_TorchvisionCpu`: its `resize` is what torchvision's `resize_image` runs for uint8 frames on a CPU
with BICUBIC (`_do_native_uint8_resize_on_cpu` -> torch's interpolate on uint8, antialias, align_corners False),
its `normalize` torchvision's `normalize_image` (sub mean, div std). Frames are decoded and picked by transformers'
`read_video_pyav` with that `sample_frames`; the text is `EmbeddingGemma2Processor.replace_video_token`'s.
"""

from __future__ import annotations

import ast
import enum
import json
import math
import shutil
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")

import torch
import torch.nn.functional as F

from gemb2.parts import Text, Video
from gemb2.pretrained.sources import load_model
from tests.pretrained.gemma2_folder import PROMPTS, video_config


class _Interpolation(enum.Enum):
    BICUBIC = "bicubic"


class _TorchvisionCpu:
    """torchvision.transforms.v2.functional as it runs on uint8 frames on a CPU (see the module docstring)."""

    InterpolationMode = _Interpolation

    @staticmethod
    def resize(video, size, interpolation, antialias=True):
        assert interpolation == _Interpolation.BICUBIC and video.dtype == torch.uint8
        return F.interpolate(video, size=list(size), mode="bicubic", align_corners=False, antialias=antialias)

    @staticmethod
    def normalize(image, mean, std, inplace=False):
        image = image if inplace else image.clone()
        mean = torch.as_tensor(mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=image.dtype).view(-1, 1, 1)
        return image.sub_(mean).div_(std)


def _compile(path: Path, names: set[str], cls: str, ns: dict) -> None:
    """Define, in `ns`, the top-level functions `names` of `path` and the methods `names` of its class `cls`
    (decorators dropped: they only cache or document)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body: list[ast.stmt] = []
    for node in tree.body:
        inner = node.body if isinstance(node, ast.ClassDef) and node.name == cls else [node]
        for f in inner:
            if isinstance(f, ast.FunctionDef) and f.name in names:
                f.decorator_list = []
                body.append(f)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)


@pytest.fixture(scope="session")
def reference_video_processor():
    import transformers
    from transformers import BatchFeature
    from transformers.utils import logging
    from transformers.utils.generic import TensorType

    root = Path(transformers.__file__).parent
    ns: dict = {"math": math, "np": np, "torch": torch, "tvF": _TorchvisionCpu, "BatchFeature": BatchFeature}
    ns |= {"TensorType": TensorType, "logger": logging.get_logger("reference"), "Optional": None}
    src = root / "models" / "embedding_gemma2" / "video_processing_embedding_gemma2.py"
    _compile(src, {"get_aspect_ratio_preserving_size", "convert_video_to_patches", "pad_to_max_patches"}, "", ns)
    ns["_SUPPORTED_SOFT_TOKENS"] = (70, 140, 280, 560, 1120)
    methods: dict = {}
    _compile(
        src, {"sample_frames", "aspect_ratio_preserving_resize", "_preprocess"}, "EmbeddingGemma2VideoProcessor", ns
    )
    methods |= {k: ns[k] for k in ("sample_frames", "aspect_ratio_preserving_resize", "_preprocess")}
    backends = root / "image_processing_backends.py"
    _compile(
        backends, {"rescale_and_normalize", "_fuse_mean_std_and_rescale_factor", "normalize"}, "TorchvisionBackend", ns
    )
    methods |= {k: ns[k] for k in ("rescale_and_normalize", "_fuse_mean_std_and_rescale_factor", "normalize")}
    return type("ReferenceVideoProcessor", (), methods)()


@pytest.fixture(scope="session")
def reference_video(reference_video_processor):
    """(folder, video path, text before it, prompt) -> (the reference's unit vector, its sampled frames)."""
    from transformers import AutoTokenizer, EmbeddingGemma2Model, EmbeddingGemma2Processor
    from transformers.video_utils import read_video_pyav

    ref = reference_video_processor

    def embed(folder: Path, path: str, text_before: str) -> tuple[np.ndarray, np.ndarray]:
        cfg = json.loads((folder / "video_preprocessor_config.json").read_text())
        sample = partial(
            ref.sample_frames, fps=cfg["fps"], max_frames=cfg["max_frames"], overflow_strategy=cfg["overflow_strategy"]
        )
        frames, metadata = read_video_pyav(path, sample_indices_fn=sample)  # pyright: ignore[reportArgumentType]  # (T, H, W, 3) uint8
        got = ref._preprocess(
            [torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()],
            do_resize=True,
            resample=_Interpolation.BICUBIC,
            do_rescale=True,
            rescale_factor=cfg["rescale_factor"],
            do_normalize=True,
            image_mean=tuple(cfg["image_mean"]),
            image_std=tuple(cfg["image_std"]),
            return_tensors="pt",
            patch_size=cfg["patch_size"],
            max_soft_tokens=cfg["max_soft_tokens"],
            pooling_kernel_size=cfg["pooling_kernel_size"],
        )
        tok = AutoTokenizer.from_pretrained(str(folder))
        proc = object.__new__(EmbeddingGemma2Processor)
        proc.boi_token, proc.eoi_token, proc.video_token = tok.boi_token, tok.eoi_token, "<|video|>"
        proc.video_processor = SimpleNamespace(add_timestamps=cfg["add_timestamps"])
        inputs = dict(got) | {"video_metadata": [metadata]}
        slots = proc.replace_video_token(inputs, 0, videos_kwargs={}, load_audio_from_video=False)
        hf = EmbeddingGemma2Model.from_pretrained(str(folder), dtype=torch.float32).eval()
        b = tok([text_before + slots], return_tensors="pt")
        with torch.no_grad():
            h = hf(
                **b,
                pixel_values_videos=got["pixel_values_videos"],
                video_position_ids=got["video_position_ids"],
                num_frames_per_video=torch.as_tensor(got["num_frames_per_video"]),
            ).last_hidden_state
        return F.normalize(h.mean(1), dim=-1).numpy()[0], frames

    return embed


@pytest.fixture(scope="session")
def timestamped_folder(gemma_folder, tmp_path_factory):
    """The tiny folder with timestamps on and at most 2 frames (the uniform overflow rule applies)."""
    folder = tmp_path_factory.mktemp("eg2-ts") / "m"
    shutil.copytree(gemma_folder, folder)
    cfg = video_config(add_timestamps=True, max_frames=2)
    (folder / "video_preprocessor_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return folder


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(
    "which, seconds, fps, size",
    [
        ("default", 2.5, 10, (64, 48)),  # int(2.5 s x 1 fps) = 2 frames (not 3), upscaled to the budget
        ("default", 2.2, 29.97, (90, 40)),  # frame int(i x 29.97): 0, 29; a wide frame
        ("timestamped", 3.5, 10, (48, 64)),  # 3 sampled, uniform to 2: frames 0 and 20, "00:00 ..." "00:02 ..."
    ],
)
def test_video_files_match_the_reference_processor_and_model(
    gemma_folder, timestamped_folder, reference_video, tmp_path, which, seconds, fps, size
):
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for
    from tests.media import write_video

    folder = gemma_folder if which == "default" else timestamped_folder
    model = load_model(str(folder))
    path = write_video(tmp_path / "clip.mp4", seconds=seconds, fps=fps, size=size, seed=int(fps))
    [seg] = load_file(path, "video", load_spec_for(model))
    want, frames = reference_video(folder, path, PROMPTS["document"])
    assert isinstance(seg.parts[0], Video)
    np.testing.assert_array_equal(seg.parts[0].frames, frames)  # the very frames the reference samples
    assert cos(model.encode([seg.parts], task="document")[0], want) >= 0.9999
    mixed = model.encode([[Text("a moving gradient "), *seg.parts]], task="query")[0]
    want_mixed, _ = reference_video(folder, path, PROMPTS["query"] + "a moving gradient ")
    assert cos(mixed, want_mixed) >= 0.9999


def test_a_long_video_is_cut_into_windows_each_sampled_as_a_clip(gemma_folder, tmp_path):
    import av

    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for
    from tests.media import write_video

    model = load_model(str(gemma_folder))
    path = write_video(tmp_path / "long.mp4", seconds=31.5, fps=2, size=(32, 24), numbered=True)
    segs = list(load_file(path, "video", load_spec_for(model)))
    assert [(s.start, s.end) for s in segs] == [(0.0, 30.0), (30.0, 31.5)]
    first, second = (s.parts[0] for s in segs)
    assert isinstance(first, Video) and isinstance(second, Video)
    assert first.times.tolist() == list(range(30)) and second.times.tolist() == [0.0]  # 1 frame/s; int(1.5) = 1
    with av.open(path) as c:
        every = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])  # (63, 24, 32, 3)
    np.testing.assert_array_equal(first.frames, every[0:60:2])  # frame 2i of the first 60
    np.testing.assert_array_equal(second.frames, every[60:61])  # the second window's frames 60..62: its first
    assert model.encode([segs[0].parts, segs[1].parts]).shape == (2, 768)


def test_video_needs_the_video_processor_config(gemma_folder, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(gemma_folder, folder)
    (folder / "video_preprocessor_config.json").unlink()
    assert "video" not in load_model(str(folder)).config.modalities
    (folder / "video_preprocessor_config.json").write_text(json.dumps(video_config(max_soft_tokens=71)))
    from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2Error

    with pytest.raises(EmbeddingGemma2Error, match="max_soft_tokens must be one of"):
        load_model(str(folder))
