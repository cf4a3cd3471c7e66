"""Label one item: compile → cache → provider (retries) → validate (re-ask) → confidence.

Never raises for a per-item problem: the outcome is a :class:`LabelOutcome` that is
either labeled or failed with its reason. Only run-level problems propagate.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autolabel.engine.cache import ResponseCache, cache_key
from autolabel.engine.confidence import Scored, score_response
from autolabel.engine.limits import RateLimits, estimate_tokens
from autolabel.engine.retry import with_retries
from autolabel.errors import AnswerError, PermanentProviderError, ProviderError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import Provider, ProviderRequest, ProviderResponse

SELF_CONSISTENCY_MIN_TEMPERATURE = 0.7


@dataclass
class LabelOutcome:
    item_id: int
    label: Any = None
    confidence: float | None = None
    distribution: Any = None
    method: str | None = None
    samples: list[Any] | None = None
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    cache_hit: bool = False
    model_calls: int = 0
    attempts: int = 0
    error: str | None = None
    raw: str | None = None
    # The prompt hash of this item's prompt (differs from the run's when demonstrations
    # were chosen for it) and the refs of those demonstrations.
    prompt_hash: str | None = None
    demonstrations: tuple[str, ...] = ()
    permanent_failure: bool = field(default=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class LabelerOptions:
    temperature: float = 0.0
    samples: int = 5
    reasks: int = 2
    max_retries: int = 6
    max_tokens: int = 512
    seed: int | None = 0
    use_cache: bool = True
    retry_initial_wait: float = 0.5


class Labeler:
    def __init__(
        self,
        ontology: Ontology,
        compiler: PromptCompiler,
        provider: Provider,
        cache: ResponseCache | None,
        limits: RateLimits | None = None,
        options: LabelerOptions | None = None,
    ) -> None:
        self.ontology = ontology
        self.compiler = compiler
        self.provider = provider
        self.cache = cache
        self.limits = limits or RateLimits()
        self.options = options or LabelerOptions()
        # Learned on the first answer without log-probs: then sample from the start.
        self._needs_sampling = False

    async def label(
        self, item_id: int, item: dict[str, Any], demos: Sequence[Any] = ()
    ) -> LabelOutcome:
        out = LabelOutcome(item_id=item_id)
        started = time.perf_counter()
        prompt = self.compiler.compile(item, demos)
        out.prompt_hash = prompt.prompt_hash
        out.demonstrations = prompt.demonstrations
        extra: tuple[dict[str, str], ...] = ()
        try:
            for ask in range(self.options.reasks + 1):
                request = self._request(prompt, extra)
                response = await self._call(request, out)
                try:
                    scored = score_response(self.ontology, response, item)
                    if scored.method == "none":
                        scored = await self._sample(prompt, extra, response, item, out)
                except AnswerError as exc:
                    out.raw = response.samples[0].text[:2000] if response.samples else None
                    if ask == self.options.reasks:
                        out.error = f"invalid answer after {ask + 1} asks: {exc.message}"
                        break
                    extra = (
                        *extra,
                        {"role": "assistant", "content": response.samples[0].text[:2000]},
                        {"role": "user", "content": _reask_message(exc, prompt.schema)},
                    )
                    continue
                self._accept(out, scored)
                break
        except PermanentProviderError as exc:
            out.error = f"provider refused: {exc.message}"
            out.permanent_failure = True
        except ProviderError as exc:
            out.error = f"provider failed after {out.attempts} attempts: {exc.message}"
        out.latency_ms = (time.perf_counter() - started) * 1000
        return out

    def _request(
        self, prompt: Any, extra: tuple[dict[str, str], ...], *, n: int = 1, temperature=None
    ) -> ProviderRequest:
        return ProviderRequest(
            prompt=prompt,
            temperature=self.options.temperature if temperature is None else temperature,
            n=n,
            max_tokens=self.options.max_tokens,
            seed=self.options.seed,
            logprobs=True,
            extra_messages=extra,
        )

    async def _call(self, request: ProviderRequest, out: LabelOutcome) -> ProviderResponse:
        if self._needs_sampling and request.n == 1 and not self.provider.scores_labels:
            request = self._sampling_request(request)
        key = cache_key(self.provider, request) if self.cache and self.options.use_cache else None
        if key is not None:
            cached = self.cache.get(key)  # type: ignore[union-attr]
            if cached is not None:
                out.cache_hit = True
                self._account(out, cached)
                return cached
        if self.limits.active:
            await self.limits.acquire(estimate_tokens(request.messages(), request.max_tokens))
        response, attempts = await with_retries(
            lambda: self.provider.complete(request),
            max_retries=self.options.max_retries,
            initial_wait=self.options.retry_initial_wait,
        )
        out.attempts += attempts
        out.model_calls += 1
        out.cache_hit = False
        self._account(out, response)
        if key is not None:
            self.cache.set(key, response)  # type: ignore[union-attr]
        return response

    def _sampling_request(self, request: ProviderRequest) -> ProviderRequest:
        return self._request(
            request.prompt,
            request.extra_messages,
            n=self.options.samples,
            temperature=max(self.options.temperature, SELF_CONSISTENCY_MIN_TEMPERATURE),
        )

    async def _sample(
        self,
        prompt: Any,
        extra: tuple[dict[str, str], ...],
        first: ProviderResponse,
        item: dict[str, Any],
        out: LabelOutcome,
    ) -> Scored:
        """No log-probs came back: self-consistency over n samples."""
        self._needs_sampling = True
        response = await self._call(self._sampling_request(self._request(prompt, extra)), out)
        return score_response(self.ontology, response, item)

    @staticmethod
    def _account(out: LabelOutcome, response: ProviderResponse) -> None:
        out.model = response.model
        out.tokens_in += response.tokens_in
        out.tokens_out += response.tokens_out

    @staticmethod
    def _accept(out: LabelOutcome, scored: Scored) -> None:
        out.label = scored.label
        conf = scored.confidence
        out.confidence = None if conf is None or math.isnan(conf) else round(conf, 6)
        out.distribution = scored.distribution
        out.method = scored.method
        out.samples = scored.samples
        out.error = None


def _reask_message(exc: AnswerError, schema: dict[str, Any]) -> str:
    return (
        f"That answer was not valid: {exc.message}. Reply again with only a JSON object "
        f"matching this schema:\n{json.dumps(schema)}"
    )
