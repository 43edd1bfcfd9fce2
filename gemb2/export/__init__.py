"""Exports for other systems: the model as ONNX graphs (onnx.py writes them: graphs.py, manifest.py, onnx_check.py),
a table's embeddings as files (embeddings.py)."""
