"""Label Studio: tasks with pre-annotations out, a JSON export's annotations back in.

Export (what Label Studio's "Import" accepts, https://labelstud.io/guide/predictions):

    [{"data": {"text": "...", "autolabel_id": "ex0"},
      "predictions": [{"model_version": "qwen@1a2b3c", "score": 0.93,
                       "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                   "value": {"choices": ["positive"]}}]}]}]

Spans become ``labels`` results with ``start``/``end``/``text``/``labels`` (one result per
span, each with its own ``score``). Image runs become image tasks: ``data`` holds the image
URL (the input's path after ``image_prefix``, by default Label Studio's local-files route)
and our image reference; classify/multi_label are ``choices`` on the ``<Image>``, boxes are
``rectanglelabels`` in percent of the image (Label Studio's unit), converted back to pixels
on import. The labeling config XML is generated from the
ontology, so the ``from_name``/``to_name`` of every result match a control of the config.

Import reads Label Studio's JSON export (a list of tasks with ``annotations``); each
non-cancelled annotation is one human label, mapped through the ontology. Unknown labels
are reported per file and record, and nothing is written until every record is valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from autolabel.engine.inputs import external_id_for
from autolabel.errors import ConfigError, InputError
from autolabel.evaluation.gold import canonical_gold_label
from autolabel.interop.records import Record, raise_problems
from autolabel.ontology.schema import Ontology, TaskType

CONTROL = "label"  # from_name of every result
ID_KEY = "autolabel_id"  # data key carrying our external id through Label Studio
SUPPORTED = (TaskType.CLASSIFY, TaskType.MULTI_LABEL, TaskType.SPANS, TaskType.BOXES)
# Label Studio serves files of a local storage under this route (LOCAL_FILES_SERVING_ENABLED,
# paths relative to LOCAL_FILES_DOCUMENT_ROOT); give another prefix for images on a web server.
LOCAL_FILES = "/data/local-files/?d="


def _check_task(ontology: Ontology) -> None:
    if ontology.task not in SUPPORTED:
        raise ConfigError(
            f"Label Studio export supports classify, multi_label and spans tasks (and boxes "
            f"on images); "
            f"'{ontology.name}' is a {ontology.task.value} task",
            hint="export fields tasks as JSONL: autolabel export RUN -o labels.jsonl",
        )


def _result_type(ontology: Ontology) -> str:
    if ontology.task == TaskType.BOXES:
        return "rectanglelabels"
    return "labels" if ontology.task == TaskType.SPANS else "choices"


def _target(ontology: Ontology) -> str:
    """The object tag results point at: the image, else the first text field."""
    return ontology.input.image or ontology.input.fields[0]


# -- labeling config ------------------------------------------------------------------------


def labeling_config(ontology: Ontology) -> str:
    """The ``<View>`` XML matching the exported results (Text per input field + one control)."""
    _check_task(ontology)
    target = _target(ontology)
    lines = ["<View>"]
    if ontology.guidelines:
        lines.append(f"  <Header value={quoteattr(ontology.guidelines.strip()[:500])}/>")
    if ontology.input.image:
        image = ontology.input.image
        lines.append(f"  <Image name={quoteattr(image)} value={quoteattr('$' + image)}/>")
    for field in ontology.input.fields:
        lines.append(f"  <Text name={quoteattr(field)} value={quoteattr('$' + field)}/>")
    if ontology.task == TaskType.BOXES:
        lines.append(f'  <RectangleLabels name="{CONTROL}" toName={quoteattr(target)}>')
        tag = "Label"
    elif ontology.task == TaskType.SPANS:
        lines.append(f'  <Labels name="{CONTROL}" toName={quoteattr(target)}>')
        tag = "Label"
    else:
        choice = "single" if ontology.task == TaskType.CLASSIFY else "multiple"
        lines.append(
            f'  <Choices name="{CONTROL}" toName={quoteattr(target)} choice="{choice}" '
            'showInline="false">'
        )
        tag = "Choice"
    keys = ontology.label_keys()
    for label in ontology.labels:
        attrs = f"value={quoteattr(label.name)}"
        if label.description:
            attrs += f" hint={quoteattr(label.description)}"
        if label.name in keys and keys[label.name].isalnum():
            attrs += f" hotkey={quoteattr(keys[label.name])}"
        lines.append(f"    <{tag} {attrs}/>")
    closing = {TaskType.SPANS: "Labels", TaskType.BOXES: "RectangleLabels"}
    lines.append(f"  </{closing.get(ontology.task, 'Choices')}>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


# -- export -----------------------------------------------------------------------------------


def label_result(
    ontology: Ontology, label: Any, scores: Any = None, *, size: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """Label Studio ``result`` entries for one canonical label (``size``: the image's
    width and height, for boxes)."""
    base = {"from_name": CONTROL, "to_name": _target(ontology), "type": _result_type(ontology)}
    if ontology.task == TaskType.BOXES:
        assert size is not None, "boxes need the image size"
        return [_rectangle(base, i, o, size) for i, o in enumerate(label["objects"])]
    if ontology.task == TaskType.CLASSIFY:
        return [{**base, "value": {"choices": [label]}}]
    if ontology.task == TaskType.MULTI_LABEL:
        return [{**base, "value": {"choices": list(label)}}] if label else []
    out = []
    for i, span in enumerate(label):
        entry: dict[str, Any] = {
            **base,
            "id": f"s{i}",
            "value": {
                "start": span["start"],
                "end": span["end"],
                "text": span["text"],
                "labels": [span["label"]],
            },
        }
        if isinstance(scores, list) and i < len(scores) and scores[i] is not None:
            entry["score"] = float(scores[i])
        out.append(entry)
    return out


def _rectangle(
    base: dict[str, Any], i: int, obj: dict[str, Any], size: tuple[int, int]
) -> dict[str, Any]:
    w, h = size
    x, y, bw, bh = (float(v) for v in obj["box"])
    entry: dict[str, Any] = {
        **base,
        "id": f"b{i}",
        "original_width": w,
        "original_height": h,
        "image_rotation": 0,
        "value": {
            "x": 100 * x / w,
            "y": 100 * y / h,
            "width": 100 * bw / w,
            "height": 100 * bh / h,
            "rotation": 0,
            "rectanglelabels": [obj["label"]],
        },
    }
    if obj.get("confidence") is not None:
        entry["score"] = float(obj["confidence"])
    return entry


def _image_data(ontology: Ontology, rec: Record, prefix: str) -> tuple[dict, tuple[int, int]]:
    from autolabel.images import IMAGE_KEY, ImageRef

    ref = ImageRef.from_json(rec.inputs.get(IMAGE_KEY))
    column = ontology.input.image or "image"
    given = rec.inputs.get(column)
    path = str(given) if isinstance(given, str) and given else ref.path
    data = {k: v for k, v in rec.inputs.items() if k != column}
    data[column] = prefix + quote(path.lstrip("/") if prefix else path, safe="/")
    return data, (ref.width, ref.height)


def to_task(ontology: Ontology, rec: Record, *, image_prefix: str = LOCAL_FILES) -> dict[str, Any]:
    size = None
    if ontology.input.image:
        data, size = _image_data(ontology, rec, image_prefix)
    else:
        data = dict(rec.inputs)
    data[ID_KEY] = rec.external_id
    if rec.source != "model":
        # A human-settled label (``--labels final``) arrives as a finished annotation.
        annotation = {"result": label_result(ontology, rec.label, size=size), "ground_truth": False}
        return {"data": data, "annotations": [annotation], "meta": {"source": rec.source}}
    scores = rec.distribution
    if ontology.task == TaskType.BOXES:
        scores = None  # each box carries its own confidence
    prediction: dict[str, Any] = {
        "model_version": rec.model_version or "autolabel",
        "result": label_result(ontology, rec.label, scores, size=size),
    }
    if rec.confidence is not None:
        prediction["score"] = float(rec.confidence)
    return {"data": data, "predictions": [prediction]}


def export_tasks(
    ontology: Ontology, records: list[Record], out: Path, *, image_prefix: str = LOCAL_FILES
) -> tuple[Path, int]:
    """Write ``out`` (tasks JSON) and the labeling config beside it (``<stem>.xml``)."""
    _check_task(ontology)
    tasks = [to_task(ontology, rec, image_prefix=image_prefix) for rec in records]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    config_path = out.with_suffix(".xml")
    config_path.write_text(labeling_config(ontology), encoding="utf-8")
    return config_path, len(tasks)


# -- documented-schema validation (used when label_studio_sdk is not installed) --------------


def validate_tasks(ontology: Ontology, tasks: list[dict[str, Any]]) -> list[str]:
    """Problems with tasks against Label Studio's documented import schema and our config."""
    problems: list[str] = []
    labels = set(ontology.label_names)
    want_type = _result_type(ontology)
    for i, task in enumerate(tasks, start=1):
        if not isinstance(task.get("data"), dict):
            problems.append(f"task {i}: 'data' must be an object")
            continue
        for field in [
            *([ontology.input.image] if ontology.input.image else []),
            *ontology.input.fields,
        ]:
            if field not in task["data"]:
                problems.append(f"task {i}: data has no '{field}' (config uses ${field})")
        for j, pred in enumerate(task.get("predictions", []), start=1):
            if not isinstance(pred.get("result"), list):
                problems.append(f"task {i} prediction {j}: 'result' must be a list")
                continue
            if "score" in pred and not isinstance(pred["score"], int | float):
                problems.append(f"task {i} prediction {j}: 'score' must be a number")
            for r in pred["result"]:
                where = f"task {i} prediction {j}"
                if r.get("from_name") != CONTROL or r.get("to_name") != _target(ontology):
                    problems.append(f"{where}: from_name/to_name do not match the config")
                if r.get("type") != want_type:
                    problems.append(f"{where}: type {r.get('type')!r}, expected {want_type!r}")
                value = r.get("value", {})
                names = value.get(want_type, [])
                if not isinstance(names, list) or not set(names) <= labels:
                    problems.append(f"{where}: {names!r} not in the config's labels")
                if want_type == "labels":
                    start, end = value.get("start"), value.get("end")
                    text = str(task["data"].get(ontology.input.fields[0], ""))
                    if not (isinstance(start, int) and isinstance(end, int) and start < end):
                        problems.append(f"{where}: span needs integer start < end")
                    elif text[start:end] != value.get("text"):
                        problems.append(f"{where}: span text does not match data at offsets")
    return problems


