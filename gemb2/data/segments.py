"""What the loaders take and give: `LoadSpec` (how to cut and preprocess files), `Segment` (one window of a
file, one row in the store), `LoadError` (why a file cannot be loaded), and the segmentation versions.

The loaders (text.py, image.py, audio.py, video.py, pdf.py) and their dispatch (load.py) import this module; it
imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemb2.errors import InputError
from gemb2.parts import Part

# How the loaders cut files into segments, versioned per modality (the modality an extension claims). A store
# keeps the version each file's rows were cut with; a rerun re-embeds files cut by an older version. Bump a
# modality's number when its windows change.
#   text 2: windows cover the whole text (version 1 let a tokenizer.json's own truncation cut each block).
SEGMENTATION = {"text": 2, "image": 1, "audio": 1, "video": 1, "document": 1}

# What a model must embed for a file of a modality to be embedded at all: a document (a PDF) needs text only (with
# images too, its pages are also embedded as they look; without, by their text layer alone: see pdf.py).
NEEDS = {"document": "text"}


def embeddable(modality: str, model_modalities: tuple[str, ...] | set[str] | frozenset[str]) -> bool:
    """Whether a model that embeds `model_modalities` embeds files of `modality` (a document: with text)."""
    return NEEDS.get(modality, modality) in model_modalities


def segmentation_version(modality: str) -> int:
    """The current segmentation version of files of `modality` (1 for any modality not listed)."""
    return SEGMENTATION.get(modality, 1)


@dataclass(frozen=True)
class LoadSpec:
    """How files are cut into segments and preprocessed. Built by the pipeline from a model's config.

    Every long input is split into windows; each window is one segment (one row in the store),
    with its start and end (seconds for audio and video, characters for text, page and characters for a
    document: see pdf.py).
    """

    modalities: tuple[str, ...] = ("text", "image", "audio", "video")  # what the model embeds: a PDF page is
    #   rendered only when it holds "image"

    image_size: int = 224  # images and video frames: shorter side resized to this, then centre-cropped square
    image_patches: tuple[int, int, int] | None = None  # (patch, pooling kernel, max soft tokens): the model resizes
    #   images itself to that soft-token budget, keeping their aspect ratio (EmbeddingGemma 2's processor): image files
    #   are decoded whole (up to max_image_pixels), neither cropped nor resized here
    max_image_pixels: int = 100_000_000  # decompression-bomb guard: a larger image is refused before decoding
    audio_window_s: float = 30.0  # audio is cut into windows of this length (the last may be shorter)
    video_window_s: float = 30.0  # video likewise; each window holds its frames and its audio
    video_fps: float = 1.0  # frames sampled per second of video
    max_frames: int = 32  # cap on frames per video window (sampling spreads out when it would exceed it)
    video_sampling: str = "grid"  # grid: frames on a 1/video_fps s grid (video.py); index: the Hugging Face video
    #   processors' rule, by frame number, each window taken as a clip (video.reference_indices)
    video_overflow: str = "uniform"  # index sampling past max_frames: keep an even spread (uniform) or the first
    text_window_tokens: int = 256  # text is chunked by tokens of the model's tokenizer
    text_overlap_tokens: int = 32  # tokens shared by consecutive text windows
    tokenizer_file: str | None = None  # tokenizer.json used for chunking; None chunks by whitespace words
    max_text_bytes: int = 64 * 1024 * 1024  # a larger text file is refused
    max_document_pages: int = 10_000  # a PDF with more pages is refused (before any page is read)
    # Per-file limits, enforced by the worker pool (load_parallel with workers >= 1; not in-process):
    file_timeout_s: float = 120.0  # a file that takes longer than this to give its next segment (or to end;
    #   time blocked on a full pipe is not counted) has its worker killed and fails "timed out after N s":
    #   a hostile file cannot hang a run, a long file that makes progress is not cut
    max_worker_memory_mb: int = 2048  # a worker whose resident memory passes this is killed and its file
    #   fails; its address space (RLIMIT_AS) may also grow by at most 2x this beyond its size at start-up

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if self.audio_window_s <= 0 or self.video_window_s <= 0:
            raise ValueError("window lengths must be positive")
        if self.video_fps <= 0:
            raise ValueError(f"video_fps must be positive, got {self.video_fps}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.video_sampling not in ("grid", "index") or self.video_overflow not in ("uniform", "truncate"):
            raise ValueError("video_sampling must be grid or index, video_overflow uniform or truncate")
        if not 0 <= self.text_overlap_tokens < self.text_window_tokens:
            raise ValueError("text_overlap_tokens must be in [0, text_window_tokens)")
        if not self.file_timeout_s > 0:
            raise ValueError(f"file_timeout_s must be positive, got {self.file_timeout_s}")
        if self.max_document_pages < 1:
            raise ValueError(f"max_document_pages must be >= 1, got {self.max_document_pages}")
        if self.max_worker_memory_mb < 64:
            raise ValueError(f"max_worker_memory_mb must be >= 64, got {self.max_worker_memory_mb}")


SNIPPET_CHARS = 1000  # text rows keep this much of their window as a snippet


@dataclass
class Segment:
    index: int  # 0, 1, ... in the file
    start: float  # seconds for audio and video, character offset for text, 0 for an image, page.offset for a PDF
    end: float  # likewise (exclusive)
    parts: tuple[Part, ...]  # what the model embeds
    text: str | None = None  # the window's text for text rows (at most SNIPPET_CHARS), else None


class LoadError(InputError):
    """A file that cannot be loaded; the message is the reason ("truncated JPEG: ..."), without the path."""
