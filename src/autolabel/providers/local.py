"""The embedded offline provider: a GGUF model run in-process by llama.cpp.

How each task is answered:

- **classify** — choice scoring. The chat template is applied to the messages with
  the assistant turn opened, the answer prefix ``{"label": "`` appended, and every
  label is scored by the summed log-probability of its tokens plus the closing
  ``"}``. The shared prefix is decoded once; the labels' tokens after it are decoded
  together in one batched decode (a token trie, a sequence per label). With more than
  ``bound_above`` labels, only labels that can still win are decoded (a label's score
  is at most its first token's log-prob, known from the prefix); the others keep that
  upper bound. ``label_scores`` holds those log-probs; the sample is the argmax.
- **multi_label** — one yes/no question per label on top of the item's prompt
  (``{"applies": true|false}``), all labels' questions in one batched decode, each in
  its own sequence, scored like a two-way choice: P(label applies) is
  the normalised probability of ``true``. Why not read probabilities off a generated
  ``{"labels": [...]}`` list: a token's probability there is conditioned on the labels
  already listed and on their order, so it is not the marginal P(applies). The
  per-label questions share the whole item prompt in the KV cache, so each costs
  ~30 decoded tokens. The sample lists the labels with P ≥ 0.5. With
  ``multi_label: {method: listed}`` in the ontology, each label is instead scored once
  as the answer list's lead, one short decode per item, a share per label that the
  ontology's fitted rule turns into labels (see ``_multi_label_listed``).
- **spans / fields** — JSON generation constrained by a grammar compiled from the
  answer schema, with the log-prob (and top alternatives) of every generated token
  under the constrained distribution; ``n`` samples at ``temperature`` with ``seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autolabel.errors import ModelNotAvailableError, PermanentProviderError
from autolabel.ontology.answers import LISTED_PREFIX
from autolabel.ontology.schema import TaskType
from autolabel.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    Sample,
    TokenLogprob,
)
from autolabel.providers.llama_guard import choose_settings
from autolabel.providers.llama_runtime import LlamaRuntime
from autolabel.providers.models import INSTALL_HINT
from autolabel.providers.span_decoding import generate_spans

_RUNTIMES: dict[tuple[str, int], LlamaRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()

_APPLIES_QUESTION = (
    'Does the label "{label}" apply to the item above? '
    'Answer with JSON only: {{"applies": true}} or {{"applies": false}}'
)
_APPLIES_PREFIX = '{"applies": '


def get_runtime(model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None):
    """The process-wide runtime for (path, n_ctx): a model is loaded once per process."""
    key = (str(Path(model_path).resolve()), n_ctx)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            try:
                import llama_cpp  # noqa: F401
            except ImportError:
                raise ModelNotAvailableError(
                    "the embedded model needs llama-cpp-python", hint=INSTALL_HINT
                ) from None
            # A native crash cannot be caught in-process: settings that a child
            # process proved safe on this machine (cached after the first time).
            verdict = choose_settings(key[0])
            try:
                runtime = LlamaRuntime(
                    key[0],
                    n_ctx=n_ctx,
                    n_threads=n_threads or os.cpu_count() or 1,
                    settings=verdict.settings,
                )
            except ValueError as exc:  # llama-cpp-python's "failed to load model"
                raise ModelNotAvailableError(
                    f"cannot load {model_path}: {exc}", hint="is it a valid GGUF file?"
                ) from exc
            _RUNTIMES[key] = runtime
        return runtime


@dataclass(frozen=True)
class LocalOptions:
    """How the embedded model is asked; the defaults are the measured best."""

    # Score all label continuations in one batched decode (False: one after another,
    # the reference the batched scores are tested against).
    batched: bool = True
    # Up to this many labels, one decode per label is as fast (SST-2 on Qwen, 2 cores:
    # 0.89 s/item one by one vs 0.94 batched) and keeps the sequential path's exact
    # numbers; the batched decode pays off from a handful of labels up.
    batch_above: int = 4
    # Classify with more labels than this: exact scores only for the labels that can
    # still win (see LlamaRuntime.score_bounded); the others carry an upper bound.
    bound_above: int = 8
    # Bounded classify by best-first search over the labels' token trie (False: the
    # earlier label-level bounding, kept for benchmarks and as the >128-label path).
    search: bool = True
    # Spans: copy-only constrained decoding (span_decoding.py); False: the GBNF grammar.
    copy_spans: bool = True


class LocalProvider(Provider):
    """llama.cpp in-process. All model work runs on one worker thread per loaded model."""

    name = "local"

    def __init__(
        self,
        model_path: str | Path,
        *,
        model_name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.model = model_name or self.model_path.name
        self.base_url = None
        self.runtime = get_runtime(model_path, n_ctx=n_ctx, n_threads=n_threads)
        self._grammars: dict[str, Any] = {}
        self.options = LocalOptions()

    def identity(self) -> dict[str, Any]:
        """The options change answers (or their last digits): part of every cache key."""
        return {**super().identity(), "options": dataclasses.asdict(self.options)}

    @contextlib.contextmanager
    def using(self, **changes: Any) -> Iterator[LocalOptions]:
        """Run with some options changed (benchmarks, tests); restored on exit."""
        saved = self.options
        self.options = dataclasses.replace(saved, **changes)
        try:
            yield self.options
        finally:
            self.options = saved

    @property
    def llama(self) -> Any:
        """The shared ``llama_cpp.Llama`` (one per model path and n_ctx per process)."""
        return self.runtime.llama

    @property
    def scores_labels(self) -> bool:
        return True

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.runtime.executor, self._complete_sync, request)

    def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        rt = self.runtime
        return rt.executor.submit(lambda: len(rt.tokenize(rt.chat_text(messages)))).result()

    async def aclose(self) -> None:
        """Nothing to release per provider: the loaded model is shared by the process."""

    # --- on the worker thread ------------------------------------------------------------

    def _complete_sync(self, request: ProviderRequest) -> ProviderResponse:
        started = time.perf_counter()
        task = request.prompt.task
        try:
            if task == TaskType.CLASSIFY:
                response = self._classify(request)
            elif task == TaskType.MULTI_LABEL:
                response = self._multi_label(request)
            else:
                response = self._generate(request)
        except (ValueError, RuntimeError) as exc:
            # Over-long prompts and decode failures will not get better on retry.
            raise PermanentProviderError(f"embedded model failed: {exc}") from exc
        return ProviderResponse(
            samples=response.samples,
            model=self.model,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            latency_s=time.perf_counter() - started,
            structured=response.structured,
            label_scores=response.label_scores,
        )

    def _choice_scores(
        self, text: str, choices: list[str], closing: str
    ) -> tuple[list[float], int, int]:
        """Log-prob of ``choice + closing`` after ``text``, for each choice.

        The boundary is tokenized jointly: a choice's first token may merge with the
        end of ``text`` (e.g. the opening quote). We therefore score from the longest
        token prefix shared by ``text`` and every ``text+choice`` — the same context
        for all choices, so their scores stay comparable.
        """
        prefix, conts, n_prompt = self.choice_tokens(text, choices, closing)
        batched = self.options.batched and len(conts) > self.options.batch_above
        scored = self.runtime.score_continuations(prefix, conts, batched=batched)
        return [s for s, _ in scored], n_prompt, sum(len(c) for c in conts)

    def choice_tokens(
        self, text: str, choices: list[str], closing: str
    ) -> tuple[list[int], list[list[int]], int]:
        """The shared token prefix, each choice's continuation after it, len(text) in tokens."""
        prefix, fulls = self.runtime.tokenize_tails(text, [c + closing for c in choices])
        common = len(prefix)
        for full in fulls:
            n = 0
            for a, b in zip(prefix, full, strict=False):
                if a != b:
                    break
                n += 1
            common = min(common, n)
        if common == 0:
            raise ValueError("the prompt and its answer choices share no tokens")
        return prefix[:common], [full[common:] for full in fulls], len(prefix)

    def _classify(self, request: ProviderRequest) -> ProviderResponse:
        prompt = request.prompt
        labels = list(prompt.labels)
        text = self.runtime.chat_text(request.messages()) + prompt.answer_prefix
        # The answer is JSON: a label is written escaped, then the string and object close.
        choices = [json.dumps(label, ensure_ascii=False)[1:-1] for label in labels]
        if self.options.batched and len(labels) > self.options.bound_above:
            prefix, conts, n_in = self.choice_tokens(text, choices, '"}')
            if self.options.search:
                scores, _ = self.runtime.score_bounded(prefix, conts)
            else:
                scores, _ = self.runtime.score_bounded_labels(prefix, conts)
            n_out = sum(len(c) for c in conts)
        else:
            scores, n_in, n_out = self._choice_scores(text, choices, '"}')
        best = labels[int(np.argmax(scores))]
        return ProviderResponse(
            samples=[Sample(text=json.dumps({"label": best}, ensure_ascii=False))],
            model=self.model,
            tokens_in=n_in,
            tokens_out=n_out,
            structured="choices",
            label_scores=dict(zip(labels, scores, strict=True)),
        )

    def _multi_label(self, request: ProviderRequest) -> ProviderResponse:
        # A listed prompt always gets shares (the engine reads them through the
        # ontology's rule); ``batched`` only chooses how the questions are decoded.
        if request.prompt.answer_prefix == LISTED_PREFIX:
            return self._multi_label_listed(request)
        return self._multi_label_questions(request)

    def _multi_label_listed(self, request: ProviderRequest) -> ProviderResponse:
        """Each label's share as the answer's first list element: one short decode per item.

        For ontologies with ``multi_label: {method: listed}``. The prompt asks for
        ``{"labels": [...]}``; after ``{"labels": ["`` every label is scored as the
        *first* element (its tokens, then any token that starts with the closing quote),
        so no label is conditioned on another one listed before it, and the item prompt
        is all the context there is. Normalised over the labels this is the model's share
        for each label as the answer's lead. ``label_scores`` holds those raw shares; the
        ontology's fitted rule (priors, relative threshold) decides which labels apply
        (``engine.confidence.listed_decision``), so refitting it needs no model call.
        The sample lists the likeliest label. All labels' tokens go in one decode: the
        rule's priors can lift any label, so every share must be exact (a best-first
        search, ``LlamaRuntime.score_bounded`` with ``mass``, was slower with priors and,
        its skipped labels holding only bounds, worse).
        """
        labels = list(request.prompt.labels)
        rt = self.runtime
        text = rt.chat_text(request.messages()) + LISTED_PREFIX
        choices = [json.dumps(label, ensure_ascii=False)[1:-1] for label in labels]
        prefix, conts, n_in = self.choice_tokens(text, choices, "")
        scores = np.array(rt.score_ended(prefix, conts, rt.starts_with(b'"')))
        shares = np.exp(scores - np.logaddexp.reduce(scores))
        probs = {label: float(p) for label, p in zip(labels, shares, strict=True)}
        top = labels[int(np.argmax(shares))]
        return ProviderResponse(
            samples=[Sample(text=json.dumps({"labels": [top]}, ensure_ascii=False))],
            model=self.model,
            tokens_in=n_in,
            tokens_out=sum(len(c) for c in conts),
            structured="choices",
            label_scores=probs,
        )

    def _multi_label_questions(self, request: ProviderRequest) -> ProviderResponse:
        labels = list(request.prompt.labels)
        base = request.messages()
        rt = self.runtime
        # Count the shared item prompt once and each label's question on top of it.
        base_len = len(rt.tokenize(rt.chat_text(base)))
        texts = []
        for label in labels:
            question = {"role": "user", "content": _APPLIES_QUESTION.format(label=label)}
            texts.append(rt.chat_text([*base, question]) + _APPLIES_PREFIX)
        if not self.options.batched:
            return self._multi_label_sequential(labels, texts, base_len)
        # One batched decode for every label's question and both answers: the item
        # prompt is decoded once (sequence 0), each label's question is its own sequence
        # (so a label never sees another label's question: order-independent).
        per_label = [self.choice_tokens(text, ["true", "false"], "}") for text in texts]
        fulls = [prefix + cont for prefix, conts, _ in per_label for cont in conts]
        common = min(len(prefix) for prefix, _, _ in per_label)
        first = fulls[0]
        for full in fulls[1:]:
            n = 0
            for a, b in zip(first, full, strict=False):
                if a != b:
                    break
                n += 1
            common = min(common, n)
        scored = rt.score_continuations(first[:common], [full[common:] for full in fulls])
        probs: dict[str, float] = {}
        for k, label in enumerate(labels):
            (yes, _), (no, _) = scored[2 * k], scored[2 * k + 1]
            probs[label] = 1.0 / (1.0 + math.exp(no - yes))
        n_in = base_len + sum(max(0, n - base_len) for _, _, n in per_label)
        n_out = sum(len(c) for _, conts, _ in per_label for c in conts)
        return self._multi_label_response(labels, probs, n_in, n_out)

    def _multi_label_sequential(
        self, labels: list[str], texts: list[str], base_len: int
    ) -> ProviderResponse:
        """One yes/no scoring after another (the reference the batched path replaces)."""
        probs: dict[str, float] = {}
        n_in, n_out = base_len, 0
        for label, text in zip(labels, texts, strict=True):
            (yes, no), t_in, t_out = self._choice_scores(text, ["true", "false"], "}")
            probs[label] = 1.0 / (1.0 + math.exp(no - yes))
            n_in += max(0, t_in - base_len)
            n_out += t_out
        return self._multi_label_response(labels, probs, n_in, n_out)

    def _multi_label_response(
        self, labels: list[str], probs: dict[str, float], n_in: int, n_out: int
    ) -> ProviderResponse:
        chosen = [label for label in labels if probs[label] >= 0.5]
        return ProviderResponse(
            samples=[Sample(text=json.dumps({"labels": chosen}, ensure_ascii=False))],
            model=self.model,
            tokens_in=n_in,
            tokens_out=n_out,
            structured="choices",
            label_scores=probs,
        )

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _generate(self, request: ProviderRequest) -> ProviderResponse:
        rt = self.runtime
        source = request.prompt.meta.get("source")
        spans = request.prompt.task == TaskType.SPANS
        if spans and self.options.copy_spans and source is not None:
            return generate_spans(rt, request, self.model, source)
        tokens = rt.tokenize(rt.chat_text(request.messages()))
        grammar = self._grammar(request.prompt.schema)
        samples: list[Sample] = []
        n_out = 0
        for i in range(max(1, request.n)):
            seed = None if request.seed is None else request.seed + i
            gen = rt.generate(
                tokens,
                grammar=grammar,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                rng=np.random.default_rng(seed),
            )
            logprobs = (
                [TokenLogprob(t, lp, top) for t, lp, top in gen.tokens]
                if request.logprobs
                else None
            )
            samples.append(Sample(text=gen.text, logprobs=logprobs))
            n_out += gen.n_tokens
        return ProviderResponse(
            samples=samples,
            model=self.model,
            tokens_in=len(tokens),
            tokens_out=n_out,
            structured="grammar",
        )


__all__ = ["LocalProvider", "get_runtime"]
