"""OpenAIProvider against a real OpenAI-protocol server on 127.0.0.1 (the real openai client)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator

import pytest

from autolabel.errors import ConfigError, PermanentProviderError, TransientProviderError
from autolabel.ontology.compiler import CompiledPrompt, PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import ProviderRequest
from autolabel.providers.openai import OpenAIProvider, parse_retry_after
from autolabel.testing import (
    FakeOpenAIServer,
    chat_reply,
    default_responder,
    error_reply,
    hang_reply,
    scripted,
)

ONTOLOGY = Ontology(
    name="sentiment",
    task="classify",
    labels=[{"name": "positive"}, {"name": "negative"}, {"name": "neutral"}],
)


@pytest.fixture
def prompt() -> CompiledPrompt:
    return PromptCompiler(ONTOLOGY).compile({"text": "a clearly negative review"})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


async def test_label_and_logprobs_come_back(server: FakeOpenAIServer, prompt: CompiledPrompt):
    provider = OpenAIProvider("my-model", base_url=server.base_url)
    try:
        response = await provider.complete(ProviderRequest(prompt=prompt))
    finally:
        await provider.aclose()
    (sample,) = response.samples
    assert json.loads(sample.text) == {"label": "negative"}
    assert sample.logprobs is not None
    assert "".join(t.token for t in sample.logprobs) == sample.text
    label_tok = next(t for t in sample.logprobs if t.token == "negative")
    assert label_tok.logprob == pytest.approx(-0.05)
    assert set(label_tok.top) == {"negative", "positive", "neutral"}
    assert response.structured == "json_schema"
    assert response.tokens_in > 0 and response.tokens_out == 6
    assert response.latency_s > 0
    (req,) = server.chat_requests()
    body = req.json
    assert body["model"] == "my-model"
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == prompt.schema
    assert body["response_format"]["json_schema"]["strict"] is True
    # A loopback endpoint works without a key; a placeholder is sent.
    assert req.headers["authorization"].startswith("Bearer ")


async def test_json_schema_rejection_falls_back_to_json_object(prompt: CompiledPrompt):
    with FakeOpenAIServer(reject_json_schema=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        first = await provider.complete(ProviderRequest(prompt=prompt))
        second = await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
        kinds = [(r.status, r.json["response_format"]["type"]) for r in srv.chat_requests()]
    # Rejected once, then remembered: the second call goes straight to json_object.
    assert kinds == [(400, "json_schema"), (200, "json_object"), (200, "json_object")]
    assert first.structured == second.structured == "json_object"
    assert json.loads(first.samples[0].text) == {"label": "negative"}


async def test_json_object_rejection_falls_back_to_text(prompt: CompiledPrompt):
    with FakeOpenAIServer(reject_json_schema=True, reject_json_object=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
        formats = [r.json.get("response_format") for r in srv.chat_requests()]
    # json_object with a schema field (llama.cpp's form), then plain json_object, then text.
    assert [f and f["type"] for f in formats] == ["json_schema", "json_object", "json_object", None]
    assert "schema" in formats[1] and "schema" not in formats[2]
    assert response.structured == "text"
    # The default responder still finds the labels in the prompt's "one of:" line.
    assert json.loads(response.samples[0].text) == {"label": "negative"}


async def test_rate_limit_maps_to_transient_with_retry_after(prompt: CompiledPrompt):
    reply = error_reply(429, "Rate limit reached", headers={"Retry-After": "7"})
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        with pytest.raises(TransientProviderError) as info:
            await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
        assert srv.request_count == 1  # the client itself never retries
    assert info.value.retry_after == pytest.approx(7.0)
    assert "Rate limit reached" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)


async def test_retry_after_ms_and_http_date():
    assert parse_retry_after({"retry-after-ms": "1500"}) == pytest.approx(1.5)
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert parse_retry_after({"retry-after": when}) == pytest.approx(30, abs=2)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


async def test_insufficient_quota_is_permanent(prompt: CompiledPrompt):
    reply = error_reply(429, "You exceeded your current quota", code="insufficient_quota")
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        with pytest.raises(PermanentProviderError, match="quota"):
            await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(status: int, prompt: CompiledPrompt):
    with FakeOpenAIServer(responder=lambda req: error_reply(status, "overloaded")) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        with pytest.raises(TransientProviderError, match=f"HTTP {status}"):
            await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()


async def test_unauthorized_is_permanent_with_the_server_message(prompt: CompiledPrompt):
    reply = error_reply(401, "Incorrect API key provided: sk-abc***", code="invalid_api_key")
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url, api_key="sk-secret-value")
        with pytest.raises(PermanentProviderError) as info:
            await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
    assert "Incorrect API key provided" in str(info.value)
    assert "HTTP 401" in str(info.value)
    assert "sk-secret-value" not in str(info.value)


async def test_other_bad_request_is_permanent(prompt: CompiledPrompt):
    reply = error_reply(400, "The model `nope` does not exist", param="model")
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        provider = OpenAIProvider("nope", base_url=srv.base_url)
        with pytest.raises(PermanentProviderError, match="does not exist"):
            await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
        assert srv.request_count == 1


async def test_timeout_is_transient(prompt: CompiledPrompt):
    with FakeOpenAIServer(responder=scripted(hang_reply(3.0))) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url, timeout_s=1.0)
        with pytest.raises(TransientProviderError, match="did not answer within 1s"):
            await provider.complete(ProviderRequest(prompt=prompt))
        # The next request (a fresh connection) succeeds.
        ok = await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
    assert json.loads(ok.samples[0].text) == {"label": "negative"}


async def test_connection_refused_is_transient(prompt: CompiledPrompt):
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    provider = OpenAIProvider("m", base_url=url, timeout_s=2)
    with pytest.raises(TransientProviderError, match="cannot reach"):
        await provider.complete(ProviderRequest(prompt=prompt))
    await provider.aclose()


async def test_missing_logprobs_gives_none(prompt: CompiledPrompt):
    with FakeOpenAIServer(omit_logprobs=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
    assert response.samples[0].logprobs is None
    assert json.loads(response.samples[0].text) == {"label": "negative"}


async def test_rejected_logprobs_are_no_longer_asked_for(prompt: CompiledPrompt):
    with FakeOpenAIServer(reject_logprobs=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        first = await provider.complete(ProviderRequest(prompt=prompt))
        await provider.complete(ProviderRequest(prompt=prompt))
        await provider.aclose()
        asked = [("logprobs" in r.json, r.status) for r in srv.chat_requests()]
    assert asked == [(True, 400), (False, 200), (False, 200)]
    assert first.samples[0].logprobs is None
    assert provider.logprobs_supported is False


async def test_n_samples(prompt: CompiledPrompt):
    def vary(req):
        labels = ["negative", "negative", "neutral"][: req["n"]]
        return chat_reply(req, [json.dumps({"label": lb}) for lb in labels])

    with FakeOpenAIServer(responder=vary) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await provider.complete(ProviderRequest(prompt=prompt, n=3, temperature=0.7))
        await provider.aclose()
        (req,) = srv.chat_requests()
    assert req.json["n"] == 3 and req.json["temperature"] == 0.7
    assert [json.loads(s.text)["label"] for s in response.samples] == [
        "negative",
        "negative",
        "neutral",
    ]
    assert all(s.logprobs is not None for s in response.samples)


async def test_n_rejected_issues_parallel_requests(prompt: CompiledPrompt):
    with FakeOpenAIServer(reject_n=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await provider.complete(ProviderRequest(prompt=prompt, n=4, seed=10))
        again = await provider.complete(ProviderRequest(prompt=prompt, n=2, seed=10))
        await provider.aclose()
        reqs = srv.chat_requests()
    assert len(response.samples) == 4 and len(again.samples) == 2
    # One rejected n=4 call, then one call per sample; the second job never sends n.
    assert [r.json.get("n") for r in reqs] == [4, None, None, None, None, None, None]
    assert sorted(r.json["seed"] for r in reqs[1:5]) == [10, 11, 12, 13]
    assert response.tokens_out == 4 * 6


async def test_server_ignoring_n_is_topped_up(prompt: CompiledPrompt):
    def one_choice(req):
        return default_responder({**req, "n": 1})

    with FakeOpenAIServer(responder=one_choice) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await provider.complete(ProviderRequest(prompt=prompt, n=3))
        await provider.aclose()
        assert srv.request_count == 3
    assert len(response.samples) == 3


def test_identity_has_no_secret_and_remote_needs_a_key():
    provider = OpenAIProvider("gpt-x", base_url="https://example.test/v1", api_key="sk-secret")
    ident = provider.identity()
    assert ident == {"provider": "openai", "base_url": "https://example.test/v1", "model": "gpt-x"}
    assert "sk-secret" not in repr(provider) and "sk-secret" not in json.dumps(ident)
    with pytest.raises(ConfigError, match="no API key"):
        OpenAIProvider("gpt-x", base_url="https://example.test/v1")


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AUTOLABEL_API_KEY", "sk-from-env")
    provider = OpenAIProvider("any-model-name", base_url="https://example.test/v1")
    assert provider.model == "any-model-name"


async def test_models_endpoint(server: FakeOpenAIServer):
    import openai

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    models = await client.models.list()
    await client.close()
    assert [m.id for m in models.data] == ["fake-model"]
