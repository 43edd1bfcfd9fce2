"""Files from disk to model-ready parts: discovery, modality detection, streaming loaders, worker pool."""
