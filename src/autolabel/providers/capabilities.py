"""What an OpenAI-compatible endpoint accepts, learned once per (base URL, model).

Servers that speak "the OpenAI protocol" differ in the details that matter for
labeling: llama-cpp-python's server rejects ``response_format: json_schema`` with an
HTTP **500** (a pydantic validation error naming ``response_format.type``) yet honours
``{"type": "json_object", "schema": {...}}``; FastAPI-based servers answer 422 with
``{"detail": [{"loc": [...], "msg": ...}]}``; some ignore ``n`` and send one choice; some
accept ``logprobs`` and send none. So the provider does not trust status codes: any
400 / 422 / 500 / 501 whose body names a feature we sent is read as "this feature is not
supported here", the feature is downgraded, and the request is sent again. What was
learned is kept for the run (:class:`Capabilities`) and in a small JSON cache per
endpoint with a short lifetime (:class:`CapabilityCache`), so the next run starts with
the form that works instead of paying for the rejections again.

The structured-output ladder, strongest first:

``json_schema``
    OpenAI's strict structured outputs.
``json_object_schema``
    ``{"type": "json_object", "schema": ...}``: llama.cpp and others constrain decoding
    to the schema this way.
``json_object``
    JSON mode without a schema (the prompt still states the answer shape).
``text``
    No ``response_format``; the answer is parsed from the text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from autolabel.providers.base import StructuredMode, TokenLogprob

StructuredForm = Literal["json_schema", "json_object_schema", "json_object", "text"]
FORMS: tuple[StructuredForm, ...] = ("json_schema", "json_object_schema", "json_object", "text")
# What a user may force with ``--structured`` (``json_object`` covers both JSON-mode forms).
STRUCTURED_CHOICES = ("auto", "json_schema", "json_object", "text")
Feature = Literal["response_format", "logprobs", "n", "seed", "max_tokens"]
LogprobsShape = Literal["chat", "completions"]

# Statuses a server may use to say "I do not support that parameter". 500 is here on
# purpose: llama-cpp-python's server reports request validation errors as 500.
FEATURE_STATUSES = frozenset({400, 422, 500, 501})
# A learned endpoint profile is trusted this long (servers get upgraded, models swapped).
CACHE_TTL_S = 3600.0
_WORDS_MAX = 300
_TRACEBACK = re.compile(r"\s+File \"|Traceback \(most recent call last\)")


def wire_format(form: StructuredForm, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``form`` (None: send none)."""
    if form == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if form == "json_object":
        return {"type": "json_object"}
    return None


def reported_mode(form: StructuredForm) -> StructuredMode:
    """The engine-facing mode of a form (both JSON-mode forms are ``json_object``)."""
    return "json_object" if form == "json_object_schema" else form


def forms_for(choice: str) -> tuple[StructuredForm, ...]:
    """The ladder a ``--structured`` choice allows; ``auto`` allows every form."""
    if choice == "json_schema":
        return ("json_schema",)
    if choice == "json_object":
        return ("json_object_schema", "json_object")
    if choice == "text":
        return ("text",)
    return FORMS


# -- reading an error -----------------------------------------------------------------


def error_words(status: int, body: Any, message: str = "") -> str:
    """The server's own words from an error body, short enough for a table cell."""
    words = ""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            words = str(err.get("message") or "")
        elif isinstance(err, str):
            words = err
        detail = body.get("detail")
        if not words and isinstance(detail, list):  # FastAPI / pydantic validation errors
            words = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()) if p != 'body')}: {d.get('msg', '')}"
                for d in detail
                if isinstance(d, Mapping)
            )
        elif not words and detail:
            words = str(detail)
        if not words and body.get("message"):
            words = str(body["message"])
    elif isinstance(body, str):
        words = body
    # llama-cpp-python appends a traceback ("File ..., line N, in ...") to its 500s.
    words = _TRACEBACK.split(words or message or f"HTTP {status}")[0]
    words = " ".join(words.split()) or f"HTTP {status}"
    return words if len(words) <= _WORDS_MAX else words[: _WORDS_MAX - 1] + "…"


def _haystack(body: Any, message: str) -> str:
    try:
        dumped = json.dumps(body, default=str) if body is not None else ""
    except (TypeError, ValueError):
        dumped = str(body)
    return f"{message} {dumped}".lower()


# How servers name the ``n`` parameter: 'n' / "n" (quoted, as in pydantic locations),
# "n > 1", "n must be 1", "only n=1".
_N_PATTERNS = re.compile(r"""('n'|"n"|\bn\s*>\s*1|\bn\s+must|only\s+n\s*=\s*1)""")


def rejected_feature(
    status: int,
    body: Any,
    message: str,
    sent: Mapping[str, Any],
    param: str | None = None,
) -> Feature | None:
    """Which feature of the request ``sent`` an error status blames, if any.

    Only features that were actually sent can be blamed, so a 500 that merely mentions
    JSON while we sent no ``response_format`` stays a server error (retried as such).
    """
    if status not in FEATURE_STATUSES:
        return None
    text = _haystack(body, message)
    param = (param or "").lower() or None
    if "response_format" in sent and (
        param == "response_format"
        or any(w in text for w in ("response_format", "json_schema", "json_object", "guided_"))
    ):
        return "response_format"
    if ("logprobs" in sent or "top_logprobs" in sent) and (
        param in ("logprobs", "top_logprobs") or "logprob" in text
    ):
        return "logprobs"
    if int(sent.get("n") or 1) > 1 and (param == "n" or _N_PATTERNS.search(text)):
        return "n"
    if "seed" in sent and (param == "seed" or "seed" in text):
        return "seed"
    if "max_tokens" in sent and "max_completion_tokens" in text:
        return "max_tokens"
    return None


