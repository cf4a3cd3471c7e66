"""Providers: one interface over OpenAI-compatible endpoints and the embedded llama.cpp model."""

from autolabel.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    Sample,
    TokenLogprob,
)

__all__ = ["Provider", "ProviderRequest", "ProviderResponse", "Sample", "TokenLogprob"]
