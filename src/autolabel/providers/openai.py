"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio…).

The provider owns the key and the HTTP client; the engine only sees
:class:`~autolabel.providers.base.ProviderRequest` in and
:class:`~autolabel.providers.base.ProviderResponse` out.

Endpoints differ in what they accept, so the provider *degrades and remembers*: it
asks for strict ``json_schema`` structured output, falls back to ``json_object`` with a
``schema`` field, plain ``json_object`` and then plain text when the endpoint answers an
error (400, 422 or 500 alike) whose body names ``response_format``; it stops asking for
``logprobs`` or ``seed`` when they are rejected; and it issues ``n`` parallel requests
when ``n`` > 1 is rejected (or fewer choices come back). What it learned lives in
:class:`~autolabel.providers.capabilities.Capabilities` (one per provider, so one per
run) and, when a :class:`~autolabel.providers.capabilities.CapabilityCache` is given,
on disk per endpoint for the next run.

Images: a compiled prompt names its image by content hash (an ``image`` part); here it
becomes an ``image_url`` part holding a base64 data URL of the picture resized to the
ontology's ``max_side`` (:mod:`autolabel.images`), the form OpenAI, vLLM, Ollama and the
llama.cpp server all accept. An endpoint that refuses images fails permanently with a
message that says so (see :func:`_images_refused`).

Retries are not done here (the client has ``max_retries=0``): transport failures are
mapped in one place, :func:`_map_error`, to
:class:`~autolabel.errors.TransientProviderError` (with the server's ``retry_after``)
or :class:`~autolabel.errors.PermanentProviderError`, and the engine retries.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import ipaddress
import json
import math
import os
import threading
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlparse, urlsplit, urlunsplit

import httpx
import openai

from autolabel.errors import (
    ConfigError,
    ImageError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from autolabel.images import ImageRef, data_url
from autolabel.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    Sample,
    StructuredMode,
)
from autolabel.providers.capabilities import (
    FORMS,
    STRUCTURED_CHOICES,
    Capabilities,
    CapabilityCache,
    StructuredForm,
    error_words,
    forms_for,
    parse_logprobs,
    rejected_feature,
    reported_mode,
    wire_format,
)
from autolabel.redact import redact_url, scrub, url_secrets

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers (llama.cpp, vLLM, Ollama) ignore the key but the client insists on one.
_PLACEHOLDER_KEY = "autolabel-no-key"
# A request that keeps hitting errors about features would loop; each retry drops one feature.
_MAX_DOWNGRADES = 10


def _http_module() -> ModuleType:
    """The HTTP library this openai release is built on: ``httpx2`` (openai>=3) or ``httpx``.

    Why it matters: httpx 0.28's connection pool rescans every queued request on each
    state change, so a pool of 64 busy connections costs ~11 ms of CPU per request on
    2 cores (38 req/s at concurrency 64 against a 200 ms endpoint), while httpx2 costs
    ~3 ms (200 req/s) — measured with bench/throughput.py's bare loop.
    """
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("httpx2", "httpx"):
            return importlib.import_module(root)
    return httpx


_HTTP = _http_module()
# Transport errors of either library (openai wraps most of them; these are a backstop).
_HTTP_ERRORS: tuple[type[Exception], ...] = tuple({httpx.HTTPError, _HTTP.HTTPError})
_TIMEOUTS: tuple[type[Exception], ...] = tuple(
    {openai.APITimeoutError, httpx.TimeoutException, _HTTP.TimeoutException}
)
_CONNECTION: tuple[type[Exception], ...] = tuple(
    {openai.APIConnectionError, httpx.TransportError, _HTTP.TransportError}
)


def async_http_client(max_connections: int, timeout_s: float) -> Any:
    """An async HTTP client for ``openai.AsyncOpenAI``, pooled for ``max_connections``."""
    limits = _HTTP.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
    )
    timeout = _HTTP.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    return _HTTP.AsyncClient(limits=limits, timeout=timeout)


def is_local_url(url: str) -> bool:
    """True for loopback / private-network hosts, which usually need no API key."""
    host = (urlparse(url).hostname or "").strip("[]")
    if host in ("localhost", "host.docker.internal") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


