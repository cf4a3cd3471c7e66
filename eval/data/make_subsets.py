"""Regenerate every shipped data subset (eval/data/, eval/data/small/, examples/) deterministically.

Usage (from the repository root, with the gold datasets checked out beside it):

    python eval/data/make_subsets.py [--datasets ../shared/datasets]

The same sources and seed always give byte-identical files, so a diff after running this shows
exactly what changed. Only openly licensed datasets are written out; AG News, Financial
PhraseBank and CoNLL-2003 are never copied (their licences forbid redistribution).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SEED = 20240607
REPO = Path(__file__).resolve().parents[2]
EVAL_DIR = REPO / "eval" / "data"
SMALL_DIR = EVAL_DIR / "small"
EXAMPLES_DIR = REPO / "examples"

FEWSHOT_DEV_LINES = (640, 598, 348, 683)
SST_LABELS = {"0": "negative", "1": "positive"}
TWEET_LABELS = {"0": "negative", "1": "neutral", "2": "positive"}


# -- SST detokenisation ------------------------------------------------------------------------
_CONTRACTIONS = re.compile(r" (n't|'s|'re|'ll|'ve|'d|'m)\b")
_PUNCT = re.compile(r" ([,.;:!?%]|\.\.\.)(?= |$|'|\")")


def detokenise_sst(text: str) -> str:
    """Undo the PTB tokenisation artefacts of the SST files so the model reads natural text.

    Lower-casing is kept (the original casing is not recoverable). Only unambiguous artefacts
    are changed: bracket tokens, escaped slashes, quote tokens, contractions and the space
    before punctuation.
    """
    t = text.strip()
    t = t.replace("-lrb- ", "(").replace("-lrb-", "(")
    t = t.replace(" -rrb-", ")").replace("-rrb-", ")")
    t = t.replace("\\/", "/")
    t = re.sub(r"`` ?(.*?) ?''", r'"\1"', t)  # ``quoted'' → "quoted"
    t = re.sub(r"` (.*?) '(?= |$)", r"'\1'", t)  # ` quoted ' → 'quoted'
    t = _CONTRACTIONS.sub(r"\1", t)
    t = _PUNCT.sub(r"\1", t)
    t = re.sub(r"\$ (?=\d)", "$", t)
    return t


def read_sst(path: Path) -> list[dict[str, str]]:
    """One dict per line: 1-based source line number, gold label name, detokenised text."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, text = line.split(" ", 1)
        rows.append({"line": lineno, "label": SST_LABELS[label], "text": detokenise_sst(text)})
    return rows


