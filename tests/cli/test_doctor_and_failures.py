"""``autolabel doctor`` and the failure reasons of ``label`` / ``runs RUN``, as a user sees them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from autolabel.engine.failures import classify_error, group_failures
from autolabel.providers.capabilities import CapabilityCache
from autolabel.testing import FakeOpenAIServer, chat_reply, default_responder, error_reply
from tests.cli.test_cli import autolabel


def words(output: str) -> str:
    """Table output as plain words: box-drawing characters and wrapping removed."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", output).split())


def _yes(req: dict[str, Any]) -> Any:
    """Answers doctor's yes/no probe as a schema-following model would; labels otherwise."""
    if "sky" in json.dumps(req.get("messages")):
        return chat_reply(req, '{"label": "yes"}')
    return default_responder(req)


def test_doctor_reports_each_form_and_what_label_will_use(tmp_path: Path):
    with FakeOpenAIServer(responder=_yes, reject_json_schema=True, reject_n=True) as srv:
        out = autolabel("doctor", "--base-url", srv.base_url, "--model", "fake-model")
    assert out.returncode == 0, out.stderr
    text = words(out.stdout)
    assert "reachable" in text and "auth" in text
    # The rejected form is shown with the server's own words.
    assert "rejected (HTTP 400: Invalid parameter: 'response_format' of type 'json_schema'" in text
    assert "json_object_schema ok works" in text
    assert "logprobs ok per token" in text and "(chat shape)" in text
    assert "n no rejected (HTTP 400: 'n' must be 1 for this model.)" in text
    assert "seed ok honoured" in text
    assert "label will use" in text
    assert 'structured output json_object with a "schema" field' in text
    assert "confidence token logprobs" in text
    # What doctor learned is where label will look for it.
    import os

    cache = CapabilityCache(Path(os.environ["AUTOLABEL_ENDPOINT_CACHE"]))
    caps = cache.load(srv.base_url, "fake-model")
    assert caps is not None and caps.form == "json_object_schema" and caps.n is False


def test_doctor_on_a_dead_endpoint_and_without_base_url():
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    out = autolabel("doctor", "--base-url", url, "--model", "m")
    assert out.returncode == 1
    assert "cannot reach" in out.stdout and "Traceback" not in out.stderr
    # Without --base-url doctor reports the embedded runtime (tests/providers/test_llama_guard).
    out = autolabel("doctor", "--help")
    assert out.returncode == 0 and "--base-url" in out.stdout and "--reprobe" in out.stdout


def test_doctor_shows_a_bad_key(tmp_path: Path):
    def deny(req: dict[str, Any]) -> Any:
        return error_reply(401, "Incorrect API key provided")

    with FakeOpenAIServer(responder=deny) as srv:
        out = autolabel("doctor", "--base-url", srv.base_url, "--model", "m", "--api-key", "sk-x")
    # The fake server's /models is open; the first chat probe meets the 401.
    text = words(out.stdout)
    assert "auth no HTTP 401: Incorrect API key provided" in text


def _reviews(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([f"r{i}", f"a {'positive' if i % 2 else 'negative'} review number {i}"])
    return path


def test_failed_run_names_its_reasons_in_the_summary_and_in_runs(tmp_path: Path):
    data = _reviews(tmp_path / "reviews.csv", 4)
    overloaded = error_reply(503, "the model is overloaded, try later")
    env = {"AUTOLABEL_MAX_RETRIES": "1"}
    with FakeOpenAIServer(responder=lambda req: overloaded) as srv:
        out = autolabel(
            "label", "sst2", str(data), "--base-url", srv.base_url, "--model", "m", "-q", env=env
        )
        url = srv.base_url
    assert out.returncode == 1  # nothing labeled
    text = words(out.stdout)
    assert "why items failed" in text
    assert "4 × HTTP 503 from the endpoint: the model is overloaded, try later" in text
    assert f"autolabel doctor --base-url {url} --model m" in text
    shown = autolabel("runs", "1", env=env)
    assert shown.returncode == 0, shown.stderr
    shown_text = words(shown.stdout)
    assert "failed 4" in shown_text
    assert "4 × HTTP 503 from the endpoint: the model is overloaded, try later" in shown_text


def test_feature_rejections_are_labeled_not_failed(tmp_path: Path):
    """The issue's scenario: json_schema answered with HTTP 500 must not fail any item."""
    data = _reviews(tmp_path / "reviews.csv", 6)
    llama_500 = error_reply(
        500,
        "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
    )

    def respond(req: dict[str, Any]) -> Any:
        if (req.get("response_format") or {}).get("type") == "json_schema":
            return llama_500
        return default_responder(req)

    with FakeOpenAIServer(responder=respond) as srv:
        out = autolabel(
            "label", "sst2", str(data), "--base-url", srv.base_url, "--model", "m", "-q"
        )
        statuses = [r.status for r in srv.chat_requests()]
    assert out.returncode == 0, out.stderr
    text = words(out.stdout)
    assert "labeled 6" in text and "failed 0" in text
    assert "token_logprobs (6)" in text
    # Concurrent first requests may each meet the 500 once; never more than once each.
    assert 1 <= statuses.count(500) <= 6 and statuses.count(200) == 6


def test_failure_reasons_group_and_hint():
    url = "http://127.0.0.1:8080/v1"
    rows = [
        ("provider failed after 7 attempts: x failed with HTTP 500: boom", 7),
        ("provider failed after 3 attempts: x failed with HTTP 500: boom", 3),
        ("provider refused: x rejected the request (HTTP 401): bad key", 1),
        ("invalid answer after 3 asks: 'maybe' is not one of the labels", 3),
        ("invalid answer after 3 asks: answer is not JSON", 3),
        (f"provider failed after 2 attempts: {url} (model 'q') did not answer within 60s", 2),
    ]
    reasons = group_failures(rows, url, "q")
    assert [(r.count, r.reason.split(":")[0]) for r in reasons] == [
        (2, "HTTP 500 from the endpoint"),
        (2, "invalid answer"),
        (1, "HTTP 401"),
        (1, "timeout"),
    ]
    assert reasons[0].attempts == "3–7 attempts each"
    assert f"autolabel doctor --base-url {url} --model q" in reasons[0].line()
    assert "API_KEY" in reasons[2].hint
    feature = classify_error("x failed with HTTP 422: response_format.type: Input should be …")
    assert "--structured" in feature[1]