class OpenAIProvider(Provider):
    """An OpenAI-protocol endpoint. Any model name works; nothing is allow-listed."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        *,
        max_connections: int = 512,
        top_logprobs: int = 5,
        structured: str = "auto",
        extra_body: dict[str, Any] | None = None,
        capability_cache: CapabilityCache | None = None,
    ) -> None:
        if not model:
            raise ConfigError("no model name given", hint="pass --model, e.g. --model gpt-4o-mini")
        self.model = model
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        # The URL as given may hold credentials: only the client sees it. ``base_url`` (in
        # run records, cache keys, messages) is the redacted form.
        self._url, self._query = _split_query(url)
        self.base_url = redact_url(url) or url
        key = api_key or os.environ.get("AUTOLABEL_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not key:
            if not is_local_url(self.base_url):
                raise ConfigError(
                    f"no API key for {self.base_url}",
                    hint="set AUTOLABEL_API_KEY (or OPENAI_API_KEY), or point --base-url at a "
                    "local OpenAI-compatible server",
                )
            key = _PLACEHOLDER_KEY
        self._api_key = key
        self._secrets = url_secrets(url) + ([key] if key != _PLACEHOLDER_KEY else [])
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.top_logprobs = top_logprobs
        self.extra_body = dict(extra_body or {})
        if structured not in STRUCTURED_CHOICES:
            raise ConfigError(
                f"unknown structured-output form {structured!r}",
                hint=f"choose one of: {', '.join(STRUCTURED_CHOICES)}",
            )
        self.structured_choice = structured
        self._forms = forms_for(structured)
        self._capability_cache = capability_cache
        # What this endpoint has shown it accepts: from the cache, then from its answers.
        cached = capability_cache.load(self.base_url, self.model) if capability_cache else None
        if cached is not None and cached.form not in self._forms:
            cached = None  # learned under another --structured choice
        self.capabilities = cached or Capabilities(form=self._forms[0])
        # One client per event loop: httpx pools are bound to the loop that opened them,
        # and the sync ``run_job`` wrapper may run several loops over one provider.
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._data_urls: dict[tuple[str, int], str] = {}
        self._data_urls_lock = threading.Lock()  # filled from worker threads

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    def redact(self, text: str | None) -> str | None:
        """``text`` without this provider's key or URL credentials (an endpoint may echo them)."""
        return scrub(text, self._secrets)

    @property
    def structured_form(self) -> StructuredForm:
        """The structured-output form requests are sent with now."""
        return self.capabilities.form

    @property
    def structured_mode(self) -> StructuredMode:
        """The engine-facing mode of :attr:`structured_form`."""
        return reported_mode(self.capabilities.form)

    @property
    def logprobs_supported(self) -> bool:
        """False once the endpoint rejected ``logprobs`` (then they are no longer sent)."""
        return not self.capabilities.logprobs_rejected

    def _learned(self) -> None:
        """Something new about the endpoint: keep it for the next run."""
        self.capabilities.learned_at = time.time()
        if self._capability_cache is not None:
            self._capability_cache.save(self.base_url, self.model, self.capabilities)

    # -- client ---------------------------------------------------------------------------
    def _get_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            http = async_http_client(self.max_connections, self.timeout_s)
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self._url,
                # A query in the base URL (``?api-key=…``, ``?api-version=…``) is sent with
                # every request; the client would otherwise glue it into the path.
                default_query=self._query or None,
                timeout=http.timeout,
                max_retries=0,  # the engine retries, driven by our error types
                http_client=http,
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.close()
        self._client_loop = None

    def client(self) -> openai.AsyncOpenAI:
        """The client for the running loop (``doctor`` sends raw probes through it)."""
        return self._get_client()

    # -- requests -------------------------------------------------------------------------
    def _wire_messages(self, request: ProviderRequest) -> list[dict[str, Any]]:
        """The request's messages with each image part as an OpenAI ``image_url`` part."""
        messages = request.messages()
        if not request.prompt.images:
            return messages
        by_hash = {ref.sha256: ref for ref in request.prompt.images}
        out = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                content = [self._wire_part(part, by_hash) for part in content]
            out.append({**m, "content": content})
        return out

    def _wire_part(self, part: dict[str, Any], by_hash: dict[str, ImageRef]) -> dict[str, Any]:
        if part.get("type") != "image":
            return part
        key = (part["sha256"], int(part["max_side"]))
        with self._data_urls_lock:
            url = self._data_urls.get(key)
        if url is None:
            url = data_url(by_hash[part["sha256"]], key[1])
            # Retries, re-asks and self-consistency samples resend the same picture: encode
            # it once. A few entries suffice (items are in flight only briefly).
            with self._data_urls_lock:
                if len(self._data_urls) >= 64:
                    self._data_urls.pop(next(iter(self._data_urls)))
                self._data_urls[key] = url
        return {"type": "image_url", "image_url": {"url": url}}

    def _params(
        self, request: ProviderRequest, n: int, seed: int | None, messages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        caps = self.capabilities
        params: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": request.temperature,
            caps.max_tokens_key: request.max_tokens,
        }
        if n > 1:
            params["n"] = n
        if seed is not None and caps.seed is not False:
            params["seed"] = seed
        if request.logprobs and not caps.logprobs_rejected:
            params["logprobs"] = True
            if self.top_logprobs:
                params["top_logprobs"] = self.top_logprobs
        fmt = wire_format(caps.form, f"{request.prompt.task.value}_answer", request.prompt.schema)
        if fmt is not None:
            params["response_format"] = fmt
        if self.extra_body:
            params.update(self.extra_body)  # vendor options (e.g. vLLM's guided decoding)
        return params

    async def _create(self, request: ProviderRequest, n: int, seed: int | None) -> dict[str, Any]:
        """One HTTP call, degrading features the endpoint rejects. Returns the raw JSON."""
        messages = request.messages()
        if request.prompt.images:
            try:  # decoding and resizing a photo is ~10-50 ms of CPU: off the event loop
                messages = await asyncio.to_thread(self._wire_messages, request)
            except ImageError as e:  # the file changed or vanished since it was read
                raise PermanentProviderError(e.message, hint=e.hint) from e
        for _ in range(_MAX_DOWNGRADES):
            mode = self.structured_form
            params = self._params(request, n, seed, messages)
            try:
                # The client's generic ``post`` with a bytes result skips what costs most CPU
                # per request in ``chat.completions.create``: the recursive TypedDict
                # transform of the params (~20% of a request's client CPU under cProfile) and
                # building pydantic models of the answer. We read the few fields we need.
                # Auth, base URL, timeouts and status-error classes are the client's as usual.
                raw = await self._get_client().post("/chat/completions", body=params, cast_to=bytes)
                data = json.loads(raw)
            except openai.APIStatusError as e:
                if request.prompt.images and _refuses_images(e):
                    raise _images_refused(e, self) from e
                if self._downgrade(e, mode, n, params):
                    continue
                raise _map_error(e, self) from e
            except (openai.OpenAIError, *_HTTP_ERRORS) as e:
                raise _map_error(e, self) from e
            except ValueError as e:  # the endpoint's body is not JSON
                raise TransientProviderError(f"{self.base_url} sent a non-JSON answer: {e}") from e
            _check_answer_shape(data, self.base_url)
            data["_mode"] = mode
            self._learn_from_answer(data, params, n, mode)
            return data
        raise PermanentProviderError(
            f"{self.base_url} kept rejecting requests for model '{self.model}'",
            hint="check that the endpoint speaks the OpenAI chat-completions protocol",
        )

    def _downgrade(
        self, e: openai.APIStatusError, mode: StructuredForm, n: int, params: dict[str, Any]
    ) -> bool:
        """Learn from an error that names a feature; True when the request should be resent.

        Any of 400/422/500/501 counts (see :mod:`~autolabel.providers.capabilities`).
        """
        caps = self.capabilities
        feature = rejected_feature(e.status_code, e.body, e.message, params, _error_param(e))
        if feature is None:
            return False
        words = f"HTTP {e.status_code}: {error_words(e.status_code, e.body, e.message)}"
        if feature == "response_format":
            # Another request may have downgraded already; only step from the form we sent.
            if caps.form == mode:
                nxt = caps.next_form(self._forms)
                if nxt is None:
                    raise PermanentProviderError(
                        f"{self.base_url} (model '{self.model}') rejected the structured-output "
                        f"form '{mode}': {words}",
                        hint="use --structured auto to let autolabel fall back to a form "
                        "the endpoint accepts",
                    ) from e
                caps.rejected[mode] = words
                caps.form = nxt
                caps.form_confirmed = False
                self._learned()
            return True
        if feature == "logprobs":
            caps.logprobs, caps.logprobs_words = False, words
        elif feature == "n":
            caps.n = False
            self._learned()
            raise _NRejected
        elif feature == "seed":
            caps.seed = False
        elif feature == "max_tokens":
            if caps.max_tokens_key == "max_completion_tokens":
                return False
            caps.max_tokens_key = "max_completion_tokens"
        self._learned()
        return True

    def _learn_from_answer(
        self, data: dict[str, Any], params: dict[str, Any], n: int, mode: StructuredForm
    ) -> None:
        """First answers tell what a form, ``logprobs`` and ``n`` really do here."""
        caps = self.capabilities
        changed = False
        if not caps.form_confirmed and mode == caps.form:
            caps.form_confirmed = changed = True
        choices = [c for c in data["choices"] if isinstance(c, dict)]
        if params.get("logprobs") and choices:
            tokens, shape = parse_logprobs(choices[0])
            seen = tokens is not None
            if caps.logprobs is not seen or caps.logprobs_shape != shape:
                caps.logprobs, caps.logprobs_shape = seen, shape
                caps.top_logprobs = max((len(t.top) for t in tokens), default=0) if tokens else 0
                changed = True
        if n > 1 and caps.n is None:
            caps.n = len(choices) >= n
            changed = True
        if changed:
            self._learned()

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        started = time.monotonic()
        n = max(1, request.n)
        calls: list[dict[str, Any]] = []
        if n == 1 or self.capabilities.n is not False:
            try:
                calls.append(await self._create(request, n, request.seed))
            except _NRejected:
                pass  # fall through to one request per sample
        got = sum(len(c["choices"]) for c in calls)
        if got < n:
            # ``n`` rejected, or ignored (some servers send one choice): one request per
            # missing sample, with distinct seeds so seeded endpoints do not repeat.
            def seed_of(i: int) -> int | None:
                return None if request.seed is None else request.seed + i

            more = await asyncio.gather(
                *(self._create(request, 1, seed_of(got + i)) for i in range(n - got))
            )
            calls.extend(more)
        samples = [_sample(ch) for c in calls for ch in c["choices"]][:n]
        usage = [u if isinstance(u := c.get("usage"), dict) else {} for c in calls]
        return ProviderResponse(
            samples=samples,
            model=str(calls[0].get("model") or self.model),
            tokens_in=sum(_count(u.get("prompt_tokens")) for u in usage),
            tokens_out=sum(_count(u.get("completion_tokens")) for u in usage),
            latency_s=time.monotonic() - started,
            # The weakest form any call used: what the answers can be trusted to follow.
            structured=reported_mode(max((c["_mode"] for c in calls), key=FORMS.index)),
        )


