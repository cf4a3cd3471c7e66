"""Session-scoped embedded-model fixtures (imported into ``tests/conftest.py``).

Loading a GGUF costs seconds, so each model is assembled (into the user cache, once
per machine) and loaded once per test session; ``LocalProvider`` shares the loaded
model through its module-level cache anyway. Tests that use them are marked
``model`` (Gemma 270M, plumbing) or ``quality`` (the default Qwen 1.5B).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _require_local() -> None:
    pytest.importorskip("llama_cpp", reason="embedded model tests need autolabel[local]")


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """The assembled, verified Gemma 3 270M GGUF."""
    _require_local()
    from autolabel.errors import ModelNotAvailableError
    from autolabel.providers.models import SMALL_MODEL, resolve_model

    try:
        return resolve_model(SMALL_MODEL)
    except ModelNotAvailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    """The assembled, verified default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M)."""
    _require_local()
    from autolabel.errors import ModelNotAvailableError
    from autolabel.providers.models import DEFAULT_MODEL, resolve_model

    try:
        return resolve_model(DEFAULT_MODEL)
    except ModelNotAvailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def gemma_provider(gemma_path: Path):  # type: ignore[no-untyped-def]
    """A LocalProvider on Gemma 270M (small context: the plumbing prompts are short)."""
    from autolabel.providers.local import LocalProvider

    return LocalProvider(gemma_path, model_name="gemma3-270m", n_ctx=2048)


@pytest.fixture(scope="session")
def qwen_provider(qwen_path: Path):  # type: ignore[no-untyped-def]
    from autolabel.providers.local import LocalProvider

    return LocalProvider(qwen_path, model_name="qwen2.5-coder-1.5b", n_ctx=2048)
