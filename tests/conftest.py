import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust logger of lancedb (LANCE_LOG is lance's)


@pytest.fixture(scope="module")
def tiny():
    """The tiny preset (small, seeded random weights), loaded once a test module."""
    from gemb2 import load_model

    return load_model("tiny")
