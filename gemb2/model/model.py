"""The native multimodal embedding model: one sequence per item, one shared backbone, one vector.

Reference: Gemini Embedding 2 (arXiv 2605.27295): every modality becomes tokens of ONE sequence,
task prompts are text prefixes, the vector is a Matryoshka embedding. Pooling follows
sentence-transformers (mean over the real tokens, [CLS] and [SEP] included).

    item = [part 1, part 2, ...]                  Text | Image | Audio | Video, interleaved
    sequence = [CLS] prompt part1 part2 ... [SEP]  text -> word embeddings; media -> stem tokens
    + modality-type embedding per token (text, image, audio, video)
    -> backbone (positions over the whole sequence) -> mean pool -> linear -> L2 normalise

Video: frames go through the image stem; each frame's patch grid is average-pooled to
`video_tokens_per_frame` tokens, plus a learned temporal embedding of the frame's time bucket;
the video's audio track follows its frames through the audio stem (tokens typed "audio").

The layout (layout.py) turns items into sequences and batches: token ids, and slots where the media
tokens go; truncation to `max_text_tokens` and `max_positions` happens there. The forward pass is in
pieces that the ONNX export (gemb2/export) calls too, so the graphs compute what `forward` computes:

    forward(batch) = head(embed(batch), mask)
    embed          = text_tokens(ids), with image_tokens / video_tokens / audio_tokens put at their slots
    sequence       = the same input embeddings for items of one shape, by concatenation (what the export traces)
    video_tokens   = frame_tokens(image stem(frames), times): grid pooled (pool_grid), + time embedding
    head           = backbone -> mean over real tokens -> projection -> L2 normalise

Recognition (recognise.py; config.recognise_*): `encode` first puts the words the model reads off each media part
(ImageNet class names from the image stem's classifier head, Whisper's transcript) before it as a Text part. The
image stem's CNN and (recognise_speech_from "stem") the audio stem's Whisper encoder run once per input for both
(stems/reuse.py).

Stems (stems/): a model without an image stem refuses images and videos, one without an audio
stem refuses audio and embeds a video from its frames alone (`config.modalities` says what fits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..parts import Item, Part, as_item
from . import calibration
from .backbone import Backbone
from .config import ModelConfig
from .digest import weights_digest
from .layout import KINDS, Batch, Layout
from .recognise import Recogniser
from .stems import build_audio_stem, build_image_stem
from .tokenizer import TextTokenizer

STEM_CHUNK = 8  # on a CPU, encode runs the media stems on at most this many images / frames / audio windows at once
MAX_MEDIA = {"cpu": 64, "cuda": 1024}  # images + video frames per forward call of encode (device type -> count)


def check_matryoshka_dim(config, dim: int | None) -> int:
    """None -> config.out_dim; otherwise `dim` must be one of config.matryoshka_dims (any model family's config)."""
    if dim is None:
        return config.out_dim
    if dim not in config.matryoshka_dims:
        raise ValueError(f"dim {dim} is not one of this model's Matryoshka dims {list(config.matryoshka_dims)}")
    return dim


@overload
def truncate(vectors: torch.Tensor, dim: int) -> torch.Tensor: ...
@overload
def truncate(vectors: np.ndarray, dim: int) -> np.ndarray: ...
def truncate(vectors: np.ndarray | torch.Tensor, dim: int) -> np.ndarray | torch.Tensor:
    """Matryoshka: the first `dim` coordinates, re-normalised to unit length. (..., D) -> (..., dim)."""
    if isinstance(vectors, torch.Tensor):
        return F.normalize(vectors[..., :dim], dim=-1)
    v = np.asarray(vectors)[..., :dim]
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(norm, 1e-12)).astype(v.dtype, copy=False)


