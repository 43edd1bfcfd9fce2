"""The model's configuration: one frozen dataclass, and named sizes as builder functions.

References: nanoGPT's `GPTConfig` (defaults carry their reason), torchtune's model builders
(sizes are functions, not subclasses). The backbone fields use Hugging Face `BertConfig`'s
meaning so a real checkpoint (all-MiniLM-L6-v2) can be imported by shape.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

IMAGE_STEMS = ("patch", "efficientnet", "none")  # stems/patch.py, stems/efficientnet.py; "none": text/audio only
AUDIO_STEMS = ("mel", "whisper", "none")  # stems/mel.py, stems/whisper.py; "none": no audio
CALIBRATIONS = ("none", "centre")  # "centre": a media vector is moved by its modality's learned shift (calibration.py)
GEMINI_QUERY_PROMPT = "task: search result | query: "  # Gemini Embedding's query prefix
GEMINI_DOCUMENT_PROMPT = "title: none | text: "  # Gemini Embedding's document prefix


@dataclass(frozen=True)
class LiteSize:
    """Compound-scaling coefficients of one EfficientNet-Lite variant (tensorflow/tpu efficientnet_lite_builder.py)."""

    width: float
    depth: float
    resolution: int  # the image side the variant was trained at
    dropout: float


LITE_SIZES = {  # the EfficientNet-Lite variants (stems/efficientnet_lite.py builds them)
    "lite0": LiteSize(1.0, 1.0, 224, 0.2),
    "lite1": LiteSize(1.0, 1.1, 240, 0.2),
    "lite2": LiteSize(1.1, 1.2, 260, 0.3),
    "lite3": LiteSize(1.2, 1.4, 280, 0.3),
    "lite4": LiteSize(1.4, 1.8, 300, 0.3),
}
EFFICIENTNET_VARIANTS = tuple(LITE_SIZES)
WHISPER_SIZES = {  # encoder shapes (d_model, heads, layers) of the Whisper sizes; ".en" models share them
    "tiny": (384, 6, 4),
    "tiny.en": (384, 6, 4),
    "base": (512, 8, 6),
    "base.en": (512, 8, 6),
    "small": (768, 12, 12),
    "small.en": (768, 12, 12),
    "medium": (1024, 16, 24),
    "medium.en": (1024, 16, 24),
}
MEL_FRAMES_PER_SECOND = 100  # Whisper's front end: hop 160 samples at 16 kHz
WHISPER_WINDOW_S = 30.0  # Whisper's encoder sees 30 s windows (3000 mel frames -> 1500 positions)
EFFICIENTNET_STRIDE = 32  # EfficientNet's last feature map is the image downsampled 32 times
IMAGENET_CLASSES = 1000  # the EfficientNet-Lite classifier head's classes (assets/imagenet_classes.txt)
RECOGNITION_FIELDS = ("recognise_classes", "recognise_speech", "recognise_no_speech")  # recognise.py
SPEECH_SOURCES = ("faster-whisper", "stem")  # ModelConfig.recognise_speech_from
LOGPROB_OFF = -20.0  # recognise_min_logprob at or below this keeps every window (greedy tokens score >= -log(vocab))


@dataclass(frozen=True)
class ModelConfig:
    """Every number that decides the model's shapes and its input budget. Defaults are the `mini` size."""

    name: str = "mini-random"  # the model's name in its id ("<name>@<digest>"); "-random" says: untrained
    # --- backbone (BERT architecture; defaults = all-MiniLM-L6-v2, so its weights import as they are)
    vocab_size: int = 30522  # bert-base-uncased WordPiece, the vendored tokenizer
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536  # 4 x hidden, as BERT
    max_positions: int = 512  # BERT's learned position table; the whole interleaved sequence must fit
    layer_norm_eps: float = 1e-12  # BERT's value; the pretrained LayerNorms were trained with it
    hidden_act: str = "gelu"  # exact (erf) GELU, as BERT
    dropout: float = 0.1  # BERT's hidden and attention dropout; only active in train mode
    # --- text
    max_text_tokens: int = 256  # text budget incl. [CLS]/[SEP] and the prompt; MiniLM was trained at 256
    query_prompt: str = GEMINI_QUERY_PROMPT
    document_prompt: str = GEMINI_DOCUMENT_PROMPT
    # --- images (and video frames)
    image_stem: str = "patch"  # "patch": conv patch projection from scratch (ViT); "efficientnet": a CNN + projector
    image_encoder: str = "lite0"  # EfficientNet-Lite variant when image_stem == "efficientnet" (else unused)
    image_size: int = 224  # images are resized and centre-cropped to this square (gemb2.parts.fit_image)
    patch_size: int = 32  # 224/32 = 7x7 = 49 tokens per image: several images still fit 512 positions
    # --- audio
    audio_stem: str = "mel"  # "mel": log-mel + strided conv1d from scratch; "whisper": Whisper's encoder + projector
    audio_encoder: str = "base"  # Whisper size when audio_stem == "whisper" (a key of WHISPER_SIZES; else unused)
    n_mels: int = 80  # Whisper's 80-bin log-mel front end
    audio_frames_per_token: int = 20  # 20 mel frames = 0.2 s per token: a 30 s window is 150 tokens (both stems)
    audio_window_s: float = 30.0  # Whisper's window; longer audio is cut to its first window
    # --- video
    video_fps: float = 1.0  # frames sampled per second by the loaders
    max_frames: int = 32  # frames kept per video window (evenly spaced if more arrive)
    video_tokens_per_frame: int = 4  # each frame's patch grid is average-pooled to a 2x2 grid: 32 frames = 128 tokens
    max_time_buckets: int = 32  # rows of the temporal embedding; later frames share the last row
    time_bucket_s: float = 1.0  # seconds per temporal bucket: one bucket per sampled frame at 1 fps
    # --- output
    out_dim: int = 384  # projection size: the stored vector's dimension
    matryoshka_dims: tuple[int, ...] = (384, 256, 128, 64)  # usable prefixes, descending; first == out_dim
    seed: int = 0  # random init seed: every process builds identical untrained weights
    # --- added after v1: left out of to_dict() (config.json, the id hash) at their defaults; see OPTIONAL
    calibration: str = "none"  # "centre": media vectors shifted onto the text cloud's centre (calibration.py)
    # recognition (recognise.py): words read off each media part, embedded as a Text part placed before it. Off by
    # default; while off these fields are left out (OPTIONAL), while on all of them are written (RECOGNITION_FIELDS)
    recognise_classes: int = 0  # top-k ImageNet class names from the EfficientNet image stem's own classifier head
    recognise_speech: str = ""  # "whisper-<size>": the words of audio (and a video's track), greedy Whisper decoding
    recognise_no_speech: float = 0.4  # a decoded segment whose no-speech probability is above this is dropped
    # what Whisper's decoder reads (recognise.py): "faster-whisper" (its own log-mel of the clip, zero-padded as
    # features, through its own copy of the encoder: v2 as first released) or "stem" (the audio stem's encoder
    # output, which the stem computes anyway: one encoder pass per window instead of two). Not a RECOGNITION_FIELD:
    # written only when not the default, so the first v2's config and id stay as they were
    recognise_speech_from: str = "faster-whisper"
    # a decoded window whose mean log-probability is below this is dropped too (Whisper's log_prob_threshold, -1.0:
    # v2); at or below LOGPROB_OFF (no greedy decoding's mean is that low) only the no-speech gate decides (v2.1)
    recognise_min_logprob: float = -1.0

    def __post_init__(self) -> None:
        _need(bool(self.name) and "@" not in self.name, f"name must be non-empty without '@', got {self.name!r}")
        for key in _POSITIVE:
            _need(getattr(self, key) >= 1, f"{key} must be >= 1, got {getattr(self, key)}")
        _need(self.hidden % self.heads == 0, f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        _need(self.hidden_act == "gelu", f"hidden_act must be 'gelu', got {self.hidden_act!r}")
        _need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _need(
            3 <= self.max_text_tokens <= self.max_positions,
            f"max_text_tokens must be in [3, max_positions={self.max_positions}], got {self.max_text_tokens}",
        )
        _need(self.calibration in CALIBRATIONS, f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        self._check_image_stem()
        self._check_audio_stem()
        self._check_video_and_output()
        self._check_recognition()

    def _check_image_stem(self) -> None:
        _need(self.image_stem in IMAGE_STEMS, f"image_stem must be one of {IMAGE_STEMS}, got {self.image_stem!r}")
        if self.image_stem == "patch":
            _need(
                self.image_size % self.patch_size == 0,
                f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})",
            )
        if self.image_stem == "efficientnet":
            _need(
                self.image_encoder in EFFICIENTNET_VARIANTS,
                f"image_encoder must be one of {EFFICIENTNET_VARIANTS}, got {self.image_encoder!r}",
            )
            _need(
                self.image_size >= EFFICIENTNET_STRIDE,
                f"image_size must be >= {EFFICIENTNET_STRIDE} for EfficientNet, got {self.image_size}",
            )

    def _check_audio_stem(self) -> None:
        _need(self.audio_stem in AUDIO_STEMS, f"audio_stem must be one of {AUDIO_STEMS}, got {self.audio_stem!r}")
        if self.audio_stem != "whisper":
            return
        _need(
            self.audio_encoder in WHISPER_SIZES,
            f"audio_encoder must be one of {tuple(WHISPER_SIZES)}, got {self.audio_encoder!r}",
        )
        _need(self.n_mels == 80, f"n_mels must be 80 for Whisper's encoder, got {self.n_mels}")
        _need(
            self.audio_frames_per_token % 2 == 0,  # the encoder halves the frame rate
            f"audio_frames_per_token must be even for Whisper, got {self.audio_frames_per_token}",
        )
        _need(
            self.audio_window_s <= WHISPER_WINDOW_S,
            f"audio_window_s must be <= {WHISPER_WINDOW_S:g} for Whisper, got {self.audio_window_s}",
        )

    def _check_video_and_output(self) -> None:
        side = math.isqrt(self.video_tokens_per_frame)
        _need(
            side * side == self.video_tokens_per_frame,
            f"video_tokens_per_frame must be a square number, got {self.video_tokens_per_frame}",
        )
        _need(
            self.image_stem == "none" or side <= self.image_grid,
            f"video_tokens_per_frame ({self.video_tokens_per_frame}) exceeds the frame's token grid",
        )
        _need(
            self.audio_window_s > 0 and self.video_fps > 0 and self.time_bucket_s > 0,
            "audio_window_s, video_fps and time_bucket_s must be positive",
        )
        dims = self.matryoshka_dims
        _need(
            len(dims) >= 1 and dims[0] == self.out_dim,
            f"matryoshka_dims must start with out_dim={self.out_dim}, got {dims}",
        )
        _need(
            all(a > b for a, b in zip(dims, dims[1:])) and all(d >= 1 for d in dims),
            f"matryoshka_dims must be strictly descending and positive, got {dims}",
        )

    def _check_recognition(self) -> None:
        k = self.recognise_classes
        _need(0 <= k <= IMAGENET_CLASSES, f"recognise_classes must be in [0, {IMAGENET_CLASSES}], got {k}")
        _need(
            k == 0 or self.image_stem == "efficientnet",
            f"recognise_classes needs image_stem 'efficientnet' (its ImageNet head), got {self.image_stem!r}",
        )
        speech = self.recognise_speech
        sizes = tuple(f"whisper-{s}" for s in WHISPER_SIZES)
        _need(speech in ("", *sizes), f"recognise_speech must be '' or one of {sizes}, got {speech!r}")
        _need(not speech or self.audio_stem != "none", "recognise_speech needs an audio stem (audio_stem is 'none')")
        _need(
            0.0 <= self.recognise_no_speech <= 1.0,
            f"recognise_no_speech must be in [0, 1], got {self.recognise_no_speech}",
        )
        source = self.recognise_speech_from
        _need(
            source in SPEECH_SOURCES,
            f"recognise_speech_from must be one of {SPEECH_SOURCES}, got {source!r}",
        )
        _need(
            source != "stem" or not speech or (self.audio_stem, self.audio_encoder) == ("whisper", speech[8:]),
            f"recognise_speech_from 'stem' needs the audio stem to be the Whisper encoder {speech!r} decodes from "
            f"(audio_stem 'whisper', audio_encoder {speech[8:]!r}), got {self.audio_stem!r} {self.audio_encoder!r}",
        )

    @property
    def recognises(self) -> bool:
        """Whether the model reads words off its media (recognise.py) before embedding them."""
        return self.recognise_classes > 0 or bool(self.recognise_speech)

    # --- derived sizes (one place, so stems and the model agree)
    @property
    def image_grid(self) -> int:
        """Side of an image's token grid: patches, or EfficientNet's last feature map ("SAME" padding: ceil)."""
        if self.image_stem == "efficientnet":
            return -(-self.image_size // EFFICIENTNET_STRIDE)
        return self.image_size // self.patch_size

    @property
    def image_tokens(self) -> int:
        """Tokens per image: the token grid."""
        return self.image_grid**2

    @property
    def modalities(self) -> tuple[str, ...]:
        """What this model embeds: text always; images and video with an image stem; audio with an audio stem."""
        out = ("text",)
        if self.image_stem != "none":
            out += ("image",)
        if self.audio_stem != "none":
            out += ("audio",)
        if self.image_stem != "none":
            out += ("video",)
        return out

    @property
    def max_audio_tokens(self) -> int:
        """Tokens of one full audio window."""
        return math.ceil(self.audio_window_s * MEL_FRAMES_PER_SECOND / self.audio_frames_per_token)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # --- JSON
    def to_dict(self) -> dict[str, Any]:
        """Every field, except the OPTIONAL ones at their defaults: a config written before they existed reads
        back the same, and its model id does not move. A model that recognises keeps all its RECOGNITION_FIELDS
        (its id then pins the gate too, not just what differs from today's defaults)."""
        d = dataclasses.asdict(self)
        d["matryoshka_dims"] = list(self.matryoshka_dims)
        for key, default in OPTIONAL.items():
            if d[key] == default and not (self.recognises and key in RECOGNITION_FIELDS):
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: object) -> ModelConfig:
        """Build from `to_dict()` output. Refuses unknown or missing keys and wrong types, naming the key."""
        if not isinstance(d, dict):
            raise TypeError(f"a model config must be a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        d = OPTIONAL | d
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"model config is missing key(s): {', '.join(missing)}")
        kwargs = {n: _check_type(n, d[n], hints[n]) for n in names}
        return cls(**kwargs)


