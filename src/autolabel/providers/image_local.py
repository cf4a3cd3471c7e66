"""``--provider local`` for image ontologies: the embedded offline image classifier as a
:class:`~autolabel.providers.base.Provider`.

The model itself (EfficientNet-Lite0 ImageNet-1k via onnxruntime, labels mapped through
WordNet) lives in :mod:`autolabel.providers.vision_local`; this adapter hands it the item's
picture and answers with each label's probability (``label_probs``), so confidence,
caching, routing and review work as for every other provider. Labels with no ImageNet
counterpart get probability 0 and their items route to review.

classify and multi_label only: the embedded model cannot draw boxes (no open-vocabulary
detector ships in a package), so a boxes ontology needs a vision endpoint.
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
        return await loop.run_in_executor(self._executor, self._complete_sync, request)

    def _complete_sync(self, request: ProviderRequest) -> ProviderResponse:
        started = time.perf_counter()
        ref: ImageRef = request.prompt.images[0]
        try:
            data = Path(ref.path).read_bytes()
        except OSError as exc:
            raise PermanentProviderError(f"{ref.path}: cannot read: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PermanentProviderError(
                ImageError(f"{ref.path} changed since it was read").message,
                hint="label the data again so the item carries the new image",
            )
        labels = [(name, "") for name in request.prompt.labels]
        try:
            probs = self.classifier.label_probs([data], labels)[0]
        except (ValueError, RuntimeError, OSError) as exc:
            raise PermanentProviderError(f"embedded image model failed: {exc}") from exc
        return ProviderResponse(
            samples=[],
            model=self.model,
            latency_s=time.perf_counter() - started,
            structured="choices",
            label_probs={k: float(v) for k, v in probs.items()},
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
