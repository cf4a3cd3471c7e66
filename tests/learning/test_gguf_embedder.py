"""The GGUF embedder loads like the engine does: on CPUs where llama.cpp's defaults
crash (AMX), a plain ``Llama(embedding=True)`` dies with SIGSEGV on its first batched
decode; the embedder takes the guard's settings and works."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolabel.learning.embeddings import GGUFEmbedder

pytestmark = pytest.mark.model


def test_gguf_embeddings_put_paraphrases_closer(gemma_path: Path) -> None:
    vectors = GGUFEmbedder(str(gemma_path)).embed(
        [
            "my new card has not arrived yet, where is it?",
            "when will the card I ordered be delivered",
            "the film was a delight from start to finish",
        ]
    )
    assert vectors.shape[0] == 3 and vectors.shape[1] > 100
    assert abs(float(vectors[0] @ vectors[0]) - 1.0) < 1e-4  # unit length
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