OPTIONAL = {  # fields added after v1 -> their defaults (absent = default)
    "calibration": "none",
    "recognise_classes": 0,
    "recognise_speech": "",
    "recognise_no_speech": 0.4,
    "recognise_speech_from": "faster-whisper",
    "recognise_min_logprob": -1.0,
}

_POSITIVE = (  # the fields that must be >= 1
    "vocab_size",
    "hidden",
    "layers",
    "heads",
    "intermediate",
    "max_positions",
    "image_size",
    "patch_size",
    "n_mels",
    "audio_frames_per_token",
    "max_frames",
    "video_tokens_per_frame",
    "max_time_buckets",
    "out_dim",
)


def _need(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(f"ModelConfig: {msg}")


def _check_type(key: str, value: Any, hint: Any) -> Any:
    def bad() -> TypeError:
        return TypeError(
            f"model config key {key!r} must be {getattr(hint, '__name__', hint)}, got {type(value).__name__} {value!r}"
        )

    if hint is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise bad()
        return tuple(value)
    raise TypeError(f"model config key {key!r} has an unsupported type {hint}")  # a bug in this file


# --- named sizes ---------------------------------------------------------------------------


def tiny() -> ModelConfig:
    """Random init, fast on a CPU: for tests and trying the pipeline. Not a useful embedding."""
    return ModelConfig(
        name="tiny-random",
        hidden=64,
        layers=2,
        heads=2,
        intermediate=128,
        max_positions=512,
        image_size=64,
        patch_size=16,  # 4x4 = 16 tokens per image
        max_frames=8,
        max_time_buckets=16,
        out_dim=64,
        matryoshka_dims=(64, 32, 16),
    )


def mini() -> ModelConfig:
    """MiniLM-L6 shapes (22M backbone parameters): the size of the default trained model."""
    return ModelConfig()


def base() -> ModelConfig:
    """BERT-base shapes (110M backbone parameters)."""
    return ModelConfig(
        name="base-random",
        hidden=768,
        layers=12,
        heads=12,
        intermediate=3072,
        patch_size=16,  # 196 tokens per image: the larger model can afford finer patches
        out_dim=768,
        matryoshka_dims=(768, 512, 256, 128),
    )
