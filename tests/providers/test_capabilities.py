"""Capability negotiation against a loopback server that fails the way real servers do.

Real servers blame a feature with 400 (OpenAI, vLLM), 422 (FastAPI validation:
``{"detail": [{"loc": [...], "msg": ...}]}``) or 500 (llama-cpp-python reports request
validation as HTTP 500). Each must be read as "drop that feature and ask again".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autolabel.errors import PermanentProviderError, TransientProviderError
from autolabel.ontology.compiler import CompiledPrompt, PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import ProviderRequest
from autolabel.providers.capabilities import (
    Capabilities,
    CapabilityCache,
    error_words,
    parse_logprobs,
    rejected_feature,
)
from autolabel.providers.openai import OpenAIProvider
from autolabel.testing import FakeOpenAIServer, Reply, default_responder, error_reply

ONTOLOGY = Ontology(
    name="sentiment",
    task="classify",
    labels=[{"name": "positive"}, {"name": "negative"}, {"name": "neutral"}],
)
# llama-cpp-python 0.3's server, answering response_format json_schema (as in issue 15).
LLAMA_CPP_500 = {
    "error": {
        "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
        "'ctx': {'expected': \"'text' or 'json_object'\"}}]",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


def fastapi_422(*loc: str, msg: str) -> Reply:
    return Reply(422, {"detail": [{"type": "value_error", "loc": ["body", *loc], "msg": msg}]})


@pytest.fixture
def prompt() -> CompiledPrompt:
    return PromptCompiler(ONTOLOGY).compile({"text": "a clearly negative review"})


def _form(req: dict[str, Any]) -> str:
    fmt = req.get("response_format")
    if not fmt:
        return "text"
    return "json_object_schema" if "schema" in fmt else fmt["type"]


def rejecting(forms: set[str], reply: Reply) -> Any:
    """A responder that rejects the listed structured forms with ``reply``."""

    def respond(req: dict[str, Any]) -> Any:
        if _form(req) in forms:
            return reply
        return _answer(req)

    return respond


def _answer(req: dict[str, Any]) -> Any:
    # The default responder reads labels from a json_schema; for other forms it falls back
    # to the prompt's "one of:" line, which is what a real server's model sees too.
    return default_responder(req)


async def _complete(provider: OpenAIProvider, prompt: CompiledPrompt, **kw: Any):
    return await provider.complete(ProviderRequest(prompt=prompt, **kw))


async def test_llama_cpp_style_500_downgrades_to_json_object_with_schema(prompt, tmp_path):
    cache = CapabilityCache(tmp_path / "caps")
    with FakeOpenAIServer(responder=rejecting({"json_schema"}, Reply(500, LLAMA_CPP_500))) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url, capability_cache=cache)
        first = await _complete(provider, prompt)
        second = await _complete(provider, prompt)
        await provider.aclose()
        sent = [(r.status, _form(r.json)) for r in srv.chat_requests()]
        schema_sent = srv.chat_requests()[1].json["response_format"]["schema"]
    # One rejection, then remembered for the run.
    assert sent == [(500, "json_schema"), (200, "json_object_schema"), (200, "json_object_schema")]
    assert schema_sent == prompt.schema
    assert json.loads(first.samples[0].text) == {"label": "negative"}
    assert first.samples[0].logprobs is not None and second.structured == "json_object"
    caps = provider.capabilities
    assert caps.form == "json_object_schema" and caps.form_confirmed
    assert "HTTP 500" in caps.rejected["json_schema"]
    assert "Input should be 'text' or 'json_object'" in caps.rejected["json_schema"]
    assert caps.logprobs is True and caps.logprobs_shape == "chat"


async def test_a_new_provider_starts_from_the_cached_profile(prompt, tmp_path):
    cache = CapabilityCache(tmp_path / "caps")
    with FakeOpenAIServer(responder=rejecting({"json_schema"}, Reply(500, LLAMA_CPP_500))) as srv:
        for _ in range(2):
            provider = OpenAIProvider("m", base_url=srv.base_url, capability_cache=cache)
            await _complete(provider, prompt)
            await provider.aclose()
        statuses = [r.status for r in srv.chat_requests()]
        # Another model on the same server is another endpoint: it learns on its own.
        other = OpenAIProvider("other", base_url=srv.base_url, capability_cache=cache)
        assert other.capabilities.form == "json_schema"
        # An expired profile is ignored.
        stale = CapabilityCache(tmp_path / "caps", ttl_s=0.0)
        assert stale.load(srv.base_url, "m") is None
    assert statuses == [500, 200, 200]  # the second run paid no rejection


async def test_fastapi_422_naming_response_format_downgrades(prompt):
    reply = fastapi_422("response_format", "type", msg="Input should be 'text' or 'json_object'")
    with FakeOpenAIServer(responder=rejecting({"json_schema", "json_object_schema"}, reply)) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await _complete(provider, prompt)
        await provider.aclose()
        sent = [(r.status, _form(r.json)) for r in srv.chat_requests()]
    assert sent == [(422, "json_schema"), (422, "json_object_schema"), (200, "json_object")]
    assert response.structured == "json_object"
    assert "response_format.type" in provider.capabilities.rejected["json_schema"]


async def test_400_about_an_unknown_schema_field_drops_to_plain_json_object(prompt):
    reply = error_reply(
        400,
        "Invalid 'response_format': unrecognized field 'schema' for type 'json_object'.",
        param="response_format",
    )
    responder = rejecting({"json_object_schema"}, reply)
    with FakeOpenAIServer(responder=responder, reject_json_schema=True) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        await _complete(provider, prompt)
        await provider.aclose()
        sent = [(r.status, _form(r.json)) for r in srv.chat_requests()]
    assert sent == [(400, "json_schema"), (400, "json_object_schema"), (200, "json_object")]


async def test_a_500_that_names_no_feature_is_a_server_error(prompt):
    reply = error_reply(500, "CUDA out of memory")
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        with pytest.raises(TransientProviderError, match="HTTP 500"):
            await _complete(provider, prompt)
        await provider.aclose()
        assert srv.request_count == 1
    assert provider.capabilities.form == "json_schema" and not provider.capabilities.rejected


async def test_500_naming_logprobs_and_422_naming_seed_drop_those_fields(prompt):
    def respond(req: dict[str, Any]) -> Any:
        if req.get("logprobs"):
            return Reply(500, {"error": {"message": "logprobs is not supported"}})
        if "seed" in req:
            return fastapi_422("seed", msg="Extra inputs are not permitted")
        return default_responder(req)

    with FakeOpenAIServer(responder=respond) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        response = await _complete(provider, prompt, seed=7)
        again = await _complete(provider, prompt, seed=7)
        await provider.aclose()
        sent = [(r.status, "logprobs" in r.json, "seed" in r.json) for r in srv.chat_requests()]
    assert sent == [(500, True, True), (422, False, True), (200, False, False), (200, False, False)]
    assert response.samples[0].logprobs is None and again.samples[0].text
    caps = provider.capabilities
    assert caps.logprobs_rejected and caps.seed is False
    assert provider.logprobs_supported is False


async def test_a_forced_form_is_not_downgraded_and_says_how_to_fix(prompt):
    with FakeOpenAIServer(responder=rejecting({"json_schema"}, Reply(500, LLAMA_CPP_500))) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url, structured="json_schema")
        with pytest.raises(PermanentProviderError) as info:
            await _complete(provider, prompt)
        await provider.aclose()
    assert "json_schema" in str(info.value) and "--structured auto" in str(info.value)


async def test_forced_json_object_and_text(prompt):
    with FakeOpenAIServer() as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url, structured="json_object")
        await _complete(provider, prompt)
        text = OpenAIProvider("m", base_url=srv.base_url, structured="text")
        response = await _complete(text, prompt)
        await provider.aclose()
        await text.aclose()
        forms = [_form(r.json) for r in srv.chat_requests()]
    assert forms == ["json_object_schema", "text"]
    assert response.structured == "text"


async def test_ignored_n_is_learned_and_not_sent_again(prompt):
    def one_choice(req: dict[str, Any]) -> Any:
        reply = default_responder({**req, "n": 1})
        return reply

    with FakeOpenAIServer(responder=one_choice) as srv:
        provider = OpenAIProvider("m", base_url=srv.base_url)
        first = await _complete(provider, prompt, n=3, temperature=0.7, seed=1)
        second = await _complete(provider, prompt, n=3, temperature=0.7, seed=1)
        await provider.aclose()
        ns = [int(r.json.get("n") or 1) for r in srv.chat_requests()]
    assert len(first.samples) == len(second.samples) == 3
    assert provider.capabilities.n is False
    assert ns == [3, 1, 1, 1, 1, 1]  # topped up, then never asked for n > 1 again


def test_rejected_feature_reads_real_error_shapes():
    sent = {"response_format": {"type": "json_schema"}, "logprobs": True, "n": 2, "seed": 1}
    assert rejected_feature(500, LLAMA_CPP_500, "", sent) == "response_format"
    assert rejected_feature(503, LLAMA_CPP_500, "", sent) is None  # overload, not a feature
    assert rejected_feature(500, {"error": {"message": "boom"}}, "", sent) is None
    body = {"detail": [{"loc": ["body", "n"], "msg": "Input should be less than or equal to 1"}]}
    assert rejected_feature(422, body, "", {"n": 2}) == "n"
    assert rejected_feature(422, body, "", {"n": 1}) is None  # n was not sent
    assert rejected_feature(400, {}, "max_tokens is not supported, use max_completion_tokens",
                            {"max_tokens": 5}) == "max_tokens"  # fmt: skip
    assert error_words(422, body) == "n: Input should be less than or equal to 1"
    traced = {"message": 'bad type\n  File "/x/app.py", line 3, in f\n    POST /v1'}
    assert error_words(500, traced) == "bad type"


def test_legacy_completions_logprobs_shape_is_read():
    choice = {
        "logprobs": {
            "tokens": ['{"', "label", '":"', "yes"],
            "token_logprobs": [-0.01, -0.02, -0.01, -0.3],
            "top_logprobs": [None, None, None, {"yes": -0.3, "no": -1.4}],
        }
    }
    tokens, shape = parse_logprobs(choice)
    assert shape == "completions" and tokens is not None
    assert tokens[3].token == "yes" and tokens[3].top == {"yes": -0.3, "no": -1.4}
    assert parse_logprobs({"logprobs": None}) == (None, None)


def test_cache_round_trip_and_another_base_url(tmp_path: Path):
    cache = CapabilityCache(tmp_path)
    caps = Capabilities(form="json_object", rejected={"json_schema": "HTTP 500: no"})
    cache.save("http://h:1/v1/", "m", caps)
    loaded = cache.load("http://h:1/v1", "m")
    assert loaded is not None and loaded.form == "json_object" and loaded.rejected == caps.rejected
    assert cache.load("http://h:2/v1", "m") is None
    (next(tmp_path.glob("*.json"))).write_text("{not json")
    assert cache.load("http://h:1/v1", "m") is None  # a broken file is ignored, not fatal
