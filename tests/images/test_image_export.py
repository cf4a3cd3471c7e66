"""COCO and YOLO export of image runs, read back with pycocotools; the CLI flow end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.errors import ConfigError
from autolabel.interop.coco import export_coco
from autolabel.interop.records import load_run, run_ontology, run_records
from autolabel.interop.yolo import export_yolo
from autolabel.ontology.schema import Ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store import Database
from autolabel.testing import FakeOpenAIServer
from tests.cli.test_cli import autolabel
from tests.images.pictures import shapes, solid

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

DRAWN = [
    {"red": (20, 10, 60, 40), "blue": (120, 50, 40, 40)},
    {"green": (5, 5, 50, 50)},
    {},
]


def _label(tmp_path: Path, task: str, rows: list[dict[str, str]]) -> tuple[Database, int]:
    ont = Ontology.model_validate(
        {
            "name": f"shapes_{task}",
            "task": task,
            "input": {"image": "image", "max_side": 200},
            "labels": [{"name": "red"}, {"name": "green"}, {"name": "blue"}],
        }
    )
    data = tmp_path / "data.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["id", "image"])
        w.writeheader()
        w.writerows(rows)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with FakeOpenAIServer() as srv:
        provider = OpenAIProvider(model="fake-vision", base_url=srv.base_url, api_key="unused")
        summary = run_job(
            LabelJob(ontology=ont, data=data, provider=provider, db=db, progress=False)
        )
    assert summary.n_labeled == len(rows)
    return db, summary.run_id


def _boxes_run(tmp_path: Path) -> tuple[Database, int]:
    rows = []
    for i, drawn in enumerate(DRAWN):
        shapes(tmp_path / "pics" / f"s{i}.png", drawn)
        rows.append({"id": f"s{i}", "image": f"pics/s{i}.png"})
    return _label(tmp_path, "boxes", rows)


def test_coco_export_of_boxes_loads_in_pycocotools_and_scores_itself(tmp_path: Path) -> None:
    db, run_id = _boxes_run(tmp_path)
    run = load_run(db, run_id)
    out = tmp_path / "coco.json"
    n_images, n_ann = export_coco(run_ontology(run), run_records(db, run), out)
    assert (n_images, n_ann) == (3, 3)
    coco = COCO(str(out))  # the reference loader indexes images, categories, annotations
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["red", "green", "blue"]
    first = coco.loadImgs([1])[0]
    assert (first["file_name"], first["width"], first["height"]) == ("pics/s0.png", 200, 100)
    red = coco.loadAnns(coco.getAnnIds(imgIds=[1], catIds=[1]))[0]
    assert red["bbox"] == pytest.approx([20, 10, 60, 40], abs=2.5)
    assert 0 < red["score"] <= 1 and red["area"] == pytest.approx(60 * 40, rel=0.1)
    assert coco.getAnnIds(imgIds=[3]) == []  # a picture without objects
    # The export is also a valid results file: scored against itself, AP is 1.
    results = json.loads(out.read_text())["annotations"]
    ev = COCOeval(coco, coco.loadRes(results), iouType="bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_yolo_export_normalises_centres_and_sizes(tmp_path: Path) -> None:
    db, run_id = _boxes_run(tmp_path)
    run = load_run(db, run_id)
    export_yolo(run_ontology(run), run_records(db, run), tmp_path / "yolo", confidence=True)
    lines = (tmp_path / "yolo" / "labels" / "pics" / "s0.txt").read_text().splitlines()
    red = [float(v) for v in lines[0].split()]
    # red [20, 10, 60, 40] on 200x100: centre (50, 30) -> (0.25, 0.30), size (0.30, 0.40).
    assert red[0] == 0 and red[1:5] == pytest.approx([0.25, 0.30, 0.30, 0.40], abs=0.02)
    assert 0 < red[5] <= 1
    assert (tmp_path / "yolo" / "labels" / "pics" / "s2.txt").read_text() == ""
    assert (tmp_path / "yolo" / "classes.txt").read_text().split() == ["red", "green", "blue"]


def test_coco_export_of_classification_has_whole_image_boxes(tmp_path: Path) -> None:
    rows = []
    for i, colour in enumerate(["red", "blue"]):
        solid(tmp_path / "pics" / f"{i}.png", colour, size=(30, 20))
        rows.append({"id": f"c{i}", "image": f"pics/{i}.png"})
    db, run_id = _label(tmp_path, "classify", rows)
    run = load_run(db, run_id)
    out = tmp_path / "coco.json"
    export_coco(run_ontology(run), run_records(db, run), out)
    coco = COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in anns] == [
        (1, 1, [0, 0, 30, 20]),
        (2, 3, [0, 0, 30, 20]),
    ]
    with pytest.raises(ConfigError, match="YOLO txt holds boxes"):
        export_yolo(run_ontology(run), run_records(db, run), tmp_path / "y")


def test_cli_folder_to_gold_eval_and_coco(tmp_path: Path) -> None:
    """A folder with class sub-folders: label, import its folders as gold, evaluate, export."""
    for i, colour in enumerate(["red", "green", "blue", "red"]):
        solid(tmp_path / "set" / colour / f"{i}.png", colour, size=(40, 30 + i))
    ont = tmp_path / "colours.yaml"
    ont.write_text(
        "name: colours\ntask: classify\ninput: {image: image}\n"
        "labels: [{name: red}, {name: green}, {name: blue}]\n",
        encoding="utf-8",
    )
    env = {"AUTOLABEL_DB": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    folder = str(tmp_path / "set")
    with FakeOpenAIServer() as srv:
        out = autolabel(
            "label", str(ont), folder, "--base-url", srv.base_url, "--model", "m", "--quiet",
            env=env,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    out = autolabel("gold", "import", folder, "-o", str(ont), env=env)
    assert out.returncode == 0, out.stderr
    out = autolabel("eval", "1", env=env)
    assert out.returncode == 0, out.stderr
    assert "100.0%" in out.stdout  # the responder reads the colours right
    coco = tmp_path / "c.json"
    out = autolabel("coco", "export", "1", "-o", str(coco), env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(coco.read_text())
    assert sorted(i["file_name"] for i in data["images"]) == [
        "blue/2.png",
        "green/1.png",
        "red/0.png",
        "red/3.png",
    ]


def test_label_studio_image_tasks_round_trip_boxes(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    from autolabel.interop import labelstudio

    db, run_id = _boxes_run(tmp_path)
    run = load_run(db, run_id)
    ont = run_ontology(run)
    out = tmp_path / "ls.json"
    labelstudio.export_tasks(ont, run_records(db, run), out)
    tasks = json.loads(out.read_text())
    config = ElementTree.fromstring((tmp_path / "ls.xml").read_text())
    assert config.find("Image").get("value") == "$image"
    assert config.find("RectangleLabels").get("toName") == "image"
    assert labelstudio.validate_tasks(ont, tasks) == []
    first = tasks[0]
    assert first["data"]["image"] == "/data/local-files/?d=pics/s0.png"
    red = first["predictions"][0]["result"][0]
    # red [20, 10, 60, 40] on 200x100 is x 10%, y 10%, 30% wide, 40% high.
    assert red["value"]["rectanglelabels"] == ["red"]
    assert [red["value"][k] for k in ("x", "y", "width", "height")] == pytest.approx(
        [10, 10, 30, 40], abs=1.5
    )
    assert (red["original_width"], red["original_height"]) == (200, 100) and 0 < red["score"] <= 1
    # An annotator accepts the pre-annotations: the boxes come back in pixels.
    export = tmp_path / "export.json"
    accepted = [
        {"id": i, "data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]}
        for i, t in enumerate(tasks, start=1)
    ]
    export.write_text(json.dumps(accepted))
    back = {r.external_id: r for r in labelstudio.read_export(export, ont)}
    assert [o["label"] for o in back["s0"].label["objects"]] == ["red", "blue"]
    assert back["s0"].label["objects"][0]["box"] == pytest.approx([20, 10, 60, 40], abs=2.5)
    assert back["s2"].label == {"objects": []}
