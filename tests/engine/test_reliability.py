"""A wrong answer is never kept: the cache holds only valid answers, failed items are
retried by re-running, and a failed invocation leaves no run behind.

Real SQLite and PostgreSQL (``db_url``), a real on-disk cache, the real ``openai``
client against the loopback server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.engine.plan import plan_job
from autolabel.errors import BadRowError, InputError
from autolabel.providers.openai import OpenAIProvider
from autolabel.store.database import Database
from autolabel.store.tables import Decision, Item, Prediction, ReviewTask, Run
from autolabel.testing import FakeOpenAIServer, chat_reply, default_responder
from tests.engine.test_openai_failures import EXPECTED, ONTOLOGY, _by_item, _data, _item_key


def _job(srv: FakeOpenAIServer, data: Path, db: Database, cache: ResponseCache | None, **kw: Any):
    options: dict[str, Any] = {
        "concurrency": 4,
        "samples": 3,
        "reasks": 1,
        "max_retries": 1,
        "retry_initial_wait": 0.01,
        "progress": False,
        "id_column": "id",
        **kw,
    }
    provider = OpenAIProvider("fake-model", base_url=srv.base_url, timeout_s=5)
    return LabelJob(ontology=ONTOLOGY, data=data, provider=provider, db=db, cache=cache, **options)


def _labels(db: Database, run_id: int) -> dict[str, Any]:
    with db.session() as s:
        rows = s.execute(
            select(Item.external_id, Prediction.label)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == run_id)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def _rows(db: Database, model: Any) -> list[dict[str, Any]]:
    with db.session() as s:
        return [
            {c: getattr(r, c) for c in type(r).model_fields}
            for r in s.exec(select(model).order_by(model.id)).scalars()
        ]


def _n_runs(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(Run)).scalar_one())


def test_rerun_after_the_endpoint_is_fixed_asks_only_for_the_failed_items(
    tmp_path: Path, db_url: str
):
    broken = {"on": True}

    def respond(req: dict[str, Any]) -> Any:
        if broken["on"] and _item_key(req) in ("b", "c"):
            return chat_reply(req, '{"label": "furious"}')  # not one of the labels
        return default_responder(req)

    db = Database(db_url)
    cache = ResponseCache(tmp_path / "cache")
    data = _data(tmp_path)
    with FakeOpenAIServer(responder=respond) as srv:
        first = run_job(_job(srv, data, db, cache))
        assert (first.n_labeled, first.n_failed) == (2, 2)
        assert cache.stats().entries == 2  # the invalid answers were not kept

        # A reviewer works on the run meanwhile: a decision on "a", a task on failed "b".
        with db.session() as s:
            preds = {
                ext: p
                for p, ext in s.execute(
                    select(Prediction, Item.external_id).join(Item, Item.id == Prediction.item_id)
                ).all()
            }
            done = ReviewTask(queue="q", item_id=preds["a"].item_id, run_id=first.run_id,
                              prediction_id=preds["a"].id, status="decided",
                              final_label="negative", final_source="human")  # fmt: skip
            pending = ReviewTask(queue="q", item_id=preds["b"].item_id, run_id=first.run_id,
                                 prediction_id=preds["b"].id, reasons=["failed"])  # fmt: skip
            s.add_all([done, pending])
            s.commit()
            s.add(Decision(task_id=done.id, item_id=done.item_id, reviewer="ann",
                           action="decide", label="negative"))  # fmt: skip
            s.commit()
        # The dry run tells the same: this run will be continued.
        plan = plan_job(_job(srv, data, db, cache))
        assert (plan.resume_run_id, plan.resumable_done) == (first.run_id, 2)
        good_before = [p for p in _rows(db, Prediction) if p["error"] is None]
        tasks_before, decisions_before = _rows(db, ReviewTask), _rows(db, Decision)
        failed_ids = {p["item_id"]: p["id"] for p in _rows(db, Prediction) if p["error"]}

        broken["on"] = False
        srv.clear()
        second = run_job(_job(srv, data, db, cache))
        asked = _by_item(srv)
        # A job finished without failures makes a new run, entirely from the cache.
        srv.clear()
        third = run_job(_job(srv, data, db, cache))
        assert srv.request_count == 0
    assert third.run_id != first.run_id and third.n_cache_hits == 4

    # Same run, model calls for exactly the failed items, and they are labeled now.
    assert second.run_id == first.run_id and second.resumed
    assert second.retried_failed == 2 and second.already_done == 2
    assert sorted(asked) == ["b", "c"] and second.n_model_calls == 2
    assert _labels(db, second.run_id) == EXPECTED
    assert (second.n_labeled, second.n_failed) == (4, 0)
    # Good predictions and human work untouched; failed rows were updated in place.
    after = {p["item_id"]: p for p in _rows(db, Prediction) if p["run_id"] == first.run_id}
    assert [after[p["item_id"]] for p in good_before] == good_before
    assert {i: after[i]["id"] for i in failed_ids} == failed_ids
    assert _rows(db, ReviewTask) == tasks_before and _rows(db, Decision) == decisions_before
    with db.session() as s:
        run = s.get(Run, first.run_id)
        assert (run.status, run.n_labeled, run.n_failed) == ("completed", 4, 0)
    db.dispose()


def test_cached_answers_that_fail_validation_are_deleted_and_asked_again(
    tmp_path: Path, db_url: str
):
    db = Database(db_url)
    cache = ResponseCache(tmp_path / "cache")
    data = _data(tmp_path)
    with FakeOpenAIServer() as srv:
        first = run_job(_job(srv, data, db, cache))
        assert first.n_model_calls == 4 and cache.stats().entries == 4
        # Poison every entry, as a cache written before answers were validated holds them.
        inner = cache._cache
        for key in list(inner.iterkeys()):
            value = inner.get(key)
            value["samples"][0]["text"] = '{"label": "furious"}'
            inner.set(key, value)
        inner.set("not-a-response", {"garbage": True})  # and one unreadable entry
        srv.clear()
        second = run_job(_job(srv, data, db, cache, new_run=True))
        assert len(srv.chat_requests()) == 4
    assert second.n_cache_hits == 0 and second.n_model_calls == 4
    assert _labels(db, second.run_id) == EXPECTED
    # An unreadable entry is dropped when read.
    assert cache.get("not-a-response") is None and "not-a-response" not in cache
    # The poisoned entries were replaced by the valid answers.
    texts = [inner.get(k)["samples"][0]["text"] for k in inner.iterkeys()]
    assert all("furious" not in t for t in texts)
    assert sorted(json.loads(t)["label"] for t in texts if "label" in t) == sorted(
        EXPECTED.values()
    )
    db.dispose()


def test_an_invocation_that_fails_before_any_answer_leaves_no_run(tmp_path: Path, db_url: str):
    db = Database(db_url)
    with FakeOpenAIServer() as srv:
        with pytest.raises(InputError, match="not found"):
            run_job(_job(srv, tmp_path / "missing.jsonl", db, None))
        assert _n_runs(db) == 0
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"id": "x", "text": ""}\n{"id": "y", "text": "fine"}\n')
        with pytest.raises(BadRowError):
            run_job(_job(srv, bad, db, None, on_bad_row="fail"))
        assert _n_runs(db) == 0
        assert srv.request_count == 0
        # Nothing to resume by surprise: the next invocation starts a fresh run.
        summary = run_job(_job(srv, _data(tmp_path), db, None))
    assert not summary.resumed and summary.n_labeled == 4 and _n_runs(db) == 1
    db.dispose()