def _split_query(url: str) -> tuple[str, dict[str, str]]:
    """The base URL without its query, and the query's parameters."""
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, dict(parse_qsl(parts.query, keep_blank_values=True))


class _NRejected(Exception):
    """Control flow: the endpoint refuses ``n`` > 1; ask once per sample instead."""


class _BadShape(Exception):
    """Control flow inside :func:`_check_answer_shape`: what is wrong with the answer."""


def _check_answer_shape(data: Any, where: str) -> None:
    """Raise TransientProviderError unless ``data`` is a chat completion we can read.

    Proxies and overloaded servers send 200s that are not answers: ``"choices": []``, a
    choice without ``message`` or with ``null`` content, log-probs in another shape, a
    JSON array. None of these is the model's answer, so none may reach the parser (or
    the cache); each is a transient failure, retried within the run's budget.
    A choice cut off at ``max_tokens`` is an answer, marked truncated, and so is a refusal
    (``content`` null, ``refusal`` set): the engine re-asks for them and never caches them.
    """
    try:
        if not isinstance(data, dict):
            raise _BadShape(f"a JSON {_json_type(data)}, not an object")
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise _BadShape("no 'choices' list")
        if not choices:
            raise _BadShape("an empty 'choices' list")
        for i, choice in enumerate(choices):
            _check_choice(choice, f"choices[{i}]")
    except _BadShape as e:
        raise TransientProviderError(f"{where} sent a malformed answer: {e}") from None


