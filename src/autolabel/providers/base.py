"""The provider interface. The engine talks only to this; it never knows keys or URLs.

A provider turns one :class:`ProviderRequest` (a compiled prompt plus sampling
parameters) into a :class:`ProviderResponse`: the raw answer text of each sample,
token log-probabilities where the backend has them, and, for providers that can
score label choices directly (the embedded model), a score per label.
Transport failures are raised as :class:`~autolabel.errors.TransientProviderError`
(retried by the engine, honouring ``retry_after``) or
:class:`~autolabel.errors.PermanentProviderError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from autolabel.ontology.compiler import CompiledPrompt

StructuredMode = Literal["json_schema", "json_object", "grammar", "choices", "text"]


@dataclass(frozen=True)
class ProviderRequest:
    prompt: CompiledPrompt
    temperature: float = 0.0
    n: int = 1  # samples; >1 only for self-consistency
    max_tokens: int = 512
    seed: int | None = None
    logprobs: bool = True
    # A re-ask after an invalid answer appends the previous answer and the problem.
    extra_messages: tuple[dict[str, str], ...] = ()

    def messages(self) -> list[dict[str, str]]:
        return [*self.prompt.messages, *self.extra_messages]


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)  # alternatives at this position


@dataclass(frozen=True)
class Sample:
    text: str
    logprobs: list[TokenLogprob] | None = None  # None: the backend gave none
    # Cut off at max_tokens: not a complete answer, never accepted nor cached.
    truncated: bool = False
    # The model declined to answer (OpenAI's ``message.refusal``): why, in its words.
    refusal: str | None = None


@dataclass(frozen=True)
class ProviderResponse:
    samples: list[Sample]
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    structured: StructuredMode = "text"
    # classify: unnormalised log-probability of each label's answer (choice scoring);
    # multi_label: probability in [0, 1] that each label applies. None when not scored.
    label_scores: dict[str, float] | None = None
    # Probabilities per label that need no normalising (the embedded image classifier):
    # for classify they may sum to less than 1, the rest meaning "none of these labels",
    # so an image of something the labels do not name gets a low confidence.
    label_probs: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": [
                {
                    "text": s.text,
                    "logprobs": None
                    if s.logprobs is None
                    else [[t.token, t.logprob, t.top] for t in s.logprobs],
                    **({"truncated": True} if s.truncated else {}),
                    **({"refusal": s.refusal} if s.refusal else {}),
                }
                for s in self.samples
            ],
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_s": self.latency_s,
            "structured": self.structured,
            "label_scores": self.label_scores,
            **({"label_probs": self.label_probs} if self.label_probs is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderResponse:
        samples = [
            Sample(
                text=s["text"],
                logprobs=None
                if s["logprobs"] is None
                else [TokenLogprob(t[0], t[1], t[2]) for t in s["logprobs"]],
                truncated=bool(s.get("truncated", False)),
                refusal=s.get("refusal"),
            )
            for s in data["samples"]
        ]
        return cls(
            samples=samples,
            model=data["model"],
            tokens_in=data["tokens_in"],
            tokens_out=data["tokens_out"],
            latency_s=data["latency_s"],
            structured=data["structured"],
            label_scores=data.get("label_scores"),
            label_probs=data.get("label_probs"),
        )


class Provider(ABC):
    """One backend: an OpenAI-compatible endpoint or the embedded llama.cpp model."""

    name: str = "provider"
    model: str = ""
    base_url: str | None = None

    def identity(self) -> dict[str, Any]:
        """What distinguishes this provider's answers (part of every cache key). No secrets."""
        return {"provider": self.name, "base_url": self.base_url, "model": self.model}

    def redact(self, text: str | None) -> str | None:
        """``text`` with any credential this provider holds masked (errors may echo them)."""
        return text

    @property
    def scores_labels(self) -> bool:
        """True when the provider fills ``label_scores`` (no sampling needed for confidence)."""
        return False

    @abstractmethod
    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        """Answer one request. Raise Transient/PermanentProviderError on transport failure."""

    def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt tokens by the model's own tokenizer, where available (used by ``plan``)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients, models and threads."""
