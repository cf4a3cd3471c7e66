"""YOLO txt export of a boxes run (the Ultralytics / darknet layout).

One ``labels/<image path>.txt`` per image, mirroring the input's folders, one line per
object: ``class cx cy w h`` normalised to [0, 1] by the image size, plus the confidence
as a sixth column with ``confidence=True`` (what ``yolo predict --save-conf`` writes).
``classes.txt`` lists the class names in id order (0-based, the ontology's label order)
and ``data.yaml`` names them for training. Images without objects get an empty file,
which YOLO reads as background.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from autolabel.errors import ConfigError
from autolabel.interop.coco import file_name, image_ref
from autolabel.interop.records import Record
from autolabel.ontology.schema import Ontology, TaskType


def export_yolo(
    ontology: Ontology, records: list[Record], out_dir: Path, *, confidence: bool = False
) -> int:
    """Write the label files under ``out_dir``; returns the number of images."""
    if ontology.task != TaskType.BOXES:
        raise ConfigError(
            f"YOLO txt holds boxes; '{ontology.name}' is a {ontology.task.value} task",
            hint="export image classification as COCO: autolabel coco export RUN -o labels.json",
        )
    ids = {name: i for i, name in enumerate(ontology.label_names)}
    labels_dir = out_dir / "labels"
    for rec in records:
        ref = image_ref(rec)
        rel = PurePosixPath(file_name(ontology, rec))
        # An absolute path (image given as such) keeps only its name under labels/.
        target = labels_dir / (rel.name if rel.is_absolute() else rel)
        target = target.with_suffix(".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for o in rec.label["objects"]:
            x, y, w, h = (float(v) for v in o["box"])
            cx, cy = (x + w / 2) / ref.width, (y + h / 2) / ref.height
            row = f"{ids[o['label']]} {cx:.6f} {cy:.6f} {w / ref.width:.6f} {h / ref.height:.6f}"
            if confidence:
                conf = o.get("confidence")
                row += f" {float(conf) if conf is not None else 1.0:.6f}"
            lines.append(row)
        target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("".join(n + "\n" for n in ids), encoding="utf-8")
    names = {i: n for n, i in ids.items()}
    (out_dir / "data.yaml").write_text(
        yaml.safe_dump({"nc": len(ids), "names": names}, sort_keys=False), encoding="utf-8"
    )
    return len(records)
