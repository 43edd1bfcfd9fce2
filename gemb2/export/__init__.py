"""Exports for other systems: the model as ONNX graphs (onnx.py), a table's embeddings as files (embeddings.py)."""
