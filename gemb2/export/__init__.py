"""Exports for other systems: the model as ONNX graphs (onnx.py writes them: graphs.py, manifest.py, onnx_check.py;
EmbeddingGemma 2's: gemma2.py), a table's embeddings as files (embeddings.py)."""

from gemb2.errors import UsageError


class ExportError(UsageError):
    """An export cannot be made as asked (a bad --dim or format, OUT exists, onnx not installed, an empty table)."""
