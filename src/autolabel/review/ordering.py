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
