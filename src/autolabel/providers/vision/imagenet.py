"""ImageNet-1k classes under WordNet, and which classes an ontology label collects.

A label collects every ImageNet class at or below a WordNet synset one of whose lemmas is the
label's name (or one of its aliases): ``fish`` collects tench, goldfish, the sharks, rays,
eels...; ``dog`` collects the 118 dog breeds; ``hammer`` the class ``hammer``. An alias may also
be a WordNet id (``n03481172``) or an exact ImageNet class name. Matching is on whole lemmas,
case-insensitive, with ``_``/``-`` read as spaces and a plain plural also tried (``hammers``).
A label that collects nothing has no ImageNet counterpart: its probability is 0, so its items
route to review.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources


def normalise(term: str) -> str:
    return " ".join(term.replace("_", " ").replace("-", " ").lower().split())


def _variants(term: str) -> set[str]:
    t = normalise(term)
    out = {t}
    if t.endswith("ies"):
        out.add(t[:-3] + "y")
    if t.endswith("es"):
        out.add(t[:-2])
    if t.endswith("s"):
        out.add(t[:-1])
    return out


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """The 1,000 classes (model output order) and the WordNet synsets above them."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    # synset offset -> lemmas (lower case) / hypernym offsets
    lemmas: dict[str, tuple[str, ...]]
    parents: dict[str, tuple[str, ...]]
    # per class: its own synset and every synset above it
    class_ancestors: tuple[frozenset[str], ...]

    @property
    def short_names(self) -> tuple[str, ...]:
        return tuple(n.split(",")[0] for n in self.names)

    def classes_for(self, terms: Iterable[str]) -> list[int]:
        """Indices of the ImageNet classes a label with these names/aliases collects."""
        wanted: set[str] = set()
        for term in terms:
            wanted |= _variants(term)
        synsets = {o for o, ls in self.lemmas.items() if wanted & set(ls)}
        synsets |= {w[1:] for w in wanted if len(w) == 9 and w[0] == "n" and w[1:].isdigit()}
        out = []
        for index in range(len(self.wnids)):
            exact = {normalise(n) for n in self.names[index].split(",")}
            if exact & wanted or self.class_ancestors[index] & synsets:
                out.append(index)
        return out


def _ancestors(parents: dict[str, tuple[str, ...]], offset: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = [offset]
    while todo:
        o = todo.pop()
        if o not in seen:
            seen.add(o)
            todo.extend(parents.get(o, ()))
    return frozenset(seen)


@cache
def load_hierarchy() -> Hierarchy:
    text = resources.files(__package__).joinpath("imagenet_wordnet.json").read_text()
    data = json.loads(text)
    synsets = data["synsets"]
    parents = {o: tuple(s["parents"]) for o, s in synsets.items()}
    wnids = tuple(c["wnid"] for c in data["classes"])
    return Hierarchy(
        wnids=wnids,
        names=tuple(c["name"] for c in data["classes"]),
        lemmas={o: tuple(normalise(x) for x in s["lemmas"]) for o, s in synsets.items()},
        parents=parents,
        class_ancestors=tuple(_ancestors(parents, w[1:]) for w in wnids),
    )


def label_class_matrix(
    labels: Sequence[str], aliases: dict[str, Sequence[str]] | None = None
) -> tuple[list[list[int]], list[str]]:
    """Per label, the class indices it collects; and the labels that collect none."""
    h = load_hierarchy()
    aliases = aliases or {}
    per_label = [h.classes_for([name, *aliases.get(name, ())]) for name in labels]
    missing = [name for name, classes in zip(labels, per_label, strict=True) if not classes]
    return per_label, missing
