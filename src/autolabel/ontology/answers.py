"""The answer contract per task type: JSON schema, canonical form and validation.

Canonical answers (what predictions store as ``label``):
- classify: ``"positive"``
- multi_label: ``["anger", "joy"]`` in ontology order
- spans: ``[{"start": 0, "end": 5, "text": "Paris", "label": "LOC"}, ...]`` sorted by start
- fields: ``{"price": 12.5, "currency": "EUR"}``
- boxes: ``{"objects": [{"label": "cat", "box": [x, y, w, h], "confidence": 0.9}]}``, boxes
  in pixels of the original image, sorted by (y, x); ``confidence`` is filled in by
  scoring (a model's own number is not trusted), ``None`` until then.
"""

from __future__ import annotations

import json
import re
from typing import Any

from autolabel.errors import AnswerError
from autolabel.ontology.schema import Ontology, TaskType

_JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "date": "string",
}


def answer_schema(ontology: Ontology) -> dict[str, Any]:
    labels = ontology.label_names
    if ontology.task == TaskType.CLASSIFY:
        props: dict[str, Any] = {"label": {"type": "string", "enum": labels}}
        required = ["label"]
    elif ontology.task == TaskType.MULTI_LABEL:
        props = {
            "labels": {"type": "array", "items": {"type": "string", "enum": labels}},
        }
        required = ["labels"]
    elif ontology.task == TaskType.SPANS:
        entity = {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "label": {"type": "string", "enum": labels},
            },
            "required": ["text", "label"],
            "additionalProperties": False,
        }
        props = {"entities": {"type": "array", "items": entity}}
        required = ["entities"]
    elif ontology.task == TaskType.BOXES:
        obj = {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": labels},
                "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
            },
            "required": ["label", "box"],
            "additionalProperties": False,
        }
        props = {"objects": {"type": "array", "items": obj}}
        required = ["objects"]
    else:
        props = {}
        required = []
        for f in ontology.fields:
            spec: dict[str, Any] = {"type": _JSON_TYPES[f.type]}
            if f.enum:
                spec["enum"] = list(f.enum)
            if f.description:
                spec["description"] = f.description
            if not f.required:
                spec = {"anyOf": [spec, {"type": "null"}]}
            props[f.name] = spec
            required.append(f.name)  # optional fields are present but may be null
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


LISTED_PREFIX = '{"labels": ["'


def answer_prefix(ontology: Ontology) -> str:
    """The fixed start of an answer after which label choices are scored: a classify
    label, or the lead of a ``listed`` multi-label answer (empty: nothing to score)."""
    if ontology.task == TaskType.CLASSIFY:
        return '{"label": "'
    if ontology.listed_scoring:
        return LISTED_PREFIX
    return ""


def format_answer(ontology: Ontology, output: Any) -> str:
    """Render a few-shot example's output exactly as we ask the model to answer."""
    if ontology.task == TaskType.CLASSIFY:
        return json.dumps({"label": output}, ensure_ascii=False)
    if ontology.task == TaskType.MULTI_LABEL:
        return json.dumps({"labels": list(output)}, ensure_ascii=False)
    if ontology.task == TaskType.SPANS:
        ents = [{"text": o["text"], "label": o["label"]} for o in output]
        return json.dumps({"entities": ents}, ensure_ascii=False)
    if ontology.task == TaskType.BOXES:
        objs = [{"label": o["label"], "box": o["box"]} for o in output["objects"]]
        return json.dumps({"objects": objs}, ensure_ascii=False)
    return json.dumps(output, ensure_ascii=False)


def extract_json(raw: str) -> Any:
    """Parse a JSON object from a model's text: plain, fenced in ```json, or embedded."""
    text = raw.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = text.find("{")
    while start != -1:
        depth = 0
        in_str = False
        esc = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        return json.loads(text[start : i + 1])
                    except json.JSONDecodeError:
                        break
        start = text.find("{", start + 1)
    raise AnswerError("the answer is not valid JSON", raw=raw[:500])


def _match_label(value: Any, labels: list[str]) -> str:
    if not isinstance(value, str):
        raise AnswerError(f"expected a label name, got {type(value).__name__} {value!r}")
    if value in labels:
        return value
    folded = {label.casefold(): label for label in labels}
    hit = folded.get(value.strip().casefold())
    if hit is None:
        raise AnswerError(f"'{value}' is not one of the labels ({', '.join(labels[:10])}…)")
    return hit


