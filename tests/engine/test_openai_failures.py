"""Failure modes of an OpenAI endpoint, end to end: run_job → OpenAIProvider → real HTTP server.

Every case ends with every item either labeled or recorded failed with its reason.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from autolabel.engine.pipeline import LabelJob, RunSummary, run_job
from autolabel.ontology.schema import Ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.store.database import Database
from autolabel.store.tables import Item, Prediction
from autolabel.testing import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    chat_reply,
    default_responder,
    error_reply,
    hang_reply,
    raw_reply,
)

ONTOLOGY = Ontology(
    name="sentiment",
    task="classify",
    labels=[{"name": "positive"}, {"name": "negative"}, {"name": "neutral"}],
)
TEXTS = {
    "a": "a positive take on the film",
    "b": "a negative verdict overall",
    "c": "a neutral summary of the plot",
    "d": "another positive note",
}
EXPECTED = {"a": "positive", "b": "negative", "c": "neutral", "d": "positive"}


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in TEXTS.items()))
    return path


def _item_key(request: dict[str, Any]) -> str:
    """Which item a request is about (the first user message holds the item's data)."""
    first_user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    return next(k for k, text in TEXTS.items() if text in first_user)


def per_item(script: dict[str, list[Any]]) -> Callable[[dict[str, Any]], Any]:
    """Answer each item's k-th request with ``script[item][k]``; afterwards the default.

    A scripted entry is a reply or a callable ``request -> reply``.
    """
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Any:
        key = _item_key(request)
        with lock:
            k = seen[key]
            seen[key] += 1
        steps = script.get(key, [])
        if k < len(steps):
            step = steps[k]
            return step(request) if callable(step) else step
        return default_responder(request)

    return respond


def _run(srv: FakeOpenAIServer, tmp_path: Path, url: str, **kw: Any) -> RunSummary:
    provider = OpenAIProvider("fake-model", base_url=srv.base_url, timeout_s=kw.pop("timeout_s", 5))
    options: dict[str, Any] = {
        "concurrency": 4,
        "samples": 3,
        "reasks": 2,
        "max_retries": 3,
        "retry_initial_wait": 0.05,
        "progress": False,
        "id_column": "id",
        **kw,
    }
    job = LabelJob(
        ontology=ONTOLOGY,
        data=_data(tmp_path),
        provider=provider,
        db=Database(url),
        cache=None,
        **options,
    )
    return run_job(job)


def _predictions(url: str, run_id: int) -> dict[str, Prediction]:
    with Database(url).session() as s:
        rows = s.exec(
            select(Prediction, Item.external_id)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == run_id)
        ).all()
    preds = {ext: p for p, ext in rows}
    # Every item is accounted for: labeled, or failed with its reason.
    assert set(preds) == set(TEXTS)
    for p in preds.values():
        assert (p.label is not None and p.error is None) or (p.label is None and p.error)
    return preds


def _by_item(srv: FakeOpenAIServer) -> dict[str, list[RecordedRequest]]:
    out: dict[str, list[RecordedRequest]] = {}
    for r in srv.chat_requests():
        out.setdefault(_item_key(r.json), []).append(r)
    return out


def test_rate_limit_waits_for_retry_after(tmp_path: Path, sqlite_url: str):
    limited = error_reply(429, "Rate limit reached", headers={"Retry-After": "1"})
    script = {k: [limited] for k in ("a", "b", "c")}
    with FakeOpenAIServer(responder=per_item(script)) as srv:
        summary = _run(srv, tmp_path, sqlite_url)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert {k: p.label for k, p in preds.items()} == EXPECTED
    assert summary.n_labeled == 4 and summary.n_failed == 0
    for key in ("a", "b", "c"):
        first, second = reqs[key][:2]
        assert (first.status, second.status) == (429, 200)
        # The retry came no sooner than the server asked.
        assert second.received_at - first.replied_at >= 0.99
        assert preds[key].attempts == 2
    assert [r.status for r in reqs["d"]] == [200]


def test_intermittent_server_errors_are_retried(tmp_path: Path, sqlite_url: str):
    flaky = [error_reply(500, "boom"), error_reply(503, "overloaded")]
    with FakeOpenAIServer(responder=per_item({"a": flaky, "c": flaky[:1]})) as srv:
        summary = _run(srv, tmp_path, sqlite_url)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert {k: p.label for k, p in preds.items()} == EXPECTED
    assert [r.status for r in reqs["a"]] == [500, 503, 200]
    assert [r.status for r in reqs["c"]] == [500, 200]
    assert preds["a"].attempts == 3 and preds["c"].attempts == 2


def test_persistent_server_errors_fail_with_reason(tmp_path: Path, sqlite_url: str):
    down = error_reply(503, "overloaded")
    with FakeOpenAIServer(responder=per_item({"b": [down] * 10})) as srv:
        summary = _run(srv, tmp_path, sqlite_url, max_retries=2)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert len(reqs["b"]) == 3  # one call and max_retries=2 retries, then give up
    assert preds["b"].label is None
    assert "HTTP 503" in preds["b"].error and "overloaded" in preds["b"].error
    assert summary.n_labeled == 3 and summary.n_failed == 1


