"""Image items go through routing and the review queue like text: the reviewer sees the
picture's reference, and a boxes decision (a box deleted) becomes the exported label."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.interop.coco import to_coco
from autolabel.interop.records import load_run, run_ontology, run_records
from autolabel.ontology.schema import Ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.review.queue import ReviewQueue
from autolabel.review.routing import route
from autolabel.store import Database
from autolabel.testing import FakeOpenAIServer, chat_reply, default_responder
from tests.images.pictures import shapes

ONT = Ontology.model_validate(
    {
        "name": "shapes",
        "task": "boxes",
        "input": {"image": "image"},
        "labels": [{"name": "red"}, {"name": "green"}, {"name": "blue"}],
        "review": {"threshold": 0.9},
    }
)


def _unsure_about_green(request: dict) -> object:
    """The loopback model's boxes, with the 'green' label's tokens at ~50%."""
    reply = default_responder(request)
    content = reply.body["choices"][0]["message"]["content"]
    if '"green"' not in content:
        return reply
    lps = [
        {**e, "logprob": -0.7 if e["token"] == "green" else e["logprob"]}
        for e in reply.body["choices"][0]["logprobs"]["content"]
    ]
    return chat_reply(request, content, logprobs=lps)


def test_unsure_image_items_are_routed_and_reviewed(tmp_path: Path) -> None:
    shapes(tmp_path / "a.png", {"red": (20, 10, 60, 40)})
    shapes(tmp_path / "b.png", {"red": (10, 10, 30, 30), "green": (100, 40, 50, 50)})
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "image"], ["a", "a.png"], ["b", "b.png"]])
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with FakeOpenAIServer(_unsure_about_green) as srv:
        provider = OpenAIProvider(model="m", base_url=srv.base_url, api_key="unused")
        summary = run_job(
            LabelJob(ontology=ONT, data=data, provider=provider, db=db, progress=False)
        )
    report = route(db, [summary.run_id])
    assert (report.queued, report.auto_accepted) == (1, 1)  # b: green ~50% sure
    assert report.per_label["green"] == {"auto": 0, "queued": 1}

    queue = ReviewQueue(db)
    view = queue.claim("ana")
    assert view is not None and view.external_id == "b" and view.task_type == "boxes"
    picture = view.fields["__image__"]
    assert Path(picture["path"]) == (tmp_path / "b.png").resolve()
    assert (picture["width"], picture["height"]) == (200, 100)
    assert "low_confidence" in view.reasons
    kept = [o for o in view.suggestion["objects"] if o["label"] != "green"]
    queue.decide(view.task_id, "ana", {"objects": kept})
    assert queue.claim("ana") is None

    run = load_run(db, summary.run_id)
    final = {r.external_id: r for r in run_records(db, run, labels="final")}
    assert final["b"].source != "model"
    assert [o["label"] for o in final["b"].label["objects"]] == ["red"]
    coco = to_coco(run_ontology(run), list(final.values()))
    by_image = {i["autolabel_id"]: i["id"] for i in coco["images"]}
    b_anns = [a for a in coco["annotations"] if a["image_id"] == by_image["b"]]
    assert [(a["category_id"], a["score"]) for a in b_anns] == [(1, 1.0)]
    json.dumps(coco)  # serialisable as is
