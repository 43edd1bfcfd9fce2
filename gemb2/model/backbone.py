"""The shared backbone: a bidirectional BERT encoder over input embeddings.

References: Devlin et al. 2019 (BERT); Hugging Face `transformers` `modeling_bert.py`. Post-LN
blocks, learned absolute positions, exact GELU. Parameter NAMES match `BertModel` (without its
pooler) so a real checkpoint such as sentence-transformers/all-MiniLM-L6-v2 loads by name:

    embeddings.{word_embeddings,position_embeddings,token_type_embeddings,LayerNorm}
    encoder.layer.{i}.attention.self.{query,key,value}
    encoder.layer.{i}.attention.output.{dense,LayerNorm}
    encoder.layer.{i}.intermediate.dense
    encoder.layer.{i}.output.{dense,LayerNorm}

Unlike `BertModel` it takes input EMBEDDINGS, because the model assembles one sequence from
word-embedded text tokens and the modality stems' tokens; `embeddings.word_embeddings` lives
here anyway (the model calls it) so that the names above hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import onednn
from .config import ModelConfig


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type_embeddings = nn.Embedding(2, cfg.hidden)  # BERT's segment table; row 0 for every token
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, T, H)
        T = x.shape[1]
        x = x + self.position_embeddings.weight[:T] + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.p = cfg.dropout
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, H = x.shape
        qkv = (self.query, self.key, self.value)
        if onednn.eligible(x, qkv):  # one oneDNN GEMM for all three (gemb2/model/onednn.py)
            q, k, v = onednn.linear(self, qkv, x).view(B, T, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        else:
            q, k, v = (
                f(x).view(B, T, self.heads, H // self.heads).transpose(1, 2)  # (B, nh, T, hs)
                for f in qkv
            )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.p if self.training else 0.0
        )  # (B, nh, T, hs)
        return y.transpose(1, 2).reshape(B, T, H)


class DenseNorm(nn.Module):
    """Dense -> dropout -> residual add -> LayerNorm (BERT's `SelfOutput` and `Output`)."""

    def __init__(self, d_in: int, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(onednn.linear(self, (self.dense,), h)) + residual)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = DenseNorm(cfg.hidden, cfg)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, attn_mask), x)


class Intermediate(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn.linear(self, (self.dense,), x, gelu=True)  # exact erf GELU, as BERT's "gelu"


class Layer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = DenseNorm(cfg.intermediate, cfg)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, attn_mask)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg.layers))


class Backbone(nn.Module):
    """(B, T, H) input embeddings + (B, T) bool mask (True = a real token) -> (B, T, H) hidden states.

    `gradient_checkpointing = True` recomputes each layer's activations in the backward pass instead
    of keeping them (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): less memory
    for larger contrastive batches, about one more forward pass of time. Only in train mode with
    gradients enabled; inference is unaffected. Not part of the config (it changes no result).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.gradient_checkpointing = False
        self.apply(_init_bert)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if self.embeddings.position_embeddings.num_embeddings < T:
            raise ValueError(
                f"sequence of {T} tokens exceeds max_positions {self.embeddings.position_embeddings.num_embeddings}"
            )
        # (B, 1, 1, T): every query sees the real keys only. No mask when nothing is padding (batches
        # sorted by length often are): SDPA then takes its fused kernels.
        attn_mask = None if bool(mask.all()) else mask[:, None, None, :]
        x = self.embeddings(x)
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.encoder.layer:
            x = checkpoint(layer, x, attn_mask, use_reentrant=False) if recompute else layer(x, attn_mask)
        return x


def _init_bert(m: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
    if isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
