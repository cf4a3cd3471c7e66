"""A ``LabelFn`` backed by the real engine: compiler + Labeler + response cache.

Demonstrations go into the prompt, so a changed set of demonstrations is a new cache
key and an unchanged one is served from the cache: re-labelling after a round costs
model calls only for items whose demonstrations changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from autolabel.engine.cache import ResponseCache
from autolabel.engine.labeler import Labeler, LabelerOptions
from autolabel.learning.demonstrations import Demonstration
from autolabel.learning.simulate import SimItem, SimPrediction
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import Provider


class ModelLabels:
    """Callable ``(items, demos) -> predictions``; counts model calls and cache hits."""

    def __init__(
        self,
        ontology: Ontology,
        provider: Provider,
        cache: ResponseCache | None,
        *,
        template: str | None = None,
        concurrency: int = 4,
        options: LabelerOptions | None = None,
    ) -> None:
        self.labeler = Labeler(
            ontology,
            PromptCompiler(ontology, template=template),
            provider,
            cache,
            options=options or LabelerOptions(use_cache=cache is not None),
        )
        self.concurrency = concurrency
        self.model_calls = 0
        self.cache_hits = 0

    def __call__(
        self, items: Sequence[SimItem], demos: Sequence[Sequence[Demonstration]]
    ) -> list[SimPrediction]:
        return asyncio.run(self._all(items, demos))

    async def _all(
        self, items: Sequence[SimItem], demos: Sequence[Sequence[Demonstration]]
    ) -> list[SimPrediction]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(i: int) -> SimPrediction:
            async with gate:
                out = await self.labeler.label(i, items[i].payload, demos[i])
            self.model_calls += out.model_calls
            self.cache_hits += int(out.cache_hit)
            if not out.ok:
                return SimPrediction(None, None, None, out.demonstrations)
            return SimPrediction(out.label, out.confidence, out.distribution, out.demonstrations)

        return list(await asyncio.gather(*(one(i) for i in range(len(items)))))
