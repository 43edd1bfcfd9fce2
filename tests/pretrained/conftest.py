"""Fixtures shared by the pretrained tests: one tiny EmbeddingGemma 2 folder per session (gemma2_folder.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def gemma_folder(tmp_path_factory):
    """A tiny random EmbeddingGemma 2 checkpoint in the real layout (skips without transformers' implementation)."""
    pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")
    from tests.pretrained.gemma2_folder import make_folder

    return make_folder(tmp_path_factory.mktemp("eg2") / "embeddinggemma-2-tiny")