def balanced(rows: Sequence[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """n rows with the labels as equal as possible, drawn without replacement."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    labels = sorted(by_label)
    out: list[dict[str, Any]] = []
    for i, label in enumerate(labels):
        k = n // len(labels) + (1 if i < n % len(labels) else 0)
        out.extend(rng.sample(by_label[label], k))
    return out


# -- writers -----------------------------------------------------------------------------------
def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    print(f"{path.relative_to(REPO)}: {count} rows")
    return count


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    print(f"{path.relative_to(REPO)}: {count} rows")
    return count


# -- per dataset -------------------------------------------------------------------------------
def make_sst(src: Path) -> None:
    test = read_sst(src / "sst" / "stsa.binary.test")
    dev = read_sst(src / "sst" / "stsa.binary.dev")
    rng = random.Random(SEED)

    # examples/ and eval's test subset are drawn from one shuffle so they are disjoint.
    examples = balanced(test, 100, rng)
    used = {r["line"] for r in examples}
    test_subset = balanced([r for r in test if r["line"] not in used], 200, rng)
    dev_subset = balanced(dev, 200, rng)

    def ids(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
        return [
            {**r, "id": f"{prefix}-{r['line']:04d}"} for r in sorted(rows, key=lambda r: r["line"])
        ]

    examples = ids(examples, "sst2-test")
    test_subset = ids(test_subset, "sst2-test")
    dev_subset = ids(dev_subset, "sst2-dev")

    write_csv(
        EXAMPLES_DIR / "sst2_sample.csv", ["id", "text"], ((r["id"], r["text"]) for r in examples)
    )
    write_csv(
        EXAMPLES_DIR / "sst2_sample_gold.csv",
        ["id", "text", "label"],
        ((r["id"], r["text"], r["label"]) for r in examples),
    )
    header = ["id", "text", "label"]
    write_csv(
        EVAL_DIR / "sst2_test.csv", header, ((r["id"], r["text"], r["label"]) for r in test_subset)
    )
    write_csv(
        EVAL_DIR / "sst2_dev.csv", header, ((r["id"], r["text"], r["label"]) for r in dev_subset)
    )
    small = sorted(balanced(dev_subset, 40, random.Random(SEED + 1)), key=lambda r: r["line"])
    write_csv(
        SMALL_DIR / "sst2_dev_40.csv", header, ((r["id"], r["text"], r["label"]) for r in small)
    )

    # ontologies/sst2_fewshot.yaml uses these dev lines (hand-picked from unused dev lines for
    # variety: plain praise, plain pan, a negated negative, a mixed review). They must stay out
    # of every shipped subset, or the few-shot variant would be evaluated on its own examples.
    by_line = {r["line"]: r for r in dev}
    for line in FEWSHOT_DEV_LINES:
        if line in {r["line"] for r in dev_subset}:
            raise SystemExit(f"few-shot dev line {line} is inside sst2_dev.csv; pick another")
        r = by_line[line]
        print(f"  few-shot dev line {line}: {r['label']}: {r['text']}")


def make_banking77(src: Path) -> None:
    with (src / "banking77" / "test.csv").open(encoding="utf-8", newline="") as fh:
        rows = [
            {"row": i, "text": r["text"], "label": r["category"]}
            for i, r in enumerate(csv.DictReader(fh), start=1)
        ]
    categories = json.loads((src / "banking77" / "categories.json").read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    # 200 over 77 classes: every class gets 2, a seeded choice of 46 classes gets a 3rd.
    extra = set(rng.sample(sorted(categories), 200 - 2 * len(categories)))
    chosen = []
    for label in sorted(categories):
        chosen.extend(rng.sample(by_label[label], 3 if label in extra else 2))
    chosen.sort(key=lambda r: r["row"])
    header = ["id", "text", "label"]

    def out(rs: list[dict[str, Any]]) -> Iterable[tuple[str, str, str]]:
        return ((f"banking77-test-{r['row']:04d}", r["text"], r["label"]) for r in rs)

    write_csv(EVAL_DIR / "banking77_test.csv", header, out(chosen))
    # The small slice: 40 distinct classes, one item each.
    small_labels = set(random.Random(SEED + 1).sample(sorted(categories), 40))
    small, seen = [], set()
    for r in chosen:
        if r["label"] in small_labels and r["label"] not in seen:
            small.append(r)
            seen.add(r["label"])
    write_csv(SMALL_DIR / "banking77_40.csv", header, out(small))


def make_banking77_simulate(src: Path) -> None:
    """385 items, 5 per intent, for `autolabel simulate` (the learning loop needs each
    intent to recur so reviewed items can teach the rest)."""
    with (src / "banking77" / "test.csv").open(encoding="utf-8", newline="") as fh:
        rows = [
            {"row": i, "text": r["text"], "label": r["category"]}
            for i, r in enumerate(csv.DictReader(fh), start=1)
        ]
    rng = random.Random(SEED + 2)
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    chosen = [r for label in sorted(by_label) for r in rng.sample(by_label[label], 5)]
    rng.shuffle(chosen)  # input order carries no label information
    write_csv(
        EVAL_DIR / "banking77_simulate.csv",
        ["id", "text", "label"],
        ((f"banking77-test-{r['row']:04d}", r["text"], r["label"]) for r in chosen),
    )


def make_tweet_sentiment(src: Path) -> None:
    folder = src / "tweet_eval" / "sentiment"
    for split, n in (("val", 150), ("test", 150)):
        texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
        labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split("\n")
        texts, labels = texts[: len(labels)], labels
        rows = [
            {"line": i, "text": t.strip(), "label": TWEET_LABELS[lab.strip()]}
            for i, (t, lab) in enumerate(zip(texts, labels, strict=True), start=1)
            if lab.strip()
        ]
        # Simple random sample: keeps the natural (neutral-heavy) label distribution.
        chosen = sorted(random.Random(SEED).sample(rows, n), key=lambda r: r["line"])
        header = ["id", "text", "label"]
        rows_out = [(f"tweet-{split}-{r['line']:05d}", r["text"], r["label"]) for r in chosen]
        write_csv(EVAL_DIR / f"tweet_sentiment_{split}.csv", header, rows_out)
        if split == "test":
            write_csv(SMALL_DIR / "tweet_sentiment_40.csv", header, rows_out[:40])


def goemotions_rows(folder: Path, split: str) -> list[dict[str, Any]]:
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    rows = []
    for line in (folder / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
        text, ids, comment_id = line.split("\t")
        label_ids = sorted({int(i) for i in ids.split(",")})  # ontology (= labels.txt) order
        rows.append({"id": comment_id, "text": text, "labels": [names[i] for i in label_ids]})
    return rows


def make_goemotions(src: Path) -> None:
    folder = src / "goemotions" / "original"
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    rows = goemotions_rows(folder, "test")
    rng = random.Random(SEED)
    # One seeded row per label first so every one of the 28 labels is present (rare ones such
    # as grief would otherwise be missing from 150 rows), then a simple random fill.
    chosen: dict[str, dict[str, Any]] = {}
    for name in names:
        candidates = [r for r in rows if name in r["labels"] and r["id"] not in chosen]
        pick = rng.choice(candidates)
        chosen[pick["id"]] = pick
    rest = [r for r in rows if r["id"] not in chosen]
    for r in rng.sample(rest, 150 - len(chosen)):
        chosen[r["id"]] = r
    order = {r["id"]: i for i, r in enumerate(rows)}
    out = sorted(chosen.values(), key=lambda r: order[r["id"]])
    write_jsonl(EVAL_DIR / "goemotions_test.jsonl", out)
    small = sorted(random.Random(SEED + 1).sample(out, 40), key=lambda r: order[r["id"]])
    write_jsonl(SMALL_DIR / "goemotions_40.jsonl", small)
    # The upstream dev split, for fitting the multi-label rule (never the test slice): a
    # simple random sample, so the label shares it measures are the natural ones.
    dev = goemotions_rows(folder, "dev")
    picked = sorted(random.Random(SEED + 4).sample(range(len(dev)), 600))
    write_jsonl(EVAL_DIR / "goemotions_dev.jsonl", [dev[i] for i in picked])


def bio_sentences(path: Path) -> list[list[tuple[str, str]]]:
    sentences: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        token, tag = line.split("\t")
        current.append((token, tag))
    if current:
        sentences.append(current)
    return sentences


def bio_to_spans(tokens: list[tuple[str, str]]) -> tuple[str, list[dict[str, Any]]]:
    """Join tokens with single spaces; return the text and character spans of each entity."""
    text_parts: list[str] = []
    spans: list[dict[str, Any]] = []
    pos = 0
    open_span: dict[str, Any] | None = None
    for i, (token, tag) in enumerate(tokens):
        start = pos + (1 if i else 0)
        end = start + len(token)
        text_parts.append(token)
        pos = end
        kind, _, label = tag.partition("-")
        if kind == "I" and open_span is not None and open_span["label"] == label:
            open_span["end"] = end
            continue
        if open_span is not None:
            spans.append(open_span)
            open_span = None
        if kind in ("B", "I"):  # a stray I- starts a new entity (standard conlleval reading)
            open_span = {"start": start, "end": end, "label": label}
    if open_span is not None:
        spans.append(open_span)
    text = " ".join(text_parts)
    for s in spans:
        s["text"] = text[s["start"] : s["end"]]
    return text, [{k: s[k] for k in ("start", "end", "text", "label")} for s in spans]


def make_wnut17(src: Path) -> None:
    sentences = bio_sentences(src / "wnut17" / "emerging.test.annotated")
    chosen = sorted(random.Random(SEED).sample(range(len(sentences)), 150))
    out = []
    for idx in chosen:
        text, spans = bio_to_spans(sentences[idx])
        out.append({"id": f"wnut17-test-{idx + 1:04d}", "text": text, "spans": spans})
    write_jsonl(EVAL_DIR / "wnut17_test.jsonl", out)
    write_jsonl(SMALL_DIR / "wnut17_40.jsonl", out[:40])
    # The upstream dev split, for choosing prompts and thresholds (never the test slice).
    dev = bio_sentences(src / "wnut17" / "emerging.dev.conll")
    chosen = sorted(random.Random(SEED + 3).sample(range(len(dev)), 100))
    out = []
    for idx in chosen:
        text, spans = bio_to_spans(dev[idx])
        out.append({"id": f"wnut17-dev-{idx + 1:04d}", "text": text, "spans": spans})
    write_jsonl(EVAL_DIR / "wnut17_dev.jsonl", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    args = parser.parse_args()
    src: Path = args.datasets
    if not (src / "sst").is_dir():
        raise SystemExit(f"gold datasets not found under {src} (pass --datasets PATH)")
    make_sst(src)
    make_banking77(src)
    make_banking77_simulate(src)
    make_tweet_sentiment(src)
    make_goemotions(src)
    make_wnut17(src)


if __name__ == "__main__":
    main()
