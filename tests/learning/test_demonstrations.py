"""Demonstration selection: never the item itself, label-diverse, deterministic."""

from __future__ import annotations

from autolabel.learning.demonstrations import (
    Demonstration,
    DemoSelector,
    build_pool,
    demo_text,
)
from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder

TEXTS = {
    "card_arrival": [
        "my new card has not arrived yet",
        "when will my card arrive",
        "still waiting for the card you sent",
    ],
    "lost_card": ["I lost my card", "my card was stolen yesterday", "someone stole my wallet"],
    "top_up": ["how do I top up by bank transfer", "top up failed", "my top up is pending"],
}


def _pool(cache: EmbeddingCache):  # type: ignore[no-untyped-def]
    demos = [
        Demonstration(f"item:{lab}:{i}", {"text": t}, lab, t)
        for lab, texts in TEXTS.items()
        for i, t in enumerate(texts)
    ]
    return build_pool("banking", demos, cache)


def test_nearest_first_and_never_itself() -> None:
    cache = EmbeddingCache(HashingEmbedder().fit([t for ts in TEXTS.values() for t in ts]))
    selector = DemoSelector(_pool(cache), cache, k=3)
    chosen = selector.select("my new card has not arrived yet", exclude=["item:card_arrival:0"])
    refs = [d.ref for d in chosen]
    assert "item:card_arrival:0" not in refs
    # The most similar is shown last (closest to the item being labelled).
    assert chosen[-1].output == "card_arrival"
    # An identical text under another ref is the same item: never shown either.
    dup = DemoSelector(
        build_pool(
            "banking",
            [
                *_pool(cache).demos,
                Demonstration("item:copy", {"text": "x"}, "lost_card", "when will my card arrive"),
            ],
            cache,
        ),
        cache,
        k=12,
    )
    assert all(d.text != "when will my card arrive" for d in dup.select("when will my card arrive"))


def test_label_diversity() -> None:
    cache = EmbeddingCache(HashingEmbedder())
    selector = DemoSelector(_pool(cache), cache, k=3, label_penalty=0.5)
    chosen = selector.select("card card card")
    assert len({d.output for d in chosen}) >= 2
    plain = DemoSelector(_pool(cache), cache, k=3, diversity=0.0, label_penalty=0.0)
    assert [d.ref for d in plain.select("card card card")] == [
        d.ref for d in plain.select("card card card")
    ]


def test_empty_pool_and_cache() -> None:
    cache = EmbeddingCache(HashingEmbedder())
    assert DemoSelector(build_pool("x", [], cache), cache).select("hello") == []
    cache.embed(["a b", "a b", "c"])
    cache.embed(["a b"])
    assert cache.misses == 2
    assert demo_text(["a", "b"], {"a": "x", "b": 3}) == "x\n3"
