"""Entity spans out to spaCy ``DocBin`` and CoNLL/BIO, and in from ``DocBin``.

Our spans are character offsets; spaCy and BIO need token boundaries. A span that does
not fall on token boundaries is *misaligned*: by default the export fails with a report
naming each record and span (nothing is written); ``misaligned="skip"`` leaves such
spans out and ``"expand"`` widens them to the covering tokens, both with the same report.
spaCy uses a blank English tokenizer (``spacy.blank("en")``): no model download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autolabel.engine.inputs import external_id_for
from autolabel.errors import ConfigError, InputError
from autolabel.interop.records import Record, raise_problems
from autolabel.ontology.schema import Ontology, TaskType

Misaligned = Literal["fail", "skip", "expand"]
ID_KEY = "autolabel_id"


@dataclass(frozen=True)
class SpanProblem:
    external_id: str
    span: dict[str, Any]
    problem: str  # "not on token boundaries (nearest: 'Londo n')" / "overlaps ..."
    fixed: dict[str, Any] | None = None  # the expanded span, when expanded

    def describe(self) -> str:
        s = self.span
        where = f"[{s['start']}, {s['end']})"
        what = f"record '{self.external_id}' span {where} {s.get('text')!r} {s['label']}"
        tail = f"; expanded to {self.fixed['text']!r}" if self.fixed else ""
        return f"{what}: {self.problem}{tail}"


@dataclass
class EntityExport:
    path: Path
    docs: int
    spans: int
    problems: list[SpanProblem]


def _check(ontology: Ontology) -> None:
    if ontology.task != TaskType.SPANS:
        raise ConfigError(
            f"entity formats hold spans, but '{ontology.name}' is a {ontology.task.value} task",
            hint="use labelstudio or hf export for classify / multi_label runs",
        )


def _fail_on(problems: list[SpanProblem], misaligned: Misaligned, out: Path) -> None:
    if problems and misaligned == "fail":
        raise_problems(
            f"{out} (not written)",
            [p.describe() for p in problems],
            "pass --misaligned skip (leave them out) or --misaligned expand (widen to tokens)",
        )


# -- spaCy -------------------------------------------------------------------------------------


def _spacy() -> Any:
    try:
        import spacy
    except ImportError as exc:
        raise ConfigError("spaCy is not installed", hint="pip install 'autolabel[spacy]'") from exc
    return spacy


def export_docbin(
    ontology: Ontology, records: list[Record], out: Path, *, misaligned: Misaligned = "fail"
) -> EntityExport:
    """Write a ``.spacy`` DocBin: one Doc per record, spans as ``doc.ents``."""
    _check(ontology)
    spacy = _spacy()
    from spacy.tokens import DocBin
    from spacy.util import filter_spans

    nlp = spacy.blank("en")
    docbin = DocBin(store_user_data=True)
    problems: list[SpanProblem] = []
    n_spans = 0
    for rec in records:
        doc = nlp.make_doc(rec.text(ontology))
        ents = []
        for span in rec.label:
            ent = doc.char_span(span["start"], span["end"], label=span["label"])
            if ent is None:
                wide = doc.char_span(
                    span["start"], span["end"], label=span["label"], alignment_mode="expand"
                )
                fixed = None
                if misaligned == "expand" and wide is not None:
                    ent = wide
                    fixed = {
                        **span,
                        "start": wide.start_char,
                        "end": wide.end_char,
                        "text": wide.text,
                    }
                nearest = wide.text if wide is not None else "?"
                problems.append(
                    SpanProblem(
                        rec.external_id,
                        span,
                        f"not on token boundaries (tokens cover {nearest!r})",
                        fixed,
                    )
                )
            if ent is not None:
                ents.append(ent)
        kept = filter_spans(ents)  # doc.ents cannot overlap: keep the longest
        for dropped in (e for e in ents if e not in kept):
            problems.append(
                SpanProblem(
                    rec.external_id,
                    {
                        "start": dropped.start_char,
                        "end": dropped.end_char,
                        "text": dropped.text,
                        "label": dropped.label_,
                    },
                    "overlaps a longer span (spaCy entities cannot overlap)",
                )
            )
        doc.ents = kept
        doc.user_data[ID_KEY] = rec.external_id
        n_spans += len(kept)
        docbin.add(doc)
    _fail_on(problems, misaligned, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(out)
    return EntityExport(out, len(records), n_spans, problems)


def read_docbin(path: Path, ontology: Ontology, *, id_key: str = ID_KEY) -> list[Record]:
    """Records from a DocBin's ``doc.ents``; unknown entity types name file and doc."""
    _check(ontology)
    spacy = _spacy()
    from spacy.tokens import DocBin

    try:
        docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    except Exception as exc:  # msgpack/zlib/OSError: a DocBin that cannot be read
        raise InputError(f"{path}: not a readable spaCy DocBin: {exc}") from exc
    labels = set(ontology.label_names)
    field = ontology.input.fields[0]
    records: list[Record] = []
    problems: list[str] = []
    for number, doc in enumerate(docs, start=1):
        where = f"{path.name} doc {number}"
        spans = [
            {"start": e.start_char, "end": e.end_char, "text": e.text, "label": e.label_}
            for e in doc.ents
        ]
        unknown = sorted({s["label"] for s in spans} - labels)
        if unknown:
            problems.append(
                f"{where}: entity type(s) {unknown} not in '{ontology.name}' "
                f"({', '.join(ontology.label_names)})"
            )
            continue
        inputs = {field: doc.text}
        ext = doc.user_data.get(id_key) if doc.user_data else None
        external_id = str(ext) if ext is not None else external_id_for(ontology, inputs)
        records.append(
            Record(
                external_id=external_id, inputs=inputs, label=spans, source="import", where=where
            )
        )
    raise_problems(str(path), problems, "map the entity types to the ontology's labels")
    if not records:
        raise InputError(f"{path}: the DocBin holds no documents")
    return records