def parse_answer(ontology: Ontology, raw: str | Any, item: dict[str, Any] | None = None) -> Any:
    """Validate a model answer (text or already-parsed JSON) into its canonical form."""
    data = extract_json(raw) if isinstance(raw, str) else raw
    raw_text = raw if isinstance(raw, str) else json.dumps(raw)
    if not isinstance(data, dict):
        raise AnswerError("the answer must be a JSON object", raw=raw_text[:500])
    labels = ontology.label_names
    task = ontology.task
    if task == TaskType.CLASSIFY:
        if "label" not in data:
            raise AnswerError("the answer has no 'label' key", raw=raw_text[:500])
        return _match_label(data["label"], labels)
    if task == TaskType.MULTI_LABEL:
        chosen = data.get("labels")
        if not isinstance(chosen, list):
            raise AnswerError("'labels' must be a list", raw=raw_text[:500])
        picked = {_match_label(v, labels) for v in chosen}
        return [label for label in labels if label in picked]
    if task == TaskType.SPANS:
        ents = data.get("entities")
        if not isinstance(ents, list):
            raise AnswerError("'entities' must be a list", raw=raw_text[:500])
        text = _span_source(ontology, item or {})
        return align_spans(text, ents, labels)
    if task == TaskType.BOXES:
        try:
            objects = canonical_boxes(data, labels, scale=_box_scale(ontology, item or {}))
        except ValueError as exc:
            raise AnswerError(str(exc), raw=raw_text[:500]) from None
        return objects
    return _parse_fields(ontology, data, raw_text)


def _box_scale(ontology: Ontology, item: dict[str, Any]) -> tuple[float, float]:
    """From the pixels the model saw (resized to ``max_side``) to the original image's."""
    from autolabel.images import IMAGE_KEY, sent_size

    ref = item.get(IMAGE_KEY)
    if not isinstance(ref, dict):
        return 1.0, 1.0
    w, h = int(ref["width"]), int(ref["height"])
    sw, sh = sent_size(w, h, ontology.input.max_side)
    return w / sw, h / sh


def canonical_boxes(
    data: Any, labels: list[str], *, scale: tuple[float, float] = (1.0, 1.0)
) -> dict[str, Any]:
    """``{"objects": [...]}`` with known labels and [x, y, w, h] boxes of positive size;
    ValueError says what is wrong. A given ``confidence`` is kept (gold has none)."""
    objects = data.get("objects") if isinstance(data, dict) else data
    if not isinstance(objects, list):
        raise ValueError("'objects' must be a list of {label, box: [x, y, w, h]}")
    out: list[dict[str, Any]] = []
    for obj in objects:
        if not isinstance(obj, dict):
            raise ValueError(f"an object must be {{label, box}}, got {obj!r}")
        try:
            label = _match_label(obj.get("label"), labels)
        except AnswerError as exc:
            raise ValueError(exc.message) from None
        box = obj.get("box")
        if (
            not isinstance(box, list | tuple)
            or len(box) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
        ):
            raise ValueError(f"a box must be [x, y, width, height] in pixels, got {box!r}")
        x, y, w, h = (float(v) for v in box)
        if w <= 0 or h <= 0:
            raise ValueError(f"a box needs a positive width and height, got {box!r}")
        sx, sy = scale
        conf = obj.get("confidence")
        scaled = [round(x * sx, 2), round(y * sy, 2), round(w * sx, 2), round(h * sy, 2)]
        entry = {"label": label, "box": scaled, "confidence": conf}
        if entry not in out:
            out.append(entry)
    out.sort(key=lambda o: (o["box"][1], o["box"][0], o["label"]))
    return {"objects": out}


def _span_source(ontology: Ontology, item: dict[str, Any]) -> str:
    return str(item.get(ontology.input.fields[0], ""))


def align_spans(text: str, entities: list[Any], labels: list[str]) -> list[dict[str, Any]]:
    """Locate each entity's text in ``text`` (in order, then anywhere, then ignoring case).

    An entity whose text is not in the item is an error (the answer is re-asked), not
    silently dropped: a model that invents or paraphrases a mention should be told so.
    """
    out: list[dict[str, Any]] = []
    cursor = 0
    for ent in entities:
        if not isinstance(ent, dict) or not isinstance(ent.get("text"), str):
            raise AnswerError(f"an entity must be {{text, label}}, got {ent!r}")
        label = _match_label(ent.get("label"), labels)
        needle = ent["text"].strip()
        if not needle:
            continue
        start = text.find(needle, cursor)
        if start == -1:
            start = text.find(needle)
        if start == -1:
            # Character-wise (not str.casefold, which can change lengths: ß → ss), so
            # the offsets stay exact.
            found = re.search(re.escape(needle), text, re.IGNORECASE)
            start = found.start() if found and found.end() - found.start() == len(needle) else -1
        if start == -1:
            raise AnswerError(
                f"the entity {needle[:80]!r} does not occur in the item text: copy each "
                "entity exactly as written in the item"
            )
        end = start + len(needle)
        span = {"start": start, "end": end, "text": text[start:end], "label": label}
        if span not in out:
            out.append(span)
        cursor = end
    return sorted(out, key=lambda s: (s["start"], s["end"]))


def _parse_fields(ontology: Ontology, data: dict[str, Any], raw_text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in ontology.fields:
        value = data.get(f.name)
        if value is None:
            if f.required:
                raise AnswerError(f"field '{f.name}' is required", raw=raw_text[:500])
            out[f.name] = None
            continue
        ok = {
            "string": isinstance(value, str),
            "date": isinstance(value, str),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
        }[f.type]
        if not ok:
            raise AnswerError(
                f"field '{f.name}' must be {f.type}, got {value!r}", raw=raw_text[:500]
            )
        if f.enum and value not in f.enum:
            raise AnswerError(f"field '{f.name}': {value!r} not in {f.enum}", raw=raw_text[:500])
        out[f.name] = value
    return out
