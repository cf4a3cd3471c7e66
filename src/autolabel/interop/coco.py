"""COCO JSON export of an image run (https://cocodataset.org/#format-data).

    {"info": {...}, "licenses": [],
     "images": [{"id": 1, "file_name": "cats/a.jpg", "width": 640, "height": 480,
                 "autolabel_id": "3f2a...", "sha256": "..."}],
     "categories": [{"id": 1, "name": "cat", "supercategory": "colours"}],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h],
                      "area": w*h, "iscrowd": 0, "score": 0.93, "source": "model"}]}

Boxes tasks give one annotation per object, ``score`` its confidence. Classification has
no box: each label is an annotation whose ``bbox`` is the whole image (what COCO-based
tools accept for image-level labels), ``score`` the label's probability. Human labels
(``--labels final``) carry ``score`` 1.0 and their ``source``. ``file_name`` is the image
path as the input named it (relative to the data file or the image folder).

Category ids follow the ontology's label order from 1, so exports of two runs of one
ontology agree. Everything needed is in the standard library; ``pycocotools`` (extra
``images``) reads the file back, in the tests and in ``evaluation/detection.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autolabel.errors import ConfigError
from autolabel.images import IMAGE_KEY, ImageRef
from autolabel.interop.records import Record
from autolabel.ontology.schema import Ontology, TaskType


def _check(ontology: Ontology) -> None:
    if ontology.input.image is None or ontology.task not in (
        TaskType.CLASSIFY,
        TaskType.MULTI_LABEL,
        TaskType.BOXES,
    ):
        raise ConfigError(
            f"COCO export is for image runs (classify, multi_label, boxes); "
            f"'{ontology.name}' is a {ontology.task.value} task over text",
            hint="export text runs with: autolabel export RUN -o labels.jsonl",
        )


def image_ref(rec: Record) -> ImageRef:
    return ImageRef.from_json(rec.inputs.get(IMAGE_KEY))


def file_name(ontology: Ontology, rec: Record) -> str:
    """The image path as the input named it, else the stored absolute path."""
    given = rec.inputs.get(ontology.input.image or "")
    return str(given) if isinstance(given, str) and given else image_ref(rec).path


def _objects(ontology: Ontology, rec: Record, ref: ImageRef) -> list[tuple[str, list, float]]:
    """(label, bbox, score) for each annotation of one record."""
    human = rec.source != "model"
    whole = [0.0, 0.0, float(ref.width), float(ref.height)]
    if ontology.task == TaskType.BOXES:
        return [
            (o["label"], [float(v) for v in o["box"]], 1.0 if human else _score(o["confidence"]))
            for o in rec.label["objects"]
        ]
    dist = rec.distribution if isinstance(rec.distribution, dict) else {}
    if ontology.task == TaskType.CLASSIFY:
        conf = rec.confidence if rec.confidence is not None else dist.get(rec.label)
        return [(rec.label, whole, 1.0 if human else _score(conf))]
    return [(name, whole, 1.0 if human else _score(dist.get(name))) for name in rec.label]


def _score(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 1.0


def to_coco(ontology: Ontology, records: list[Record], *, description: str = "") -> dict[str, Any]:
    _check(ontology)
    category = {name: i for i, name in enumerate(ontology.label_names, start=1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, rec in enumerate(records, start=1):
        ref = image_ref(rec)
        images.append(
            {
                "id": image_id,
                "file_name": file_name(ontology, rec),
                "width": ref.width,
                "height": ref.height,
                "autolabel_id": rec.external_id,
                "sha256": ref.sha256,
            }
        )
        for label, box, score in _objects(ontology, rec, ref):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[label],
                    "bbox": [round(v, 2) for v in box],
                    "area": round(box[2] * box[3], 2),
                    "iscrowd": 0,
                    "score": round(score, 6),
                    "source": rec.source,
                }
            )
    return {
        "info": {
            "description": description or f"autolabel {ontology.name} ({ontology.task.value})",
            "version": ontology.version,
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images,
        "categories": [
            {"id": i, "name": name, "supercategory": ontology.name} for name, i in category.items()
        ],
        "annotations": annotations,
    }


def export_coco(ontology: Ontology, records: list[Record], out: Path) -> tuple[int, int]:
    """Write the COCO JSON; returns (images, annotations)."""
    data = to_coco(ontology, records)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return len(data["images"]), len(data["annotations"])
