"""Base URLs lose their credentials before anything stores, shows or keys by them."""

from __future__ import annotations

import pytest

from autolabel.engine.cache import cache_key
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import ProviderRequest
from autolabel.providers.openai import OpenAIProvider
from autolabel.redact import redact_url, scrub, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),
        ("http://user:s3cret@host/v1", "http://***@host/v1"),
        ("http://tokenonly@host/v1", "http://***@host/v1"),
        (
            "https://h/v1?api-key=abc123&api-version=2024-06-01",
            "https://h/v1?api-key=***&api-version=2024-06-01",
        ),  # fmt: skip
        (
            "https://h/v1?key=a1&token=b2&access_token=c3&X-Api-Key=d4&sig=e5&q=1",
            "https://h/v1?key=***&token=***&access_token=***&X-Api-Key=***&sig=***&q=1",
        ),  # fmt: skip
        ("https://u:p@h:1/v1?client_secret=zz#frag", "https://***@h:1/v1?client_secret=***#frag"),
        ("https://h/v1?key=", "https://h/v1?key="),  # nothing to hide
    ],
)
def test_redact_url(url: str, shown: str):
    assert redact_url(url) == shown


def test_url_secrets_and_scrub_cover_encoded_forms():
    url = "https://bob:p%40ss-word@h/v1?token=tok%2Fen-1234"
    secrets = url_secrets(url)
    assert {"p%40ss-word", "p@ss-word", "tok%2Fen-1234", "tok/en-1234"} <= set(secrets)
    text = "401 for bob:p@ss-word at /v1?token=tok%2Fen-1234 (tok/en-1234)"
    assert scrub(text, secrets) == "401 for *** at /v1?token=*** (***)"


def test_provider_shows_and_keys_only_the_redacted_url():
    ont = Ontology(name="s", task="classify", labels=[{"name": "a"}, {"name": "b"}])
    prompt = PromptCompiler(ont).compile({"text": "x"})
    a = OpenAIProvider("m", base_url="http://u:one-secret@127.0.0.1:9/v1", api_key="sk-key-1111")
    b = OpenAIProvider("m", base_url="http://u:two-secret@127.0.0.1:9/v1", api_key="sk-key-2222")
    assert a.base_url == "http://***@127.0.0.1:9/v1"
    assert "secret" not in repr(a) and "sk-key" not in repr(a)
    assert "one-secret" not in str(a.identity()) and "sk-key" not in str(a.identity())
    # The same endpoint with another credential: the same cache entries.
    assert cache_key(a, ProviderRequest(prompt)) == cache_key(b, ProviderRequest(prompt))
    assert a.redact("echo: sk-key-1111 / one-secret") == "echo: *** / ***"
