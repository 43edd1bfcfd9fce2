"""gemb2: native multimodal embeddings.

One transformer maps text, images, audio, video and interleaved mixes of them
into one L2-normalised vector space (Gemini-Embedding-2 style, arXiv 2605.27295).

The package is importable without the CLI:

    from gemb2.model import load_model
    from gemb2.parts import Text, Image
    model = load_model("tiny")
    vecs = model.encode([[Text("a red car")], [Image(pixels)]])   # (2, D) float32
"""

__version__ = "0.1.0"


def read_shards(folder: str):
    """The live rows of a `gemb2 embed --out` folder: (records, (N, dim) float32 vectors); see gemb2.store.shards."""
    from gemb2.store.shards import read_shards as _read

    return _read(folder)
