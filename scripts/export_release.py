"""Export a trained gemb2 model as the weights it ADDS to its pretrained parts (what a release ships).

    python scripts/export_release.py runs/gemb2-mini/soup/final --parts runs/gemb2-mini/init \
        --name gemb2-mini --out gemb2/pretrained/assets/gemb2-mini

`--parts` is the folder `gemb2 init` wrote (its config names the parts; training started from it).
The trained model is compared with the model the parts assemble (`gemb2.pretrained.assemble`, same
seed): unchanged tensors are not stored (they come from the installed weight packages); a changed
2-D weight of a pretrained part (the merged LoRA update of the backbone) is stored as its exact
low-rank factors when its update has rank <= --max-rank (SVD; checked to 1e-5 of the largest
entry); every other changed tensor (new projectors, positions, modality and time embeddings) is
stored whole. Writes parts.json, config.json, adds.safetensors and model_id.json (the format of
gemb2.pretrained.release), then rebuilds the model from them and checks its vectors against the trained
model's on a few texts (max abs difference printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch


def parts_of(config) -> dict:
    """The assemble.Parts fields that rebuild `config` (a `gemb2 init` config: efficientnet/whisper stems)."""
    from gemb2.pretrained.assemble import GEMINI_PROMPTS, Parts

    if config.image_stem != "efficientnet" or config.audio_stem != "whisper":
        raise ValueError(f"expected EfficientNet and Whisper stems, got {config.image_stem} and {config.audio_stem}")
    parts = Parts(text="minilm", image=f"efficientnet-{config.image_encoder}", audio=f"whisper-{config.audio_encoder}",
                  dim=config.out_dim, matryoshka=tuple(config.matryoshka_dims),
                  prompts=config.query_prompt == GEMINI_PROMPTS["query_prompt"],
                  audio_tokens=3000 // config.audio_frames_per_token, seed=config.seed)
    d = dataclasses.asdict(parts)
    d["matryoshka"] = list(d["matryoshka"])
    return d


def low_rank(delta: torch.Tensor, weight: torch.Tensor, max_rank: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(B (out, r), A (r, in)) with B @ A == delta, or None. "==": to 1e-5 of delta's largest entry, or to
    4 float32 roundings of the weight's largest entry (a merged LoRA update carries float32 rounding noise)."""
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    tol = max(1e-5 * float(delta.abs().max()), 4 * torch.finfo(torch.float32).eps * float(weight.abs().max()))
    for r in range(1, max_rank + 1):
        b, a = u[:, :r] * s[:r], vh[:r]
        if (b @ a - delta.double()).abs().max() <= tol:
            return b.float().contiguous(), a.float().contiguous()
    return None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trained")
    ap.add_argument("--parts", required=True, help="the `gemb2 init` folder training started from")
    ap.add_argument("--name", default="gemb2-mini")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-rank", type=int, default=16)
    args = ap.parse_args(argv)

    from safetensors.torch import save_file

    from gemb2 import load_model
    from gemb2.pretrained.assemble import Parts, assemble
    from gemb2.pretrained.release import apply_adds

    trained, start = load_model(args.trained), load_model(args.parts)
    parts = parts_of(start.config)
    base = assemble(Parts(**{**parts, "matryoshka": tuple(parts["matryoshka"])}))
    if base.config != start.config.replace(name=base.config.name):
        raise SystemExit(f"{args.parts}: its config is not what the parts assemble; export from a `gemb2 init` folder")
    ref, new = base.state_dict(), trained.state_dict()
    adds, summary = {}, {"set": 0, "lowrank": 0, "unchanged": 0}
    for name, t in new.items():
        t0 = ref[name]
        if torch.equal(t, t0):
            summary["unchanged"] += 1
            continue
        factors = low_rank(t - t0, t, args.max_rank) if t.ndim == 2 and not name.startswith(
            ("image_stem.proj", "audio_stem.proj", "modality_embeddings", "time_embeddings", "projection")) else None
        if factors is not None:
            adds[f"lowrank_b.{name}"], adds[f"lowrank_a.{name}"] = factors
            summary["lowrank"] += 1
        else:
            adds[f"set.{name}"] = t.contiguous()
            summary["set"] += 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = trained.config.replace(name=args.name)
    (out / "parts.json").write_text(json.dumps(parts, indent=1) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n", encoding="utf-8")
    save_file(adds, str(out / "adds.safetensors"), metadata={"format": "gemb2-release", "name": args.name})

    apply_adds(base, adds)
    texts = ["a red car", "grinning face", "the quick brown fox", "def f(x): return x"]
    diff = float(abs(base.encode(texts) - trained.encode(texts)).max())
    size = os.path.getsize(out / "adds.safetensors")
    print(f"{out}: {len(adds)} tensors ({summary['set']} set, {summary['lowrank']} low-rank, {summary['unchanged']} "
          f"unchanged from the parts), {size / 1e6:.2f} MB; rebuilt vs trained max |diff| {diff:.2e}",
          file=sys.stderr)
    if diff > 1e-4:
        raise SystemExit(f"the rebuilt model differs from the trained one by {diff:.2e}")
    from gemb2.pretrained.release import write_model_id

    print(f"{out / 'model_id.json'}: {write_model_id(out)}", file=sys.stderr)  # the id, resolved without a load


if __name__ == "__main__":
    main()
