"""The live loop's entry points into learning: what the pipeline and ``route`` call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autolabel.learning.demonstrations import (
    Demonstration,
    DemoSelector,
    build_pool,
    demo_text,
)
from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder
from autolabel.learning.pool import item_ref, load_demonstrations
from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database

DemoChooser = Callable[[int, dict[str, Any]], list[Demonstration]]


def default_cache(corpus: list[str] | None = None) -> EmbeddingCache:
    """The default embedder (lexical; see ``embeddings.py`` for why), IDF-fitted on a corpus."""
    embedder = HashingEmbedder()
    if corpus:
        embedder.fit(corpus)
    return EmbeddingCache(embedder)


def demo_chooser(db: Database, ontology: Ontology) -> DemoChooser | None:
    """None when the ontology has no ``examples: {from: reviews}``; else a function
    (item id, payload) → demonstrations, never the item itself."""
    spec = ontology.demonstrations
    if spec is None:
        return None
    demos = load_demonstrations(db, ontology)
    cache = default_cache([d.text for d in demos])
    selector = DemoSelector(build_pool(ontology.name, demos, cache), cache, k=spec.k)
    fields = ontology.input.fields

    def choose(item_id: int, payload: dict[str, Any]) -> list[Demonstration]:
        return selector.select(demo_text(fields, payload), exclude=[item_ref(item_id)])

    return choose


def novelty_by_item(
    db: Database, ontology: Ontology, payloads: dict[int, dict[str, Any]]
) -> dict[int, float]:
    """1 - cosine similarity to the nearest human-reviewed item (1.0 when none)."""
    from autolabel.learning.active import novelty

    if not payloads:
        return {}
    reviewed = load_demonstrations(db, ontology)
    fields = ontology.input.fields
    ids = sorted(payloads)
    texts = [demo_text(fields, payloads[i]) for i in ids]
    cache = default_cache(texts + [d.text for d in reviewed])
    vectors = cache.embed(texts)
    pool = cache.embed([d.text for d in reviewed]) if reviewed else vectors[:0]
    return {i: float(v) for i, v in zip(ids, novelty(vectors, pool), strict=True)}


def latest_calibrator(db: Database, ontology_name: str):  # type: ignore[no-untyped-def]
    """The ontology's newest stored calibrator as a ``Calibrator``, or None."""
    from autolabel.learning.calibrators import as_calibrator, latest

    record = latest(db, ontology_name)
    return None if record is None else as_calibrator(record)
