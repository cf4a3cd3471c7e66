"""Image items through the real ``openai`` client against the loopback OpenAI-protocol server.

The server decodes every picture it receives and its default responder answers from the
pixels (the colour of the picture or of its shapes), so a right label proves the right
picture arrived, and a box in original pixels proves the resize was undone.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, RunSummary, run_job
from autolabel.ontology.schema import Ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store import Database
from autolabel.store.tables import Item, Prediction
from autolabel.testing import FakeOpenAIServer, images_in
from tests.images.pictures import shapes, solid

COLOURS = [{"name": "red"}, {"name": "green"}, {"name": "blue"}]


def _ontology(task: str = "classify", max_side: int = 32) -> Ontology:
    return Ontology.model_validate(
        {
            "name": f"colour_{task}",
            "task": task,
            "input": {"image": "image", "max_side": max_side},
            "labels": COLOURS,
        }
    )


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["id", "image"])
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """Six solid pictures (64x48, larger than the 32 px the ontology sends) + a CSV."""
    rows = []
    for i, colour in enumerate(["red", "green", "blue", "red", "green", "blue"]):
        # Each a shade apart so no two are the same bytes (one item each).
        solid(tmp_path / "pics" / f"{i}.png", colour, size=(64, 48 + i))
        rows.append({"id": f"p{i}", "image": f"pics/{i}.png"})
    return _csv(tmp_path / "data.csv", rows)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _run(srv: FakeOpenAIServer, db: Database, data: Path, ont: Ontology, cache=None, **kw):
    provider = OpenAIProvider(model="fake-vision", base_url=srv.base_url, api_key="unused")
    job = LabelJob(ontology=ont, data=data, provider=provider, db=db, cache=cache, **kw)
    return run_job(job)


def _predictions(db: Database, summary: RunSummary) -> dict[str, Prediction]:
    with db.session() as s:
        preds = s.exec(select(Prediction).where(Prediction.run_id == summary.run_id)).scalars()
        items = {i.id: i.external_id for i in s.exec(select(Item)).scalars()}
        return {items[p.item_id]: p for p in preds}


def test_classify_sends_resized_data_urls_and_scores_logprobs(
    pictures: Path, db: Database, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache")
    with FakeOpenAIServer(max_image_side=32) as srv:  # a 400 for anything larger
        first = _run(srv, db, pictures, _ontology(), cache, progress=False)
        sent = [img for r in srv.chat_requests() for img in images_in(r.json)]
        part = srv.chat_requests()[0].json["messages"][-1]["content"][1]
        srv.clear()
        again = _run(srv, db, pictures, _ontology(), cache, progress=False, new_run=True)
        assert srv.chat_requests() == []  # every answer from the cache
    assert first.n_labeled == 6 and first.n_failed == 0
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert len(sent) == 6 and {max(i.width, i.height) for i in sent} == {32}
    preds = _predictions(db, first)
    assert {k: p.label for k, p in preds.items()} == {
        "p0": "red",
        "p1": "green",
        "p2": "blue",
        "p3": "red",
        "p4": "green",
        "p5": "blue",
    }
    assert all(p.method == "token_logprobs" and 0.5 < p.confidence < 1 for p in preds.values())
    assert again.n_cache_hits == 6 and again.n_model_calls == 0


def test_changed_picture_is_not_a_cache_hit(pictures: Path, db: Database, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    with FakeOpenAIServer() as srv:
        _run(srv, db, pictures, _ontology(), cache, progress=False)
        solid(tmp_path / "pics" / "0.png", "blue", size=(64, 48))  # p0: red -> blue
        srv.clear()
        again = _run(srv, db, pictures, _ontology(), cache, progress=False, new_run=True)
        assert len(srv.chat_requests()) == 1
    assert again.n_cache_hits == 5
    assert _predictions(db, again)["p0"].label == "blue"


def test_a_folder_of_pictures_is_input_with_bad_files_as_bad_rows(
    tmp_path: Path, db: Database
) -> None:
    for colour in ("red", "green"):
        solid(tmp_path / "set" / colour / "a.png", colour)
    (tmp_path / "set" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with FakeOpenAIServer() as srv:
        summary = _run(srv, db, tmp_path / "set", _ontology(), progress=False)
    assert summary.n_labeled == 2 and summary.n_bad_rows == 1
    assert (
        "broken.png" in str(summary.bad_rows[0]) and summary.bad_rows[0].row == 3
    )  # green/a, red/a, red/broken
    with db.session() as s:
        payloads = [i.payload for i in s.exec(select(Item)).scalars()]
    assert sorted(p["label"] for p in payloads) == ["green", "red"]  # the gold, kept
    assert all(Path(p["__image__"]["path"]).is_file() for p in payloads)


def test_boxes_come_back_in_original_pixels(tmp_path: Path, db: Database) -> None:
    drawn = {"red": (20, 10, 60, 40), "blue": (120, 50, 40, 40)}
    shapes(tmp_path / "s.png", drawn, size=(200, 100))
    data = _csv(tmp_path / "d.csv", [{"id": "s", "image": "s.png"}])
    with FakeOpenAIServer() as srv:
        summary = _run(srv, db, data, _ontology("boxes", max_side=100), progress=False)
        seen = images_in(srv.chat_requests()[0].json)[0]
    assert (seen.width, seen.height) == (100, 50)
    pred = _predictions(db, summary)["s"]
    objects = pred.label["objects"]
    assert [o["label"] for o in objects] == ["red", "blue"]  # sorted top to bottom
    for o in objects:
        # Half-size picture: the model's boxes are doubled back, within a JPEG pixel.
        assert o["box"] == pytest.approx(list(drawn[o["label"]]), abs=2.5)
        assert 0 < o["confidence"] <= 1
    assert pred.confidence == min(o["confidence"] for o in objects)


def test_boxes_without_logprobs_use_self_consistency(tmp_path: Path, db: Database) -> None:
    shapes(tmp_path / "s.png", {"green": (10, 10, 30, 30)}, size=(60, 60))
    data = _csv(tmp_path / "d.csv", [{"id": "s", "image": "s.png"}])
    with FakeOpenAIServer(omit_logprobs=True) as srv:
        summary = _run(srv, db, data, _ontology("boxes"), progress=False, samples=3)
    pred = _predictions(db, summary)["s"]
    assert pred.method == "self_consistency"
    assert pred.label["objects"][0]["confidence"] == 1.0  # three samples, the same box


def test_an_endpoint_that_refuses_pictures_says_so(pictures: Path, db: Database) -> None:
    with FakeOpenAIServer(reject_images=True) as srv:
        summary = _run(srv, db, pictures, _ontology(), progress=False, max_retries=0)
        assert srv.chat_requests()  # it was asked, and refused
    assert summary.n_labeled == 0
    errors = {p.error for p in _predictions(db, summary).values()}
    assert len(errors) == 1
    error: Any = errors.pop()
    assert "does not accept images" in error and "image_url is only supported" in error


def test_multi_label_reads_every_colour_present(tmp_path: Path, db: Database) -> None:
    shapes(tmp_path / "s.png", {"red": (0, 0, 30, 30), "blue": (40, 10, 20, 20)}, size=(80, 40))
    data = _csv(tmp_path / "d.csv", [{"id": "s", "image": "s.png"}])
    with FakeOpenAIServer() as srv:
        summary = _run(srv, db, data, _ontology("multi_label", max_side=64), progress=False)
    pred = _predictions(db, summary)["s"]
    assert pred.label == ["red", "blue"] and pred.method == "token_logprobs"
