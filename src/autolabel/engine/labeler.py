"""Label one item: compile → cache → provider (retries) → validate (re-ask) → confidence.

Only a validated answer is written to the response cache (see ``_ask``).

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
    latency_ms: float = 0.0  # wall time in the labeler, queueing included
    model_ms: float | None = None  # the model's own time, summed over calls (None: cached)
    content_hash: str | None = None  # the item content the answer was made on
    cache_hit: bool = False
    model_calls: int = 0  # requests sent to the model, failed ones included
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
                response, result = await self._ask(request, item, out)
                if isinstance(result, Scored) and result.method == "none":
                    # One sample and no log-probs to score it: self-consistency over n.
                    self._needs_sampling = True
                    response, result = await self._ask(self._sampling_request(request), item, out)
                if isinstance(result, AnswerError):
                    text = response.samples[0].text[:2000] if response.samples else ""
                    out.raw = text or None
                    if ask == self.options.reasks:
                        out.error = f"invalid answer after {ask + 1} asks: {result.message}"
                        break
                    extra = (
                        *extra,
                        {"role": "assistant", "content": text},
                        {"role": "user", "content": _reask_message(result, prompt.schema)},
                    )
                    continue
                self._accept(out, result)
                break
        except PermanentProviderError as exc:
            out.attempts += exc.attempts or 0
            out.model_calls += exc.attempts or 0
            out.error = f"provider refused: {exc.message}"
            out.permanent_failure = True
        except ProviderError as exc:
            out.attempts += exc.attempts or 0
            out.model_calls += exc.attempts or 0
            # The attempts of the call that gave up (earlier asks of this item succeeded).
            tried = f" after {_attempts(exc.attempts)}" if exc.attempts else ""
            out.error = f"provider failed{tried}: {exc.message}"
        # What is stored must not carry a credential an endpoint echoed back.
        out.error = self.provider.redact(out.error)
        out.raw = self.provider.redact(out.raw)
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

    async def _ask(
        self, request: ProviderRequest, item: dict[str, Any], out: LabelOutcome
    ) -> tuple[ProviderResponse, Scored | AnswerError]:
        """One answer (cache, else the provider with retries), scored against the ontology.

        The cache only ever holds answers that scored: an invalid answer is returned to
        the caller (who re-asks) but not stored, and a stored one that no longer
        validates is deleted and asked for again.
        """
        if self._needs_sampling and request.n == 1 and not self.provider.scores_labels:
            request = self._sampling_request(request)
        key = cache_key(self.provider, request) if self.cache and self.options.use_cache else None
        if key is not None:
            cached = self.cache.get(key)  # type: ignore[union-attr]
            if cached is not None:
                result = _score(self.ontology, cached, item)
                if isinstance(result, Scored):
                    out.cache_hit = True
                    self._account(out, cached)
                    return cached, result
                self.cache.delete(key)  # type: ignore[union-attr]
        if self.limits.active:
            await self.limits.acquire(estimate_tokens(request.messages(), request.max_tokens))
        response, attempts = await with_retries(
            lambda: self.provider.complete(request),
            max_retries=self.options.max_retries,
            initial_wait=self.options.retry_initial_wait,
        )
        out.attempts += attempts
        out.model_calls += attempts
        out.model_ms = (out.model_ms or 0.0) + response.latency_s * 1000
        out.cache_hit = False
        self._account(out, response)
        result = _score(self.ontology, response, item)
        if key is not None and isinstance(result, Scored):
            self.cache.set(key, response)  # type: ignore[union-attr]
        return response, result

    def _sampling_request(self, request: ProviderRequest) -> ProviderRequest:
        return self._request(
            request.prompt,
            request.extra_messages,
            n=self.options.samples,
            temperature=max(self.options.temperature, SELF_CONSISTENCY_MIN_TEMPERATURE),
        )

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


def _score(
    ontology: Ontology, response: ProviderResponse, item: dict[str, Any]
) -> Scored | AnswerError:
    try:
        return score_response(ontology, response, item)
    except AnswerError as exc:
        return exc


def _attempts(n: int) -> str:
    return f"{n} attempt" + ("" if n == 1 else "s")


def _reask_message(exc: AnswerError, schema: dict[str, Any]) -> str:
    return (
        f"That answer was not valid: {exc.message}. Reply again with only a JSON object "
        f"matching this schema:\n{json.dumps(schema)}"
    )