# -- reading an answer ----------------------------------------------------------------


def parse_logprobs(choice: Mapping[str, Any]) -> tuple[list[TokenLogprob] | None, str | None]:
    """Token log-probabilities of one choice and the shape they came in.

    ``chat``: OpenAI's ``logprobs.content[i] = {token, logprob, top_logprobs: [{token,
    logprob}]}``. ``completions``: the legacy ``{tokens, token_logprobs, top_logprobs:
    [{token: logprob}]}`` that some servers put in chat answers.
    """
    lp = choice.get("logprobs")
    if not isinstance(lp, Mapping):
        return None, None
    content = lp.get("content")
    if isinstance(content, list) and content:
        tokens = [
            TokenLogprob(
                token=str(t.get("token", "")),
                logprob=float(t.get("logprob") or 0.0),
                top={
                    str(a.get("token", "")): float(a.get("logprob") or 0.0)
                    for a in (t.get("top_logprobs") or [])
                    if isinstance(a, Mapping)
                },
            )
            for t in content
            if isinstance(t, Mapping)
        ]
        return (tokens or None), ("chat" if tokens else None)
    toks, lps = lp.get("tokens"), lp.get("token_logprobs")
    if isinstance(toks, list) and isinstance(lps, list) and toks:
        tops = lp.get("top_logprobs") or [None] * len(toks)
        out = []
        for tok, value, top in zip(toks, lps, tops, strict=False):
            alts = (
                {str(k): float(v) for k, v in top.items() if v is not None}
                if isinstance(top, Mapping)
                else {}
            )
            out.append(TokenLogprob(str(tok), float(value or 0.0), alts))
        return out, "completions"
    return None, None


# -- what one endpoint accepts --------------------------------------------------------


@dataclass
class Capabilities:
    """An endpoint's learned profile. ``None`` means "not seen yet"."""

    form: StructuredForm = "json_schema"
    # form -> the server's words when it rejected that form.
    rejected: dict[str, str] = field(default_factory=dict)
    form_confirmed: bool = False  # a 200 came back for ``form``
    logprobs: bool | None = None  # False: rejected, or asked for and never sent
    logprobs_words: str | None = None
    logprobs_shape: str | None = None
    top_logprobs: int | None = None  # alternatives per token actually sent
    n: bool | None = None  # False: rejected, or fewer choices than asked came back
    seed: bool | None = None  # False: rejected (honouring is only checked by ``doctor``)
    max_tokens_key: str = "max_tokens"
    learned_at: float = field(default_factory=time.time)

    @property
    def logprobs_rejected(self) -> bool:
        """The endpoint refused ``logprobs`` (as opposed to accepting and sending none)."""
        return self.logprobs is False and self.logprobs_words is not None

    def next_form(self, allowed: tuple[StructuredForm, ...]) -> StructuredForm | None:
        """The next weaker allowed form after the current one, or None."""
        later = FORMS[FORMS.index(self.form) + 1 :]
        return next((f for f in later if f in allowed and f not in self.rejected), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Capabilities:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        caps = cls(**known)
        if caps.form not in FORMS:
            caps.form = "json_schema"
        return caps

    def summary(self) -> str:
        """One line for logs and the run summary."""
        lp = {True: "logprobs", False: "no logprobs", None: "logprobs untested"}[self.logprobs]
        return f"{self.form}, {lp}"


def endpoint_key(base_url: str, model: str) -> str:
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{model}".encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """``AUTOLABEL_ENDPOINT_CACHE`` or ``<user cache>/autolabel/endpoints``."""
    override = os.environ.get("AUTOLABEL_ENDPOINT_CACHE")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("autolabel")) / "endpoints"


class CapabilityCache:
    """One small JSON file per endpoint; entries older than ``ttl_s`` are ignored.

    Why a file per endpoint and not the response cache: it must survive ``cache clear``
    of responses, expire on its own, and be readable by ``doctor`` without a database.
    Failures to read or write are ignored: the cache only saves rejected requests.
    """

    def __init__(self, directory: Path | None = None, ttl_s: float = CACHE_TTL_S) -> None:
        self.directory = directory or default_cache_dir()
        self.ttl_s = ttl_s

    def _path(self, base_url: str, model: str) -> Path:
        return self.directory / f"{endpoint_key(base_url, model)}.json"

    def load(self, base_url: str, model: str) -> Capabilities | None:
        path = self._path(base_url, model)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("base_url") != base_url.rstrip("/"):
            return None
        caps = data.get("capabilities")
        if not isinstance(caps, dict):
            return None
        if time.time() - float(caps.get("learned_at") or 0) > self.ttl_s:
            return None
        try:
            return Capabilities.from_json(caps)
        except (TypeError, ValueError):
            return None

    def save(self, base_url: str, model: str, caps: Capabilities) -> None:
        payload = {"base_url": base_url.rstrip("/"), "model": model, "capabilities": caps.to_json()}
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
            os.replace(tmp, self._path(base_url, model))

    def clear(self, base_url: str, model: str) -> None:
        with contextlib.suppress(OSError):
            self._path(base_url, model).unlink()


__all__ = [
    "CACHE_TTL_S",
    "FORMS",
    "STRUCTURED_CHOICES",
    "Capabilities",
    "CapabilityCache",
    "StructuredForm",
    "error_words",
    "forms_for",
    "parse_logprobs",
    "rejected_feature",
    "reported_mode",
    "wire_format",
]
