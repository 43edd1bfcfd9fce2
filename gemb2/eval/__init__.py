"""Retrieval evaluation: metrics (metrics.py) and evaluating a model on a manifest (retrieval.py)."""