# -- import -----------------------------------------------------------------------------------


def _annotator(annotation: dict[str, Any]) -> str | None:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"labelstudio:{who}" if who not in (None, "") else None


def _label_from_result(ontology: Ontology, result: list[Any], text: str) -> Any:
    """Canonical label from an annotation's results (ValueError names what is wrong)."""
    want = _result_type(ontology)
    chosen: list[str] = []
    spans: list[dict[str, Any]] = []
    boxes: list[dict[str, Any]] = []
    ours = [r for r in result if isinstance(r, dict) and r.get("type") == want]
    # A project may have several controls of this type: prefer the one our config names.
    if any(r.get("from_name") == CONTROL for r in ours):
        ours = [r for r in ours if r.get("from_name") == CONTROL]
    for r in ours:
        value = r.get("value") or {}
        names = value.get(want) or []
        if not isinstance(names, list):
            raise ValueError(f"'{want}' must be a list, got {names!r}")
        if want == "labels":
            for name in names:
                spans.append({"start": value.get("start"), "end": value.get("end"), "label": name})
        elif want == "rectanglelabels":
            boxes.extend({"label": n, "box": _pixels(r, value)} for n in names)
        else:
            chosen.extend(str(n) for n in names)
    if ontology.task == TaskType.BOXES:
        return canonical_gold_label(ontology, {"objects": boxes})
    if ontology.task == TaskType.SPANS:
        return canonical_gold_label(ontology, spans, text=text)
    if ontology.task == TaskType.CLASSIFY:
        if len(chosen) != 1:
            raise ValueError(f"a classify annotation needs exactly one choice, got {chosen}")
        return canonical_gold_label(ontology, chosen[0])
    return canonical_gold_label(ontology, chosen)


