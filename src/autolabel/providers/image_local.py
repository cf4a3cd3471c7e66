"""``--provider local`` for image ontologies: the embedded offline image classifier as a
:class:`~autolabel.providers.base.Provider`.

The model itself (EfficientNet-Lite0 ImageNet-1k via onnxruntime, labels mapped through
WordNet) lives in :mod:`autolabel.providers.vision_local`; this adapter hands it the item's
picture and answers with each label's probability (``label_probs``), so confidence,
caching, routing and review work as for every other provider. Labels with no ImageNet
counterpart get probability 0 and their items route to review.

classify and multi_label only: the embedded model cannot draw boxes (no open-vocabulary
detector ships in a package), so a boxes ontology needs a vision endpoint.

Batching: the engine asks one item at a time from many concurrent tasks; requests that
arrive while the model is busy are answered together in the next call (up to ``BATCH``),
so a run feeds the model batches as the classifier's own benchmark does.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autolabel.errors import ConfigError, ImageError, PermanentProviderError
from autolabel.images import ImageRef
from autolabel.ontology.schema import TaskType
from autolabel.providers.base import Provider, ProviderRequest, ProviderResponse

TASKS = (TaskType.CLASSIFY, TaskType.MULTI_LABEL)
BATCH = 16  # images per model call (the classifier's own batch size)


def check_task(task: TaskType) -> None:
    if task not in TASKS:
        raise ConfigError(
            f"the embedded image model classifies pictures; it cannot answer a {task.value} task",
            hint="label boxes with a vision model behind an OpenAI-compatible endpoint: "
            "--base-url URL --model NAME (vLLM, Ollama, llama.cpp server with --mmproj, OpenAI)",
        )


class LocalImageProvider(Provider):
    name = "local-image"

    def __init__(self, *, threads: int | None = None, classifier: Any = None) -> None:
        if classifier is None:
            # Lazy: onnxruntime and the weights are the optional ``vision`` extra.
            from autolabel.providers.vision_local import EmbeddedImageClassifier

            classifier = EmbeddedImageClassifier(threads=threads)
        self.classifier = classifier
        self.model = str(classifier.model_id)
        # One worker: onnxruntime already uses ``threads`` cores per call; more callers at
        # once would only fight over them.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="autolabel-image")
        self._pending: list[tuple[ProviderRequest, asyncio.Future[ProviderResponse]]] = []
        self._draining: asyncio.Task[None] | None = None

    def identity(self) -> dict[str, Any]:
        """The weights' hash is the model: a different file gives different answers."""
        return {
            "provider": self.name,
            "base_url": None,
            "model": self.model,
            "weights_sha256": getattr(self.classifier, "weights_sha256", None),
        }

    @property
    def scores_labels(self) -> bool:
        return True

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        check_task(request.prompt.task)
        if not request.prompt.images:
            raise PermanentProviderError(
                "the embedded image model got an item without a picture",
                hint="declare the image column in the ontology: input: {image: COLUMN}",
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ProviderResponse] = loop.create_future()
        self._pending.append((request, future))
        if self._draining is None or self._draining.done() or self._draining.get_loop() is not loop:
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Answer pending requests in batches until none is left."""
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            requests = [request for request, _ in batch]
            try:
                answers = await loop.run_in_executor(self._executor, self._batch_sync, requests)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
                answers = [exc] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():
                    continue  # its caller was cancelled
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def _batch_sync(self, requests: list[ProviderRequest]) -> list[Any]:
        """One model call for every readable picture; an unreadable one fails alone."""
        started = time.perf_counter()
        answers: list[Any] = [None] * len(requests)
        images: list[bytes] = []
        at: list[int] = []
        for i, request in enumerate(requests):
            try:
                images.append(_read(request.prompt.images[0]))
                at.append(i)
            except PermanentProviderError as exc:
                answers[i] = exc
        # One engine run asks with one label set; group anyway, it costs nothing.
        groups: dict[tuple[str, ...], list[int]] = {}
        for j, i in enumerate(at):
            groups.setdefault(tuple(requests[i].prompt.labels), []).append(j)
        for names, members in groups.items():
            labels = [(name, "") for name in names]
            try:
                probs = self.classifier.label_probs([images[j] for j in members], labels)
            except (ValueError, RuntimeError, OSError) as exc:
                failure = PermanentProviderError(f"embedded image model failed: {exc}")
                for j in members:
                    answers[at[j]] = failure
                continue
            for j, p in zip(members, probs, strict=True):
                answers[at[j]] = {k: float(v) for k, v in p.items()}
        # The model's time per item: its share of the batch.
        share = (time.perf_counter() - started) / max(1, len(requests))
        return [
            a
            if isinstance(a, BaseException)
            else ProviderResponse(
                samples=[], model=self.model, latency_s=share, structured="choices", label_probs=a
            )
            for a in answers
        ]

    async def aclose(self) -> None:
        """Nothing to release: runs may reuse the provider, the model session is shared."""


def _read(ref: ImageRef) -> bytes:
    """The picture's bytes, if it is still the picture the item was made from."""
    try:
        data = Path(ref.path).read_bytes()
    except OSError as exc:
        raise PermanentProviderError(f"{ref.path}: cannot read: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise PermanentProviderError(
            ImageError(f"{ref.path} changed since it was read").message,
            hint="label the data again so the item carries the new image",
        )
    return data