class Gemb2Model(nn.Module):
    """Text, images, audio, video and interleaved items -> L2-normalised vectors of `config.out_dim`."""

    def __init__(
        self, config: ModelConfig, tokenizer: TextTokenizer | None = None, *, stems: Collection[str] | None = None
    ):
        """`stems`: the media stems to build, of "image" and "audio" (None: every stem the config names; see
        `stems_for`). A model built with `stems` given is partial, made to be loaded from files (load_pretrained,
        releases: what `gemb2 query` encodes with): it embeds only the parts its stems cover, has no `model_id`,
        its backbone is left uninitialised (`_no_init`: its memory untouched until the loaders assign the loaded
        tensors in its place, no second copy), and the random init of the modules after it differs from a full
        build."""
        super().__init__()
        self.config = cfg = config
        self.tokenizer = tokenizer or TextTokenizer.from_file()
        if self.tokenizer.vocab_size > cfg.vocab_size:
            raise ValueError(f"the tokenizer has {self.tokenizer.vocab_size} tokens but vocab_size is {cfg.vocab_size}")
        want = {"image", "audio"} if stems is None else set(stems)
        if want - {"image", "audio"}:
            raise ValueError(f"stems are 'image' and 'audio', not {sorted(want - {'image', 'audio'})}")
        self.partial = stems is not None  # no model_id; loaded by assignment
        with torch.random.fork_rng(devices=[]):  # a fixed seed: every process builds identical weights
            torch.manual_seed(cfg.seed)
            with _no_init() if self.partial else contextlib.nullcontext():  # its weights are all loaded next
                self.backbone = Backbone(cfg)
            self.image_stem = build_image_stem(cfg) if "image" in want else None  # None when the config says "none"
            self.audio_stem = build_audio_stem(cfg) if "audio" in want else None
            self.time_embeddings = nn.Embedding(cfg.max_time_buckets, cfg.hidden)  # video frames by time
            nn.init.normal_(self.time_embeddings.weight, std=0.02)
            # zeros: a pretrained text backbone sees exactly its own inputs at the start of training
            self.modality_embeddings = nn.Embedding(len(KINDS), cfg.hidden)
            nn.init.zeros_(self.modality_embeddings.weight)
            self.projection = nn.Linear(cfg.hidden, cfg.out_dim)
            nn.init.normal_(self.projection.weight, std=cfg.hidden**-0.5)
            nn.init.zeros_(self.projection.bias)
        if cfg.calibration != "none":  # absent at "none": the state (and so the id) of a model without it
            calibration.add_buffer(self, cfg.out_dim)
        image, audio = self.image_stem, self.audio_stem
        self._grid = int(getattr(image, "grid", 0))  # an image stem's tokens are a grid x grid grid
        spt = int(getattr(audio, "samples_per_token", 0)) or None
        self.layout = Layout(cfg, self.tokenizer, images=image is not None, samples_per_token=spt)
        self._frame_side = int(round(cfg.video_tokens_per_frame**0.5))
        self._id_cache: tuple[tuple[object, ...], str] | None = None
        # recognise.py: the words read off media parts, put before them (None: the config recognises nothing)
        self.recogniser = Recogniser(cfg, image, audio) if cfg.recognises else None

    # --- identity and placement ------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.projection.weight.device

    @property
    def model_id(self) -> str:
        """f"{config.name}@{digest}": the digest hashes the config, the tokenizer and every weight.

        Hashing reads every weight (timed in BENCHMARKS.md); the result is cached until a weight changes.
        A partial model (built without some stems) has none: its id would not be the model's.
        """
        if self.partial:
            raise RuntimeError("a model built without some of its stems has no model_id (build it whole)")
        state = self.state_dict()
        key = tuple((k, v._version, v.data_ptr(), v.device.type, v.dtype) for k, v in state.items())
        if self._id_cache is None or self._id_cache[0] != key:
            self._id_cache = (key, f"{self.config.name}@{weights_digest(self.config, self.tokenizer, state)}")
        return self._id_cache[1]

    # --- recognition (recognise.py) and collation (layout.py) ------------------------------------

    def recognise(self, items: Sequence[tuple[Part, ...]]) -> list[tuple[Part, ...]]:
        """Items with the words this model recognises in their media placed before each media part as a Text part
        (config.recognise_classes, config.recognise_speech); unchanged when the config recognises nothing.
        `encode` calls it first; `collate` and `forward` take the items as they are."""
        if self.recogniser is None:
            return list(items)
        self.recogniser.device = self.device
        return self.recogniser.expand(items)

    def collate(self, items: Sequence[Item | Part | str], task: str | None = "document") -> Batch:
        """Items (or single parts, or strings) -> a Batch of CPU tensors. task: "query", "document" or None."""
        return self.layout.collate(self.layout.plan_many([as_item(x) for x in items], task))

    # --- the forward pass: input embeddings, then the head ----------------------------------------

    def forward(self, batch: Batch, *, stem_chunk: int | None = None) -> torch.Tensor:
        """Batch -> (B, out_dim) L2-normalised embeddings. Differentiable (training calls this).

        `stem_chunk`: run the image and audio stems on at most this many images, frames or audio windows
        at a time (`encode` does on a CPU, to bound activation memory); None runs each stem once on all of
        them. The stems treat items independently, so the vectors are the same either way (to float rounding).
        """
        v = self.head(self.embed(batch, stem_chunk=stem_chunk), batch.mask)  # (B, out_dim)
        return self.calibrated(v, calibration.item_kinds(batch)) if self.config.calibration != "none" else v

    def embed(self, batch: Batch, *, stem_chunk: int | None = None) -> torch.Tensor:
        """The typed input embeddings of a collated batch: text tokens at their positions, each media token at
        its slot (the ones truncation cut off dropped). -> (B, T, H)."""
        B, T = batch.input_ids.shape
        x = self.text_tokens(batch.input_ids)  # (B, T, H); media positions are overwritten
        H = x.shape[-1]
        tokens, slots = [], []  # media tokens and where they go
        if len(batch.images):
            tokens.append(self.image_tokens(batch.images, stem_chunk).reshape(-1, H))  # (Ni * k, H)
            slots.append(batch.image_slots.reshape(-1))
        if len(batch.frames):
            tokens.append(self.video_tokens(batch.frames, batch.frame_times, stem_chunk).reshape(-1, H))  # (Nf * r, H)
            slots.append(batch.frame_slots.reshape(-1))
        for samples, s in zip(batch.audio, batch.audio_slots):
            tokens.append(self.audio_tokens(samples, stem_chunk).reshape(-1, H))  # (n_g * m_g, H)
            slots.append(s.reshape(-1))
        if tokens:
            tok, idx = torch.cat(tokens), torch.cat(slots)
            keep = idx >= 0  # drop the tokens truncation cut off
            x = x.reshape(B * T, H).index_put((idx[keep],), tok[keep]).view(B, T, H)
        return x

    def sequence(self, media: Sequence[torch.Tensor], task: str | None = "document") -> torch.Tensor:
        """The typed input embeddings of B items of one shape, laid out without collation: [CLS] and the prompt,
        the `media` tokens (each (B, n_i, H), from `image_tokens` / `audio_tokens` / `video_tokens`) in order, cut
        as the layout cuts, [SEP] -> (B, T, H), every position real. `embed(collate(items))` gives the same; the
        ONNX export traces this (sizes vary there, so it cannot run the layout's Python)."""
        B = media[0].shape[0]
        ids = torch.tensor(self.layout.prefix(task), dtype=torch.long, device=self.device)
        x = torch.cat([self.text_tokens(ids).expand(B, -1, -1), *media], dim=1)[:, : self.layout.limit]
        sep = torch.tensor([self.tokenizer.sep_id], dtype=torch.long, device=self.device)
        x = torch.cat([x, self.text_tokens(sep).expand(B, -1, -1)], dim=1)
        return x  # (B, T, H)

    def text_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings, typed as text. (..., T) long -> (..., T, H)."""
        return self.typed(self.backbone.embeddings.word_embeddings(input_ids), "text")

    def image_tokens(self, pixels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Images through the image stem, typed. (N, 3, S, S) uint8 -> (N, k, H)."""
        return self.typed(_chunked(_need(self.image_stem), pixels, chunk), "image")

    def audio_tokens(self, samples: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Audio windows of one length through the audio stem, typed. (n, N) float32 -> (n, N / samples_per_token, H)."""
        return self.typed(_chunked(_need(self.audio_stem), samples, chunk), "audio")

    def video_tokens(self, frames: torch.Tensor, times: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Video frames through the image stem as `frame_tokens`, typed. (Nf, 3, S, S) uint8, (Nf,) s -> (Nf, r, H)."""
        return self.typed(self.frame_tokens(_chunked(_need(self.image_stem), frames, chunk), times), "video")

    def typed(self, tokens: torch.Tensor, kind: str) -> torch.Tensor:
        """Tokens (..., H) plus the modality-type embedding of `kind` (a key of layout.KINDS)."""
        w = self.modality_embeddings.weight
        return tokens.to(w.dtype) + w[KINDS[kind]]

    def frame_tokens(self, grid_tokens: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """A video's frames as tokens: each frame's image-stem grid average-pooled to `video_tokens_per_frame`
        cells, plus the time embedding of its bucket. (Nf, k, H), (Nf,) seconds -> (Nf, r, H)."""
        H, g = grid_tokens.shape[-1], self._grid
        f = grid_tokens.transpose(1, 2).reshape(-1, H, g, g)  # (Nf, H, g, g)
        f = pool_grid(f, self._frame_side)  # (Nf, H, r_side, r_side)
        f = f.flatten(2).transpose(1, 2)  # (Nf, r, H)
        return f + self.time_embeddings(self.time_buckets(times))[:, None, :]  # (Nf, r, H)

    def time_buckets(self, times: torch.Tensor) -> torch.Tensor:
        """Each frame's row of the time embedding: floor(time / time_bucket_s), clamped to 0 .. max_time_buckets - 1.
        The floor is Python's and numpy's floor division of float32 values (exact, through fmod), written in ops the
        ONNX export traces. (Nf,) float -> (Nf,) long."""
        cfg = self.config
        t = times.float()
        div = (t - torch.fmod(t, cfg.time_bucket_s)) / cfg.time_bucket_s  # a whole number, up to rounding
        q = torch.floor(div)
        q = q + (div - q > 0.5).to(q.dtype)
        return q.clamp(0, cfg.max_time_buckets - 1).long()

    def head(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Typed input embeddings -> the vector: backbone, mean over real tokens, projection, L2 normalise.
        (B, T, H), (B, T) bool -> (B, out_dim)."""
        h = self.backbone(x, mask)  # (B, T, H)
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1)  # (B, H) mean over real tokens
        return F.normalize(self.projection(pooled), dim=-1)  # (B, out_dim)

    def calibrated(self, v: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
        """head's vectors (B, out_dim) of items of `kinds` ((B,) rows of KINDS) with the per-modality calibration
        (calibration.py) applied: media moved by their modality's shift, text as it is. Without one, `v`."""
        if self.config.calibration == "none":
            return v
        return calibration.calibrate(v, self.get_buffer(calibration.BUFFER), kinds)

    # --- inference --------------------------------------------------------------------------

    def _reusing_features(self, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
        """The stems' `reuse` blocks (stems/reuse.py), where `encode` computes each picture's CNN features and each
        audio window's Whisper encoding once: recognition (recognise.py) runs them for the class names and the
        decoder, and the stems' `forward` takes them next. Not under autocast (recognition runs outside it: under it
        the stems' features would be computed otherwise)."""
        if self.recogniser is None or amp is not None:
            return contextlib.nullcontext()
        blocks = contextlib.ExitStack()
        for stem in (self.recogniser.image_stem, self.recogniser.audio_stem):
            if stem is not None:
                blocks.enter_context(stem.reuse.reusing())
        return blocks

    def check_dim(self, dim: int | None) -> int:
        """None -> out_dim; otherwise `dim` must be one of config.matryoshka_dims."""
        return check_matryoshka_dim(self.config, dim)

    def truncate(self, vectors: np.ndarray | torch.Tensor, dim: int) -> np.ndarray | torch.Tensor:
        """Matryoshka prefix of `dim` (one of config.matryoshka_dims), re-normalised."""
        return truncate(vectors, self.check_dim(dim))

    def encode(
        self,
        items: Sequence[Item | Part | str],
        *,
        task: str | None = "document",
        dim: int | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        precision: str = "auto",
        device: torch.device | str | None = None,
    ) -> np.ndarray:
        """Items -> (N, dim) float32 unit vectors, in input order.

        Runs in eval mode under inference_mode. Items are tokenized in bulk, sorted by sequence length and
        cut into batches of at most `batch_size` items and `max_tokens` padded positions (defaults: 32 items
        on a CPU; 1024 items / 65,536 positions on a GPU, where small batches starve it). `precision`:
        "auto" (fp16 autocast on a GPU, fp32 elsewhere), "fp32", "fp16" or "bf16" (bf16 autocast on a CPU with
        avx512_bf16 is faster and moves the vectors slightly: BENCHMARKS.md; fp32 is exact). On a GPU, batches
        go through pinned memory with non-blocking copies and the vectors stay on the device until one copy at the
        end, so the CPU collates the next batch while the GPU runs this one. `device` moves the model there first.
        A model whose config recognises media (recognise.py) first adds the words it reads off each media part.
        """
        dim = self.check_dim(dim)
        if device is not None:
            self.to(device)
        dev = self.device
        cuda = dev.type == "cuda"
        batch_size = batch_size if batch_size is not None else (1024 if cuda else 32)
        max_tokens = max_tokens if max_tokens is not None else (65536 if cuda else None)
        if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
            raise ValueError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}")
        amp = _autocast_dtype(precision, dev)
        stem_chunk = None if cuda else STEM_CHUNK
        was_training = self.training
        self.eval()
        try:
            with self._reusing_features(amp):  # the CNN / Whisper encoder once per input recognition read
                plans = self.layout.plan_many(self.recognise([as_item(x) for x in items]), task)
                order = sorted(range(len(plans)), key=lambda i: -plans[i].length)  # longest first: less padding
                out = torch.empty((len(plans), dim), dtype=torch.float32, device=dev)
                with (
                    torch.inference_mode(),
                    torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None),
                ):
                    for chunk in length_batches(
                        [plans[i].length for i in order],
                        batch_size,
                        max_tokens,
                        media=[plans[i].media for i in order],
                        max_media=MAX_MEDIA.get(dev.type, MAX_MEDIA["cpu"]),
                    ):
                        idx = [order[i] for i in chunk]
                        batch = self.layout.collate([plans[i] for i in idx])
                        batch = batch.pin_memory().to(dev, non_blocking=True) if cuda else batch.to(dev)
                        v = self.forward(batch, stem_chunk=stem_chunk).float()  # (b, out_dim)
                        out[torch.tensor(idx, device=dev)] = truncate(v, dim)  # (b, dim)
        finally:
            self.train(was_training)
        return out.cpu().numpy()


_INIT_FUNCTIONS = ("normal_", "uniform_", "kaiming_uniform_", "zeros_", "ones_", "constant_")


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Modules built in the block keep their freshly allocated (uninitialised) parameters: torch.nn.init's
    functions, which every torch layer's reset_parameters and Backbone's BERT init call, do nothing. For modules
    whose every weight is loaded next: no time spent drawing random numbers, and no page of the parameters made
    resident before the loaded tensors replace them (the idea of transformers' `no_init_weights`)."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def stems_for(modalities: Collection[str]) -> frozenset[str]:
    """The media stems that embedding parts of `modalities` needs: images and video frames go through the image
    stem, audio and a video's audio track through the audio stem; text needs none."""
    known = {"text", "image", "audio", "video"}
    if set(modalities) - known:
        raise ValueError(f"modalities are text, image, audio and video, not {sorted(set(modalities) - known)}")
    need = {"image": ("image",), "audio": ("audio",), "video": ("image", "audio")}
    return frozenset(s for m in modalities for s in need.get(m, ()))


def pool_grid(f: torch.Tensor, side: int) -> torch.Tensor:
    """Adaptive average pooling of a square grid: (N, C, g, g) -> (N, C, side, side), PyTorch's bins
    (cell i averages rows floor(i * g / side) .. ceil((i + 1) * g / side) - 1; they overlap when side does not
    divide g). While exporting to ONNX, the same means as two matmuls with a constant bin matrix: the ONNX
    exporter cannot convert adaptive pooling with a non-dividing size (7x7 -> 2x2)."""
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(f, side)
    bins = grid_bins(int(f.shape[-1]), side).to(f)  # (side, g); the grid is a constant of the model
    return bins @ f @ bins.T  # (N, C, side, side)


def grid_bins(g: int, side: int) -> torch.Tensor:
    """(side, g) float32: row i holds 1 / len over adaptive pooling's bin i of a g-long axis, 0 elsewhere."""
    bins = torch.zeros(side, g)
    for i in range(side):
        lo, hi = (i * g) // side, -(-((i + 1) * g) // side)
        bins[i, lo:hi] = 1.0 / (hi - lo)
    return bins


def _need(stem: nn.Module | None) -> nn.Module:
    """The stem, which the layout has made sure of: it refuses parts a model has no stem for."""
    if stem is None:
        raise RuntimeError("internal: a part reached a stem this model does not have")
    return stem


def _chunked(stem: nn.Module, x: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """stem(x), computed on at most `chunk` rows of x at a time (None: all at once)."""
    if chunk is None or len(x) <= chunk:
        return stem(x)
    return torch.cat([stem(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None = plain fp32."""
    choices = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision not in choices:
        raise ValueError(f"precision must be 'auto', 'fp32', 'fp16' or 'bf16', got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' needs a GPU; on a CPU use 'fp32' (default) or 'bf16'")
    return choices[precision]


def length_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    *,
    media: Sequence[int] | None = None,
    max_media: int | None = None,
) -> list[list[int]]:
    """Cut positions 0..n-1 of `lengths` (sorted longest first) into consecutive batches of at most
    `batch_size` items whose padded size (items x the first, longest, length) stays within `max_tokens`
    and whose `media` (images + video frames per item) add up to at most `max_media` (a single item over
    a limit still gets a batch of its own). The media cap bounds the memory of one call on video: the
    collated frames and the stems' outputs grow with the frames, not with the items."""
    batches: list[list[int]] = []
    i, n = 0, len(lengths)
    while i < n:
        cap = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // max(1, lengths[i])))
        j = min(n, i + cap)
        if media is not None and max_media is not None:
            total, k = media[i], i + 1
            while k < j and total + media[k] <= max_media:
                total += media[k]
                k += 1
            j = k
        batches.append(list(range(i, j)))
        i = j
    return batches


def identity_projection_(model: Gemb2Model) -> Gemb2Model:
    """Set the output projection to the identity (out_dim must equal hidden): the pooled backbone state IS the vector."""
    cfg = model.config
    if cfg.out_dim != cfg.hidden:
        raise ValueError(
            f"an identity projection needs out_dim == hidden, got out_dim {cfg.out_dim} and hidden {cfg.hidden}"
        )
    with torch.no_grad():
        model.projection.weight.copy_(torch.eye(cfg.hidden, dtype=model.projection.weight.dtype))
        model.projection.bias.zero_()
    return model
