"""Malformed 200 answers, through the real ``openai`` client against the loopback server.

Each shape is a transient provider error: retried within the run's budget (and then
the item is labeled), or, when it never stops, a failure whose reason names the
defect and the attempts actually made. Never an uncaught exception, never cached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autolabel.engine.cache import ResponseCache
from autolabel.engine.confidence import score_response
from autolabel.engine.pipeline import LabelJob, RunSummary, run_job
from autolabel.errors import AnswerError
from autolabel.providers.base import ProviderResponse
from autolabel.providers.openai import OpenAIProvider
from autolabel.store.database import Database
from autolabel.testing import (
    ODD_SHAPES,
    FakeOpenAIServer,
    chat_reply,
    error_reply,
    odd_reply,
    refusal_reply,
)
from tests.engine.test_openai_failures import (
    EXPECTED,
    ONTOLOGY,
    _by_item,
    _data,
    _predictions,
    per_item,
)

MAX_RETRIES = 2  # so an item is asked at most 3 times per ask


def _run(
    srv: FakeOpenAIServer, tmp_path: Path, url: str, cache: ResponseCache | None
) -> RunSummary:
    job = LabelJob(
        ontology=ONTOLOGY,
        data=_data(tmp_path),
        provider=OpenAIProvider("fake-model", base_url=srv.base_url, timeout_s=5),
        db=Database(url),
        cache=cache,
        concurrency=4,
        samples=3,
        reasks=1,
        max_retries=MAX_RETRIES,
        retry_initial_wait=0.01,
        progress=False,
        id_column="id",
    )
    return run_job(job)


def _cached_texts(cache: ResponseCache) -> list[str]:
    inner = cache._cache  # the diskcache itself: what is on disk, not what get() admits
    return [s["text"] for k in inner.iterkeys() for s in inner.get(k)["samples"]]


@pytest.mark.parametrize("shape", sorted(ODD_SHAPES))
def test_malformed_answer_is_retried_then_fails_with_its_reason(
    shape: str, tmp_path: Path, sqlite_url: str
):
    def odd(req: dict[str, Any]) -> Any:
        return odd_reply(req, shape)

    # "a": malformed twice, then fine (within the budget); "b": malformed for ever.
    script = {"a": [odd, odd], "b": [odd] * 20}
    cache = ResponseCache(tmp_path / "cache")
    with FakeOpenAIServer(responder=per_item(script)) as srv:
        summary = _run(srv, tmp_path, sqlite_url, cache)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)

    assert preds["a"].label == EXPECTED["a"] and preds["a"].attempts == 3
    assert summary.n_model_calls == srv.request_count == 3 + 3 + 1 + 1
    assert len(reqs["b"]) == 1 + MAX_RETRIES  # retried within the budget, then given up
    assert preds["b"].label is None
    assert "malformed answer" in preds["b"].error
    assert f"after {1 + MAX_RETRIES} attempts" in preds["b"].error
    assert preds["b"].attempts == 1 + MAX_RETRIES
    assert summary.n_labeled == 3 and summary.n_failed == 1
    # Only the three good answers were cached.
    texts = _cached_texts(cache)
    assert len(texts) == 3
    assert sorted(json.loads(t)["label"] for t in texts) == sorted(
        EXPECTED[k] for k in ("a", "c", "d")
    )


def test_empty_choices_on_every_item_fails_cleanly(tmp_path: Path, sqlite_url: str):
    """The reported crash: ``"choices": []`` twice in a row used to raise IndexError."""
    with FakeOpenAIServer(responder=lambda req: odd_reply(req, "empty_choices")) as srv:
        summary = _run(srv, tmp_path, sqlite_url, ResponseCache(tmp_path / "cache"))
        assert srv.request_count == 4 * (1 + MAX_RETRIES)
    preds = _predictions(sqlite_url, summary.run_id)
    assert summary.n_failed == 4 and summary.n_labeled == 0
    assert summary.n_model_calls == 4 * (1 + MAX_RETRIES)  # failed requests count too
    for p in preds.values():
        assert "empty 'choices' list" in p.error and "after 3 attempts" in p.error


def test_truncated_answer_is_reasked_and_never_cached(tmp_path: Path, sqlite_url: str):
    def cut(req: dict[str, Any]) -> Any:
        # Parses, but the model stopped at max_tokens: not a whole answer.
        return chat_reply(req, '{"label": "negative"}', finish_reason="length")

    cache = ResponseCache(tmp_path / "cache")
    with FakeOpenAIServer(responder=per_item({"a": [cut], "b": [cut] * 5})) as srv:
        summary = _run(srv, tmp_path, sqlite_url, cache)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert preds["a"].label == "positive" and len(reqs["a"]) == 2  # one re-ask
    assert preds["b"].label is None and "cut off at max_tokens" in preds["b"].error
    assert len(reqs["b"]) == 2  # 1 + reasks
    # The truncated answers are nowhere in the cache: b has no entry, a only its re-ask's.
    cached = sorted(json.loads(t)["label"] for t in _cached_texts(cache))
    assert cached == ["neutral", "positive", "positive"]  # c, a (re-ask), d


def test_failure_reasons_count_the_attempts_made(tmp_path: Path, sqlite_url: str):
    """Used to say "after 0 attempts" once the retries ran out."""
    down, denied = error_reply(503, "overloaded"), error_reply(401, "bad key")
    script = {"a": [down, denied], "b": [down] * 10}
    with FakeOpenAIServer(responder=per_item(script)) as srv:
        summary = _run(srv, tmp_path, sqlite_url, None)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert len(reqs["a"]) == 2 and preds["a"].attempts == 2
    assert preds["a"].error.startswith("provider refused")
    assert len(reqs["b"]) == 1 + MAX_RETRIES and preds["b"].attempts == 1 + MAX_RETRIES
    assert preds["b"].error.startswith(f"provider failed after {1 + MAX_RETRIES} attempts:")


def test_an_answer_without_samples_is_an_answer_error_not_a_crash():
    """What an old cache entry of an empty answer replays: invalid, never IndexError."""
    with pytest.raises(AnswerError, match="no text"):
        score_response(ONTOLOGY, ProviderResponse(samples=[], model="m"), {"text": "x"})


def test_a_refusal_is_an_answer_reasked_not_retried_and_never_cached(
    tmp_path: Path, sqlite_url: str
):
    cache = ResponseCache(tmp_path / "cache")
    script = {"a": [refusal_reply], "b": [refusal_reply] * 5}
    with FakeOpenAIServer(responder=per_item(script)) as srv:
        summary = _run(srv, tmp_path, sqlite_url, cache)
        reqs = _by_item(srv)
    preds = _predictions(sqlite_url, summary.run_id)
    assert preds["a"].label == "positive" and len(reqs["a"]) == 2  # one re-ask
    assert len(reqs["b"]) == 2  # 1 + reasks, no transport retries
    reason = "invalid answer after 2 asks: the model refused: I can't help with that."
    assert preds["b"].error == reason
    cached = sorted(json.loads(t)["label"] for t in _cached_texts(cache))
    assert cached == ["neutral", "positive", "positive"]  # c, a (re-ask), d
