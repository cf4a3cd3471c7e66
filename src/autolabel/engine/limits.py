"""Optional requests/minute and tokens/minute limits (leaky buckets from aiolimiter)."""

from __future__ import annotations

from typing import Any

from aiolimiter import AsyncLimiter


class RateLimits:
    def __init__(
        self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None
    ) -> None:
        self._rpm = AsyncLimiter(requests_per_minute, 60) if requests_per_minute else None
        self._tpm = AsyncLimiter(tokens_per_minute, 60) if tokens_per_minute else None
        self._tpm_max = tokens_per_minute or 0.0

    @property
    def active(self) -> bool:
        return self._rpm is not None or self._tpm is not None

    async def acquire(self, estimated_tokens: int) -> None:
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            # A request larger than the whole budget still goes, after waiting for a full bucket.
            await self._tpm.acquire(min(float(estimated_tokens), self._tpm_max))


def estimate_tokens(messages: list[dict[str, Any]], max_tokens: int) -> int:
    """~4 characters per token; a picture as OpenAI counts one: 85 + 170 per 512-px tile
    (vLLM and Ollama models differ, by less than the text estimate errs). Good enough for
    pacing and ``plan``, not for billing."""
    total = 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            total += len(content) // 4
            continue
        for part in content:
            if part.get("type") == "text":
                total += len(str(part.get("text", ""))) // 4
            else:
                w, h = part.get("size") or (1024, 1024)
                total += 85 + 170 * (-(-int(w) // 512)) * (-(-int(h) // 512))
    return total + max_tokens
