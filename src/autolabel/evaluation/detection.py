"""Box metrics: COCO mAP@0.5 and mAP@[.5:.95], overall and per class, by pycocotools.

The average precision is COCOeval's own (101-point interpolation, greedy matching by
score, ``maxDets`` 100), not a re-implementation: numbers here are the numbers every
detection paper and tool reports. Gold and predictions are the canonical boxes answers
(``{"objects": [{label, box [x, y, w, h], confidence}]}``); a prediction's score is its
object's confidence. pycocotools is the ``images`` extra; it is imported only here.

A class with no gold object anywhere has no AP (``None``), as in COCO; the means are
over classes that have one.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from typing import Any

from autolabel.engine.confidence import same_boxes as box_answers_match
from autolabel.errors import EvaluationError


@dataclass(frozen=True)
class ClassAP:
    label: str
    n_gold: int
    n_pred: int
    ap50: float | None
    ap: float | None  # mean over IoU 0.50:0.05:0.95


@dataclass
class DetectionMetrics:
    n: int
    n_failed: int
    map50: float | None
    map: float | None
    per_class: list[ClassAP]
    item_accuracy: float  # items whose boxes all match one to one (IoU >= 0.5, same label)

    @property
    def accuracy(self) -> float:
        return self.item_accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cocoeval() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise EvaluationError(
            "mAP for boxes needs pycocotools",
            hint="pip install 'autolabel[images]'",
        ) from exc
    return COCO, COCOeval


def detection_metrics(
    gold: list[dict[str, Any]], pred: list[dict[str, Any] | None], labels: list[str]
) -> DetectionMetrics:
    """mAP of ``pred`` against ``gold`` (one answer per image, in the same order)."""
    COCO, COCOeval = _cocoeval()
    category = {name: i for i, name in enumerate(labels, start=1)}
    images, gt_anns, dt_anns = [], [], []
    for image_id, (g, p) in enumerate(zip(gold, pred, strict=True), start=1):
        # COCO needs an image size; only its presence matters for bbox evaluation.
        images.append({"id": image_id, "width": 1, "height": 1})
        for o in g["objects"]:
            x, y, w, h = (float(v) for v in o["box"])
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": image_id,
                    "category_id": category[o["label"]],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for o in (p or {"objects": []})["objects"]:
            conf = o.get("confidence")
            dt_anns.append(
                {
                    "image_id": image_id,
                    "category_id": category[o["label"]],
                    "bbox": [float(v) for v in o["box"]],
                    "score": float(conf) if conf is not None else 1.0,
                }
            )
    n_gold = {name: 0 for name in labels}
    n_pred = {name: 0 for name in labels}
    for a in gt_anns:
        n_gold[labels[a["category_id"] - 1]] += 1
    for a in dt_anns:
        n_pred[labels[a["category_id"] - 1]] += 1
    precision = _precision(COCO, COCOeval, images, gt_anns, dt_anns, category)
    per_class = []
    for k, name in enumerate(labels):
        if n_gold[name] == 0:
            ap50 = ap = None
        elif precision is None:  # no predictions at all: nothing found
            ap50 = ap = 0.0
        else:
            ap50 = _mean(precision[0, :, k, 0, -1])
            ap = _mean(precision[:, :, k, 0, -1])
        per_class.append(ClassAP(name, n_gold[name], n_pred[name], ap50, ap))
    scored = [c for c in per_class if c.ap is not None]
    ok = [box_answers_match(g, p) for g, p in zip(gold, pred, strict=True)]
    return DetectionMetrics(
        n=len(gold),
        n_failed=sum(1 for p in pred if p is None),
        map50=sum(c.ap50 for c in scored) / len(scored) if scored else None,  # type: ignore[misc]
        map=sum(c.ap for c in scored) / len(scored) if scored else None,  # type: ignore[misc]
        per_class=per_class,
        item_accuracy=sum(ok) / len(ok) if ok else 0.0,
    )


def _precision(COCO: Any, COCOeval: Any, images, gt_anns, dt_anns, category) -> Any:
    """COCOeval's precision array [iou, recall, class, area, maxDets], or None if no boxes."""
    if not dt_anns or not gt_anns:
        return None
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": gt_anns,
        "categories": [{"id": i, "name": n} for n, i in category.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt.createIndex()
        dt = gt.loadRes(dt_anns)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.catIds = list(category.values())
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"]


def _mean(values: Any) -> float:
    """Mean over entries COCOeval computed (-1 marks 'no gold for this class')."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else 0.0
