"""Queue order: which routed item a reviewer sees first (lower priority value first).

Pluggable: ``register_ordering("name")`` adds a strategy usable as
``autolabel route --order name``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autolabel.errors import ConfigError
from autolabel.hashing import stable_hash


@dataclass(frozen=True)
class Candidate:
    """What an ordering may look at for one routed item."""

    item_id: int
    row_number: int | None
    confidence: float | None
    reasons: tuple[str, ...]
    # Top-1 minus top-2 probability, when the label distribution is known.
    margin: float | None = None
    # 1 - similarity to the nearest human-reviewed item (``active`` order only).
    novelty: float | None = None


Ordering = Callable[[Candidate, int], float]  # (candidate, seed) -> priority
ORDERINGS: dict[str, Ordering] = {}


def register_ordering(name: str) -> Callable[[Ordering], Ordering]:
    """Decorator: make ``fn(candidate, seed) -> priority`` available under ``name``."""

    def add(fn: Ordering) -> Ordering:
        ORDERINGS[name] = fn
        return fn

    return add


def get_ordering(name: str) -> Ordering:
    try:
        return ORDERINGS[name]
    except KeyError:
        raise ConfigError(
            f"unknown queue order '{name}'", hint=f"use one of: {', '.join(sorted(ORDERINGS))}"
        ) from None


def seeded_unit(seed: int, *key: object) -> float:
    """A deterministic number in [0, 1) from a seed and a key (stable across runs)."""
    return int(stable_hash([seed, *key])[:13], 16) / 16**13


@register_ordering("confidence")
def by_confidence(c: Candidate, seed: int) -> float:
    """Least confident first; failed predictions (no confidence) before everything."""
    return -1.0 if c.confidence is None else c.confidence


@register_ordering("random")
def by_random(c: Candidate, seed: int) -> float:
    """A seeded shuffle: reviewers see a representative sample early."""
    return seeded_unit(seed, "order", c.item_id)


@register_ordering("fifo")
def by_input_order(c: Candidate, seed: int) -> float:
    """Input file order."""
    return float(c.row_number if c.row_number is not None else c.item_id)


def _uncertainty(c: Candidate) -> float:
    if c.confidence is None:
        return 1.0
    if c.margin is not None:
        return 1.0 - c.margin * c.confidence
    return 1.0 - c.confidence


def _audit_spread(c: Candidate, seed: int, low: float) -> float | None:
    """Audit items keep a random place in the queue (else an uncertainty order starves them)."""
    if "audit" in c.reasons and len(c.reasons) == 1:
        return low * seeded_unit(seed, "audit-order", c.item_id)
    return None


@register_ordering("uncertainty")
def by_uncertainty(c: Candidate, seed: int) -> float:
    """Smallest margin between the two likeliest labels first (1 - confidence without one)."""
    spread = _audit_spread(c, seed, -1.0)
    return spread if spread is not None else -_uncertainty(c)


@register_ordering("active")
def by_active(c: Candidate, seed: int) -> float:
    """Uncertain items in regions no human has reviewed yet first (see learning/active.py);
    ``route`` fills ``novelty`` from embeddings; without it this is ``uncertainty``."""
    spread = _audit_spread(c, seed, -2.0)
    if spread is not None:
        return spread
    return -_uncertainty(c) * (1.0 + (c.novelty if c.novelty is not None else 0.0))
