"""The on-disk response cache (diskcache).

Key: blake2b of the canonical JSON of {provider, base URL, model, parameters,
messages, answer schema, label set}. Values are ``ProviderResponse.to_json()``.
Neither holds secrets: API keys never enter a request object, and providers report
their base URL with credentials redacted (see :mod:`autolabel.redact`).

Only answers the engine accepted are stored: the labeler writes an entry after the
answer parsed and validated against the ontology, never before (an invalid, empty or
truncated answer replayed from a cache would fail every re-run without asking the
model again). Entries are validated again when read; one that fails is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

from autolabel.hashing import stable_hash
from autolabel.providers.base import Provider, ProviderRequest, ProviderResponse

KEY_VERSION = 1  # bump when the key's content changes


def cache_key(provider: Provider, request: ProviderRequest) -> str:
    prompt = request.prompt
    return stable_hash(
        {
            "v": KEY_VERSION,
            **provider.identity(),
            "params": {
                "temperature": request.temperature,
                "n": request.n,
                "max_tokens": request.max_tokens,
                "seed": request.seed,
                "logprobs": request.logprobs,
            },
            "messages": request.messages(),
            "schema": prompt.schema,
            "labels": list(prompt.labels),
            "answer_prefix": prompt.answer_prefix,
        }
    )


@dataclass
class CacheStats:
    directory: str
    entries: int
    size_bytes: int


class ResponseCache:
    """A thin, typed wrapper; one per data dir, safe across processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Responses are small JSON; no eviction by default (a cache that forgets costs money).
        self._cache = diskcache.Cache(str(directory), size_limit=2**40, eviction_policy="none")

    def get(self, key: str) -> ProviderResponse | None:
        data: Any = self._cache.get(key)
        if data is None:
            return None
        try:
            return ProviderResponse.from_json(data)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            # Written by another version or damaged: useless, and would fail every read.
            self.delete(key)
            return None

    def delete(self, key: str) -> None:
        """Drop one entry (an answer that no longer validates)."""
        self._cache.delete(key)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def set(self, key: str, response: ProviderResponse) -> None:
        """Store an answer the engine has validated (callers' contract; see the module doc)."""
        self._cache.set(key, response.to_json())

    def stats(self) -> CacheStats:
        return CacheStats(str(self.directory), len(self._cache), self._cache.volume())

    def clear(self) -> int:
        return self._cache.clear()

    def close(self) -> None:
        self._cache.close()