def _check_choice(choice: Any, at: str) -> None:
    if not isinstance(choice, dict):
        raise _BadShape(f"{at} is not an object")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _BadShape(f"{at} has no 'message'")
    content = message.get("content")
    if content is None:
        if isinstance(message.get("refusal"), str) and message["refusal"]:
            return  # the model declined: its answer (re-asked, never cached), not a fault
        raise _BadShape(f"{at}.message has no content")
    if not isinstance(content, str):
        raise _BadShape(f"{at}.message.content is a {_json_type(content)}, not text")
    lp = choice.get("logprobs")
    if lp is None:
        return  # no log-probs: the engine falls back to self-consistency
    if not isinstance(lp, dict):
        raise _BadShape(f"{at}.logprobs is a {_json_type(lp)}, not an object")
    entries = lp.get("content")
    if entries is None:
        return  # another dialect (or none sent): treated as no log-probs
    if not isinstance(entries, list):
        raise _BadShape(f"{at}.logprobs.content is not a list")
    for j, t in enumerate(entries):
        if not (
            isinstance(t, dict) and isinstance(t.get("token"), str) and _finite(t.get("logprob"))
        ):
            raise _BadShape(f"{at}.logprobs.content[{j}] is not a {{token, logprob}} entry")
        top = t.get("top_logprobs")
        if top is None:
            continue
        if not isinstance(top, list) or not all(
            isinstance(a, dict) and isinstance(a.get("token"), str) and _finite(a.get("logprob"))
            for a in top
        ):
            raise _BadShape(f"{at}.logprobs.content[{j}].top_logprobs is malformed")