def test_timeout_then_success_and_a_hang_that_never_ends(tmp_path: Path, sqlite_url: str):
    hang = hang_reply(5.0)
    with FakeOpenAIServer(responder=per_item({"a": [hang], "d": [hang] * 10})) as srv:
        summary = _run(srv, tmp_path, sqlite_url, timeout_s=1.0, max_retries=1)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert preds["a"].label == "positive" and preds["a"].attempts == 2
    assert len(reqs["d"]) == 2
    assert preds["d"].label is None and "did not answer within 1s" in preds["d"].error
    assert summary.n_labeled == 3 and summary.n_failed == 1


def test_malformed_json_is_reasked_then_recorded_failed(tmp_path: Path, sqlite_url: str):
    def bad(req: dict[str, Any]) -> Reply:
        return chat_reply(req, '{"label": "positive"')  # truncated JSON

    def unknown(req: dict[str, Any]) -> Reply:
        return chat_reply(req, '{"label": "furious"}')  # not one of the labels

    script = {"a": [bad], "c": [unknown, bad, bad, bad]}
    with FakeOpenAIServer(responder=per_item(script)) as srv:
        summary = _run(srv, tmp_path, sqlite_url, reasks=2)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    # One re-ask fixes "a"; it carries the bad answer and the problem back to the model.
    assert preds["a"].label == "positive"
    assert len(reqs["a"]) == 2
    reask = reqs["a"][1].json["messages"]
    assert reask[-2] == {"role": "assistant", "content": '{"label": "positive"'}
    assert "not valid" in reask[-1]["content"]
    # "c" never answers validly: bounded to 1 + reasks asks, then recorded with the reason.
    assert len(reqs["c"]) == 3
    assert preds["c"].label is None
    assert "invalid answer after 3 asks" in preds["c"].error
    assert preds["c"].raw == '{"label": "positive"'
    assert summary.n_labeled == 3 and summary.n_failed == 1


def test_non_json_http_body_is_retried(tmp_path: Path, sqlite_url: str):
    broken = raw_reply(200, '{"id": "chatcmpl-1", "choices": [')
    with FakeOpenAIServer(responder=per_item({"b": [broken]})) as srv:
        summary = _run(srv, tmp_path, sqlite_url)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert preds["b"].label == "negative" and len(reqs["b"]) == 2
    assert summary.n_failed == 0


def test_missing_logprobs_uses_self_consistency(tmp_path: Path, sqlite_url: str):
    def answers(req: dict[str, Any]) -> Reply:
        reply = default_responder(req)
        label = json.loads(reply.body["choices"][0]["message"]["content"])["label"]
        n = int(req.get("n") or 1)
        if n == 1:
            return chat_reply(req, json.dumps({"label": label}))
        other = "neutral" if label != "neutral" else "positive"
        texts = [json.dumps({"label": label})] * (n - 1) + [json.dumps({"label": other})]
        return chat_reply(req, texts)

    with FakeOpenAIServer(responder=answers, omit_logprobs=True) as srv:
        summary = _run(srv, tmp_path, sqlite_url, samples=3)
        sampled = [r.json for r in srv.chat_requests() if (r.json.get("n") or 1) > 1]
    preds = _predictions(sqlite_url, summary.run_id)
    assert {k: p.label for k, p in preds.items()} == EXPECTED
    for p in preds.values():
        assert p.method == "self_consistency"
        assert p.confidence == pytest.approx(2 / 3, abs=1e-4)
    assert len(sampled) >= 4  # every item was sampled
    assert all(b["n"] == 3 and b["temperature"] >= 0.7 for b in sampled)


def test_missing_logprobs_and_no_n_issues_parallel_samples(tmp_path: Path, sqlite_url: str):
    with FakeOpenAIServer(omit_logprobs=True, reject_n=True) as srv:
        summary = _run(srv, tmp_path, sqlite_url, samples=3)
        statuses = Counter((r.json.get("n"), r.status) for r in srv.chat_requests())
    preds = _predictions(sqlite_url, summary.run_id)
    assert {k: p.label for k, p in preds.items()} == EXPECTED
    assert all(p.method == "self_consistency" and p.confidence == 1.0 for p in preds.values())
    assert statuses[(3, 400)] >= 1  # rejected once (or a few times, concurrently)...
    assert statuses[(None, 200)] >= 3 * 4  # ...then one request per sample


def test_unauthorized_fails_every_item_with_the_reason(tmp_path: Path, sqlite_url: str):
    denied = error_reply(401, "Incorrect API key provided", code="invalid_api_key")
    with FakeOpenAIServer(responder=lambda req: denied) as srv:
        summary = _run(srv, tmp_path, sqlite_url)
        assert srv.request_count == 4  # permanent: never retried
    preds = _predictions(sqlite_url, summary.run_id)
    for p in preds.values():
        assert p.label is None
        assert "provider refused" in p.error and "Incorrect API key provided" in p.error
    assert summary.n_failed == 4
