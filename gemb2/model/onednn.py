"""oneDNN for the backbone's Linear layers on the CPU: pre-packed weights at inference, fp32 matmuls in training.

The Linear layers are most of `encode`'s time on a CPU, and torch's CPU build sends them to MKL's sgemm;
oneDNN's JIT fp32 kernels run the same GEMMs faster at the same fp32 accuracy (the profile and the figures
are in BENCHMARKS.md, "Text: gemb2 vs sentence-transformers"): `torch.ops.mkldnn._linear_pointwise` with a weight reordered once
into oneDNN's blocked layout (the op torch.compile's CPU backend emits). The FFN's GELU is fused into its
GEMM, and query/key/value run as one GEMM over their concatenated weights.

Used only where it cannot change a result: fp32 tensors on the CPU, no autograd (inference or no_grad),
a plain `nn.Linear` (LoRA adapters and other wrappers take the ordinary path), not while tracing or
exporting, oneDNN present. Packed weights are cached on the module and rebuilt when a weight changes
(its version counter or storage). `GEMB2_FAST=0` in the environment, or `with onednn.disabled():`, turns
it off; the test suite checks that both paths give the same vectors (cosine >= 0.9999).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_state = {"enabled": os.environ.get("GEMB2_FAST", "1") != "0", "broken": False}


def _supported() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and platform.machine().lower() in ("x86_64", "amd64")
        and ops is not None
        and hasattr(ops, "_linear_pointwise")
        and hasattr(ops, "_reorder_linear_weight")
    )


_SUPPORTED = _supported()


def enabled() -> bool:
    """Whether the fast path may be taken at all (switch on, oneDNN present, no earlier failure)."""
    return _state["enabled"] and _SUPPORTED and not _state["broken"]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the ordinary PyTorch path (the reference the fast path is tested against)."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before


def eligible(x: torch.Tensor, mods: Sequence[nn.Module]) -> bool:
    """Whether `linear` would take the fast path for input `x` through `mods`."""
    if not enabled() or torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if _tracing() or torch.onnx.is_in_onnx_export():
        return False
    if torch.compiler.is_compiling():
        return False
    return all(type(m) is nn.Linear and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu" for m in mods)


def _tracing() -> bool:
    """Whether TorchScript is tracing or scripting (torch.jit's helpers, which its stubs do not export)."""
    jit: Any = torch.jit
    return bool(jit.is_tracing() or jit.is_scripting())


def _key(mods: Sequence[nn.Linear]) -> tuple:
    """What the packed copy depends on: each weight's and bias's version counter and storage."""
    return tuple((p._version, p.data_ptr()) for m in mods for p in (m.weight, m.bias) if p is not None)


def _packed(owner: nn.Module, mods: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The oneDNN-packed weight (and fp32 bias) of `mods` stacked along the output dim, cached on `owner`."""
    key = _key(mods)
    cached = owner.__dict__.get("_gemb2_packed")
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    with torch.no_grad():
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.cat([m.weight for m in mods]).contiguous(), None)
        b = (
            None
            if all(m.bias is None for m in mods)
            else torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in mods])
        )
    owner.__dict__["_gemb2_packed"] = (key, packed, b)  # not a buffer: never saved, never moved
    return packed, b


def linear(owner: nn.Module, mods: Sequence[nn.Linear], x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
    """(..., in) -> (..., sum of out): `mods` applied to `x` and concatenated, then exact GELU if `gelu`.

    The same function as `torch.cat([m(x) for m in mods], -1)` (and F.gelu of it); through oneDNN with a
    packed weight cached on `owner` when eligible (see the module docstring).
    """
    if eligible(x, mods):
        try:
            w, b = _packed(owner, mods)
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
        except RuntimeError:  # an unusual build or shape oneDNN refuses: take the ordinary path from now on
            _state["broken"] = True
    y = mods[0](x) if len(mods) == 1 else torch.cat([m(x) for m in mods], dim=-1)
    return F.gelu(y) if gelu else y


def _matmul_knob() -> Any:
    """torch.backends.mkldnn.matmul, whose `fp32_precision` says whether oneDNN may use bf16 for fp32 matmuls
    (None where this torch has no such knob; untyped in torch's stubs)."""
    return getattr(torch.backends.mkldnn, "matmul", None)


@contextlib.contextmanager
def _bf16_permitted() -> Iterator[None]:
    """Within the block, fp32 matmuls go through oneDNN (its "bf16" setting, which PERMITS implicit bf16)."""
    knob = _matmul_knob()
    before = knob.fp32_precision
    knob.fp32_precision = "bf16"
    try:
        yield
    finally:
        knob.fp32_precision = before


@functools.cache
def _onednn_matmul_is_exact() -> bool:
    """Whether fp32 matmuls through oneDNN (`_bf16_permitted`) stay fp32-accurate on this CPU. On CPUs whose
    oneDNN kernels do down-convert (e.g. with AMX) the relative error is ~1e-3 and the answer is no. Measured
    once per process, forward and backward."""
    if not _SUPPORTED or getattr(_matmul_knob(), "fp32_precision", None) is None:
        return False
    g = torch.Generator().manual_seed(0)
    a = torch.randn(128, 384, generator=g, requires_grad=True)
    b = torch.randn(384, 256, generator=g)
    ref = a.detach().double() @ b.double()
    try:
        with _bf16_permitted():
            y = a @ b
            y.sum().backward()
    except RuntimeError:
        return False
    assert a.grad is not None  # the backward above filled it
    err = ((y.detach().double() - ref).norm() / ref.norm()).item()
    gref = torch.ones(128, 256, dtype=torch.float64) @ b.double().T
    gerr = ((a.grad.double() - gref).norm() / gref.norm()).item()
    return err < 1e-5 and gerr < 1e-5


@contextlib.contextmanager
def onednn_matmul() -> Iterator[bool]:
    """Within the block, fp32 CPU matmuls (Linear layers forward AND backward) run through oneDNN when that
    is fp32-exact here (`_onednn_matmul_is_exact`); yields whether it is on. For training, where the packed
    path of `linear` does not apply (the speed-up and the gradient error are in BENCHMARKS.md, "Training").
    Off with GEMB2_FAST=0."""
    if not (enabled() and _onednn_matmul_is_exact()):
        yield False
        return
    with _bf16_permitted():
        yield True
