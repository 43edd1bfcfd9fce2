"""The training loop of one stage: one explicit loop, no framework Trainer.

    for step in range(start, steps):
        batch = feed.next()                           # this rank's rows of the step's GLOBAL batch, one task:
                                                      # JSONL by TaskSampler, or streamed from shards (feeds.py)
        loss  = objective(batch)                      # embed -> gather over ranks -> Matryoshka(InfoNCE)
        all_reduce_grads; clip; AdamW step            # lr from warmup + cosine (schedule.lr_at)
        checkpoint every N steps                      # model, trainable weights, optimizer, data position, RNG

Precision: bf16 autocast on CUDA (Micikevicius et al. 2018 for mixed precision; bf16 needs no loss
scaling), fp32 on CPU. The loss itself is computed in fp32. Large batches: `cache_chunk` > 0 runs the
objective through GradCache (cached.py) in chunks of that many items. Several processes: started by
`torchrun`, each rank embeds its rows of the global batch; gradients are summed (distributed.py).
Model families: gemb2's own models, and EmbeddingGemma 2 folders (the folder's tokenizer and prompts, LoRA on
its text encoder, saved back in its own Hugging Face layout: gemma2.py).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gemb2.model import Gemb2Model, onednn
from gemb2.pretrained.sources import load_model

from . import checkpoint as ckpt
from .batches import TrainBatch
from .cached import GradCache
from .distributed import all_reduce_grads, barrier, init_from_env
from .feature_cache import shared_cache
from .feeds import make_feed
from .gather import gather_rows
from .gemma2 import embed_gemma2, is_gemma2, prepare_gemma2, save_trained
from .infonce import InfoNCELoss
from .lora import DEFAULT_TARGETS, apply_lora, freeze, merged
from .matryoshka import MatryoshkaLoss
from .optim_state import load_optimizer, save_optimizer
from .schedule import lr_at
from .shard_feed import ShardSource
from .tasks import TaskSpec


@dataclass(frozen=True)
class TrainSettings:
    """One training stage's hyper-parameters (a recipe stage's keys)."""

    steps: int
    batch_size: int  # the GLOBAL contrastive batch (split over ranks)
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: int = 0  # optimizer steps of linear warmup
    lr_floor: float = 0.0  # cosine decays to lr * lr_floor
    clip: float = 1.0  # max gradient norm (0 = no clipping)
    temperature: float = 0.05
    matryoshka_dims: tuple[int, ...] | None = None  # None = the model config's
    prompt_dropout: float = 0.0  # probability that an item is trained without its prompt
    freeze: tuple[str, ...] = ()  # parameter-name prefixes kept frozen ("backbone.", "image_stem.")
    # True: text keeps the exact path of the (frozen) backbone: the text row of modality_embeddings gets no
    # gradient, so with a frozen backbone and projection, text vectors stay the starting model's
    freeze_text: bool = False
    lora_rank: int = 0  # 0 = full fine-tuning of the unfrozen parts
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    gradient_checkpointing: bool = False
    cache_chunk: int = 0  # > 0: GradCache with chunks of this many items
    feature_cache_mb: int = 0  # > 0: frozen stem encoders' outputs memoised up to this many MiB (feature_cache.py)
    data_workers: int = 0  # shard data: loader processes per rank decoding ahead (0 = in the training process)
    checkpoint_every: int = 0  # 0 = only the final model
    keep_checkpoints: int = 2
    seed: int = 0
    log_every: int = 10
    betas: tuple[float, float] = field(default=(0.9, 0.999))


def fingerprint(s: TrainSettings, tasks: dict[str, TaskSpec], data: list, init: str) -> dict:
    """What a checkpoint must agree with for --resume to continue the same run."""
    return {
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.__dict__.items()},
        "tasks": {n: t.__dict__ for n, t in sorted(tasks.items())},
        "data": [d.doc() if isinstance(d, ShardSource) else str(d) for d in data],
        "init": init,
    }


def prepare_model(
    init: str, s: TrainSettings, device: torch.device
) -> tuple[Any, list[tuple[str, torch.nn.Parameter]]]:
    """Load the starting model (gemb2's own, or another family: gemma2.py); freeze, add LoRA, switch gradient
    checkpointing on. -> (model, trainable)."""
    model = load_model(init)
    if is_gemma2(model):
        prepare_gemma2(model, s)  # type: ignore[arg-type]
    else:
        _prepare_gemb2(model, s)  # type: ignore[arg-type]
    model.to(device).train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("every parameter is frozen: nothing to train")
    return model, trainable


def _prepare_gemb2(model: Gemb2Model, s: TrainSettings) -> None:
    freeze(model, s.freeze)
    if s.freeze_text:
        text_row = model.modality_embeddings.weight
        if text_row.requires_grad:  # zero the gradient of the text row (KINDS["text"] == 0)
            text_row.register_hook(lambda g: g.index_fill(0, torch.tensor([0], device=g.device), 0.0))
    if s.lora_rank:
        apply_lora(model.backbone, s.lora_rank, s.lora_alpha, s.lora_targets)
    if s.gradient_checkpointing:
        if not hasattr(model.backbone, "gradient_checkpointing"):
            raise ValueError("gradient_checkpointing: this gemb2 backbone has no gradient_checkpointing flag")
        model.backbone.gradient_checkpointing = True


def train_stage(
    init: str,
    out: str | Path,
    tasks: dict[str, TaskSpec],
    data: list[str | ShardSource],
    s: TrainSettings,
    *,
    resume: bool = False,
    log: Callable[[str], None] = lambda m: None,
) -> Path:
    """Train one stage from model `init` (a preset or folder); the result is `out`/final. Returns that folder."""
    from safetensors.torch import save_file

    from gemb2.pipeline.loadspec import load_spec_for

    out = Path(out)
    rank, world, device = init_from_env()
    root = out / "checkpoints"
    if s.batch_size % world:
        raise ValueError(f"batch_size {s.batch_size} is not divisible by the {world} ranks")
    model, trainable = prepare_model(init, s, device)
    params = [p for _, p in trainable]
    opt = _optimizer(trainable, s)
    spec = load_spec_for(model)
    feed = make_feed(data, tasks, s, spec, model.config, rank, world)
    dims = s.matryoshka_dims or model.config.matryoshka_dims
    losses = {n: MatryoshkaLoss(InfoNCELoss(s.temperature, t.symmetric), dims) for n, t in tasks.items()}
    meta = fingerprint(s, tasks, data, init)

    last = ckpt.latest(root) if resume else None
    if last is not None:
        start = _resume(last, meta, trainable, opt, feed, rank)
        log(f"resumed from {last} at step {start}")
    else:
        start = 0
        torch.manual_seed(s.seed * 1000 + rank)  # dropout differs per rank, fixed by the seed
    encode = _encoder(model, device)
    cache = shared_cache(s.feature_cache_mb) if s.feature_cache_mb > 0 else None
    attached = (lambda: cache.attached(model)) if cache is not None else contextlib.nullcontext
    t0, seen = time.perf_counter(), 0
    fast_cpu = onednn.onednn_matmul() if device.type == "cpu" else contextlib.nullcontext()
    with fast_cpu:  # fp32 oneDNN matmuls on CPUs where they are exact (gemb2/model/onednn.py)
        for step in range(start, s.steps):
            batch = feed.next()
            lr = lr_at(step, total=s.steps, warmup=s.warmup, peak=s.lr, floor_ratio=s.lr_floor)
            _begin_step(opt, lr)
            with attached():
                loss = _objective(batch, encode, losses[batch.task], s.cache_chunk)
            norm = _finish_step(opt, params, s.clip, loss, f"step {step}", batch.task)
            seen += s.batch_size
            done = step + 1
            if s.log_every and (done % s.log_every == 0 or done == s.steps):
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                log(
                    f"step {done}/{s.steps} task {batch.task} loss {loss.item():.4f} lr {lr:.2e} "
                    f"grad-norm {float(norm):.3f} {rate:.1f} samples/s" + (f"; {cache.stats()}" if cache else "")
                )
            if s.checkpoint_every and done % s.checkpoint_every == 0 and done < s.steps:
                _save_checkpoint(root, done, model, trainable, opt, feed, meta, rank, s.keep_checkpoints, save_file)
                log(f"checkpoint {ckpt.step_dir(root, done)}")
    feed.close()
    return _save_final(model, out / "final", rank)


def _begin_step(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate and clear the gradients."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)


def _finish_step(
    opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], clip: float, loss: torch.Tensor, at: str, task: str
) -> torch.Tensor:
    """Sum the gradients over ranks, clip them to `clip` (0: no clipping), refuse a non-finite loss, step.
    Returns the gradient norm before clipping."""
    all_reduce_grads(params)
    norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else torch.tensor(0.0)
    if not math.isfinite(loss.item()):
        raise FloatingPointError(f"{at}: the loss is {loss.item()} (task {task}); lower the lr?")
    opt.step()
    return norm


def _save_final(model, final: Path, rank: int) -> Path:
    """Rank 0 writes the stage's model (LoRA merged in) to `final`; every rank waits for it."""
    if rank == 0:
        with merged(model):
            save_trained(model, final)
    barrier()
    return final


def _optimizer(trainable: list[tuple[str, torch.nn.Parameter]], s: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: biases and LayerNorms get none (BERT's practice)."""
    decay = [p for n, p in trainable if p.ndim >= 2]
    no_decay = [p for n, p in trainable if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=s.lr,
        betas=s.betas,
    )


def _resume(
    last: Path,
    meta: dict,
    trainable: list[tuple[str, torch.nn.Parameter]],
    opt: torch.optim.Optimizer,
    feed,
    rank: int,
) -> int:
    """Restore the trainable weights, optimizer, data position and RNG of checkpoint `last`. Returns its step."""
    from safetensors.torch import load_file

    doc = ckpt.load_json(last, "trainer.json")
    if doc["fingerprint"] != meta:
        raise ValueError(
            f"{last}: the checkpoint was made with other settings, tasks or data; "
            "resume with the same recipe (or remove the stage's folder to start over)"
        )
    state = load_file(str(last / "trainable.safetensors"))
    names = {n for n, _ in trainable}
    if set(state) != names:
        raise ValueError(f"{last}: trainable parameters differ from this stage's")
    with torch.no_grad():
        for n, p in trainable:
            p.copy_(state[n].to(p.device))
    load_optimizer(opt, last)
    data_file = last / f"data-{rank}.json"
    feed.load_state(doc["sampler"], ckpt.load_json(last, data_file.name) if data_file.is_file() else None)
    ckpt.load_rng(last, rank)
    return doc["step"]


def _encoder(model, device: torch.device) -> Callable[[list], torch.Tensor]:
    """items -> (n, D) unit vectors in fp32, under bf16 autocast on CUDA."""
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    )

    def encode(items) -> torch.Tensor:  # items -> (n, D) unit vectors
        with autocast():
            if is_gemma2(model):  # the folder's tokenizer and prompts, image / audio slots (gemma2.py)
                return embed_gemma2(model, items, device).float()
            return model(model.collate(items, None).to(device)).float()

    return encode


def _objective(batch: TrainBatch, encode, loss_fn, cache_chunk: int) -> torch.Tensor:
    """Embed, gather across ranks, Matryoshka InfoNCE; backward into the parameters. Returns the loss."""

    def global_loss(q, d, negatives=None):
        negatives = q.new_zeros((0, q.shape[1])) if negatives is None else negatives  # every rank gathers
        n = gather_rows(negatives)
        return loss_fn(
            gather_rows(q),
            gather_rows(d),
            n if len(n) else None,
            q_ids=gather_rows(batch.q_ids.to(q.device)),
            d_ids=gather_rows(batch.d_ids.to(q.device)),
            n_ids=gather_rows(batch.n_ids.to(q.device)),
        )

    roles = {"q": batch.queries, "d": batch.positives, "negatives": batch.negatives}
    if cache_chunk > 0:
        chunks = {
            r: [items[i : i + cache_chunk] for i in range(0, len(items), cache_chunk)]
            for r, items in roles.items()
            if items
        }
        return GradCache(encode, global_loss).step(chunks)
    embs = {r: encode(items) for r, items in roles.items() if items}
    loss = global_loss(**embs)
    loss.backward()
    return loss.detach()


def _save_checkpoint(root, step, model, trainable, opt, feed, meta, rank, keep, save_file) -> None:
    """Rank 0 writes the model, weights, optimizer and position; every rank its RNG; then one rename."""
    tmp = ckpt.tmp_dir(root, step)
    if rank == 0:
        ckpt.begin(root, step)
        with merged(model):
            save_trained(model, tmp / "model")
        save_file({n: p.detach().cpu().contiguous() for n, p in trainable}, str(tmp / "trainable.safetensors"))
        save_optimizer(opt, tmp)
        ckpt.save_json(tmp, "trainer.json", {"step": step, "sampler": feed.state(), "fingerprint": meta})
    barrier()
    ckpt.save_rng(tmp, rank)
    if feed.rank_state() is not None:  # shard positions: each rank's own
        ckpt.save_json(tmp, f"data-{rank}.json", feed.rank_state())
    barrier()
    if rank == 0:
        ckpt.commit(root, step, keep)
    barrier()