def _pixels(result: dict[str, Any], value: dict[str, Any]) -> list[float]:
    """A rectangle in percent of the image back to [x, y, w, h] pixels."""
    w, h = result.get("original_width"), result.get("original_height")
    if not isinstance(w, int | float) or not isinstance(h, int | float) or w <= 0 or h <= 0:
        raise ValueError("a rectangle needs original_width and original_height")
    try:
        return [
            round(float(value["x"]) * w / 100, 2),
            round(float(value["y"]) * h / 100, 2),
            round(float(value["width"]) * w / 100, 2),
            round(float(value["height"]) * h / 100, 2),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a rectangle needs x, y, width and height: {value!r}") from exc


def read_export(path: Path, ontology: Ontology, *, id_column: str | None = None) -> list[Record]:
    """Every non-cancelled annotation of a Label Studio JSON export, as records."""
    _check_task(ontology)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable Label Studio JSON export: {exc}") from exc
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a JSON list of tasks")
    records: list[Record] = []
    problems: list[str] = []
    for number, task in enumerate(tasks, start=1):
        where = f"{path.name} record {number}"
        if isinstance(task, dict) and task.get("id") is not None:
            where += f" (task id {task['id']})"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            problems.append(f"{where}: no 'data' object")
            continue
        missing = [f for f in ontology.input.fields if f not in data]
        if missing:
            problems.append(f"{where}: data has no field(s) {missing} of '{ontology.name}'")
            continue
        external_id = (
            str(data[ID_KEY]) if ID_KEY in data else external_id_for(ontology, data, id_column)
        )
        inputs = {f: data[f] for f in ontology.input.fields}
        for key in (ontology.input.image, "__image__"):
            if key and key in data:
                inputs[key] = data[key]
        text = str(inputs[ontology.input.fields[0]]) if ontology.input.fields else ""
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            try:
                label = _label_from_result(ontology, annotation.get("result") or [], text)
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: {exc}")
                continue
            records.append(
                Record(
                    external_id=external_id,
                    inputs=inputs,
                    label=label,
                    source="human",
                    annotator=_annotator(annotation),
                    where=where,
                )
            )
    raise_problems(
        str(path),
        problems,
        f"map the labels to those of '{ontology.name}' ({', '.join(ontology.label_names[:12])})",
    )
    if not records:
        raise InputError(f"{path}: no annotations (only cancelled or unannotated tasks)")
    return records


def latest_per_item(records: list[Record]) -> list[Record]:
    """One record per item (the last annotation), as a gold set needs."""
    by_id: dict[str, Record] = {}
    for rec in records:
        by_id[rec.external_id] = rec
    return list(by_id.values())