# -- CoNLL / BIO ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[tuple[int, int]]:
    """Word and punctuation tokens as (start, end) offsets."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def bio_tags(
    ontology: Ontology, rec: Record, misaligned: Misaligned
) -> tuple[list[str], list[str], list[SpanProblem]]:
    text = rec.text(ontology)
    tokens = tokenize(text)
    tags = ["O"] * len(tokens)
    problems: list[SpanProblem] = []
    for span in sorted(rec.label, key=lambda s: (s["start"], -s["end"])):
        inside = [i for i, (a, b) in enumerate(tokens) if a < span["end"] and b > span["start"]]
        if not inside:
            problems.append(SpanProblem(rec.external_id, span, "covers no token"))
            continue
        first, last = tokens[inside[0]], tokens[inside[-1]]
        fixed = None
        if first[0] != span["start"] or last[1] != span["end"]:
            if misaligned == "expand":
                fixed = {
                    **span,
                    "start": first[0],
                    "end": last[1],
                    "text": text[first[0] : last[1]],
                }
            problems.append(
                SpanProblem(
                    rec.external_id,
                    span,
                    f"not on token boundaries (tokens cover {text[first[0] : last[1]]!r})",
                    fixed,
                )
            )
            if misaligned != "expand":
                continue
        if any(tags[i] != "O" for i in inside):
            problems.append(SpanProblem(rec.external_id, span, "overlaps another span"))
            continue
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + span["label"]
    return [text[a:b] for a, b in tokens], tags, problems


def export_conll(
    ontology: Ontology, records: list[Record], out: Path, *, misaligned: Misaligned = "fail"
) -> EntityExport:
    """``token TAG`` per line (BIO), a blank line between records."""
    _check(ontology)
    blocks: list[str] = []
    problems: list[SpanProblem] = []
    n_spans = 0
    for rec in records:
        words, tags, found = bio_tags(ontology, rec, misaligned)
        problems += found
        n_spans += sum(t.startswith("B-") for t in tags)
        blocks.append("\n".join(f"{w} {t}" for w, t in zip(words, tags, strict=True)))
    _fail_on(problems, misaligned, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(b for b in blocks if b) + "\n", encoding="utf-8")
    return EntityExport(out, len(records), n_spans, problems)