def _json_type(x: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if x is None else names.get(type(x), type(x).__name__)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _count(x: Any) -> int:
    """A token count from ``usage``; what is not a count is 0 (usage is informative only)."""
    return int(x) if _finite(x) and x >= 0 else 0


def _sample(choice: dict[str, Any]) -> Sample:
    """One choice, already checked by :func:`_check_answer_shape`."""
    message = choice["message"]
    text = message["content"]
    if text is None:  # a refusal (see _check_choice)
        return Sample(text="", refusal=str(message["refusal"]))
    truncated = choice.get("finish_reason") == "length"
    # Servers differ in the log-probs dialect they answer with (see parse_logprobs).
    tokens, _shape = parse_logprobs(choice)
    return Sample(text=str(text), logprobs=tokens, truncated=truncated)


# -- error mapping (the one place) --------------------------------------------------------


def _error_body(e: openai.APIStatusError) -> dict[str, Any]:
    body = e.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return body if isinstance(body, dict) else {}


def _error_param(e: openai.APIStatusError) -> str | None:
    param = _error_body(e).get("param")
    return str(param) if param else None


# What servers say when a model cannot take images: OpenAI ("image_url is only supported
# by certain models"), vLLM ("... is not a multimodal model"), the llama.cpp server
# ("image input is not supported ... mmproj"), Ollama ("model does not support images").
_IMAGE_REFUSALS = (
    "image_url",
    "image input",
    "support images",
    "supports images",
    "multimodal",
    "mmproj",
    "vision",
    "image content",
    "images are not",
)


def _refuses_images(e: openai.APIStatusError) -> bool:
    if e.status_code not in (400, 415, 422, 500, 501):
        return False
    words = f"{e.message} {json.dumps(e.body) if e.body is not None else ''}".lower()
    return any(w in words for w in _IMAGE_REFUSALS)


def _images_refused(e: openai.APIStatusError, provider: OpenAIProvider) -> ProviderError:
    message = str(_error_body(e).get("message") or e.message)
    return PermanentProviderError(
        f"{provider.base_url} (model '{provider.model}') does not accept images: "
        f"HTTP {e.status_code}: {message}",
        hint="use a vision model (e.g. gpt-4o-mini, Qwen2.5-VL on vLLM, llava on Ollama, a "
        "llama.cpp server started with --mmproj), or the embedded image classifier "
        "(--provider local)",
    )


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _map_error(e: Exception, provider: OpenAIProvider) -> ProviderError:
    """Turn a client/transport exception into our hierarchy (callers ``raise … from e``)."""
    where = f"{provider.base_url} (model '{provider.model}')"
    if isinstance(e, _TIMEOUTS):
        return TransientProviderError(f"{where} did not answer within {provider.timeout_s:g}s")
    if isinstance(e, _CONNECTION):
        cause = e.__cause__ or e
        return TransientProviderError(f"cannot reach {where}: {cause}")
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        err = _error_body(e)
        message = str(err.get("message") or e.message)
        if status == 429:
            if err.get("code") == "insufficient_quota" or err.get("type") == "insufficient_quota":
                return PermanentProviderError(
                    f"{where}: {message}", hint="the account is out of quota; check its billing"
                )
            return TransientProviderError(
                f"{where} is rate limiting: {message}",
                retry_after=parse_retry_after(e.response.headers),
            )
        if status >= 500 or status in (408, 409):
            return TransientProviderError(
                f"{where} failed with HTTP {status}: {message}",
                retry_after=parse_retry_after(e.response.headers),
            )
        hint = {
            401: "check AUTOLABEL_API_KEY / OPENAI_API_KEY",
            403: "the key lacks access to this model or endpoint",
            404: "check the model name and --base-url (it usually ends in /v1)",
        }.get(status)
        return PermanentProviderError(
            f"{where} rejected the request (HTTP {status}): {message}", hint=hint
        )
    if isinstance(e, ProviderError):
        return e
    return TransientProviderError(f"{where}: {type(e).__name__}: {e}")
