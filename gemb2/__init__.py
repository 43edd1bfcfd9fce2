"""gemb2: native multimodal embeddings.

One transformer maps text, images, audio, video and interleaved mixes of them
into one L2-normalised vector space (Gemini-Embedding-2 style, arXiv 2605.27295).

The package is importable without the CLI:

    from gemb2 import load_model
    from gemb2.parts import Text, Image
    model = load_model("tiny")
    vecs = model.encode([[Text("a red car")], [Image(pixels)]])   # (2, D) float32
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gemb2.model import Gemb2Model
    from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2

__version__ = "0.1.0"


def load_model(source: str, device: str | None = None) -> Gemb2Model | EmbeddingGemma2:
    """A preset name (tiny, gemb2-mini, all-MiniLM-L6-v2), a model folder or hf:ORG/NAME -> the model, in eval
    mode, on `device` (default CPU); see gemb2.pretrained.sources."""
    from gemb2.pretrained.sources import load_model as _load

    return _load(source, device=device)


def read_shards(folder: str):
    """The live rows of a `gemb2 embed --out` folder: (records, (N, dim) float32 vectors); see gemb2.store.shards."""
    from gemb2.store.shards import read_shards as _read

    return _read(folder)
