"""``autolabel doctor``'s probes: a handful of tiny requests that show what an endpoint does.

Each probe asks one thing (is the server there, is the key good, does each structured
form work, do logprobs come back and how, is ``n`` honoured, is ``seed``) with a
one-word answer, so the whole check costs a few hundred tokens. The answers build the
same :class:`~autolabel.providers.capabilities.Capabilities` a labeling run learns, and
they are written to the endpoint cache, so the next ``label`` starts with what works.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from autolabel.providers.capabilities import (
    FORMS,
    Capabilities,
    CapabilityCache,
    StructuredForm,
    error_words,
    forms_for,
    parse_logprobs,
    wire_format,
)
from autolabel.providers.openai import OpenAIProvider

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["label"],
    "additionalProperties": False,
}
_MESSAGES = [
    {
        "role": "system",
        "content": 'Answer with JSON only: {"label": "yes"} or {"label": "no"}.',
    },
    {"role": "user", "content": "Is the sky blue on a clear day?"},
]
_SEED_MESSAGES = [{"role": "user", "content": "Write three random words."}]


@dataclass
class Check:
    """One row of the doctor table. ``ok`` None: not applicable or not tested."""

    name: str
    ok: bool | None
    detail: str
    latency_s: float | None = None


@dataclass
class DoctorReport:
    base_url: str
    model: str
    checks: list[Check] = field(default_factory=list)
    capabilities: Capabilities | None = None
    structured_choice: str = "auto"

    @property
    def reachable(self) -> bool:
        return any(c.name == "reachable" and c.ok for c in self.checks)

    @property
    def latency_s(self) -> float | None:
        times = [c.latency_s for c in self.checks if c.latency_s is not None and c.ok]
        return statistics.median(times) if times else None

    def label_settings(self, samples: int = 5) -> list[tuple[str, str]]:
        """What ``autolabel label`` will do against this endpoint."""
        caps = self.capabilities
        if caps is None:
            return []
        form_words = {
            "json_schema": "json_schema (strict structured output)",
            "json_object_schema": 'json_object with a "schema" field (schema-constrained)',
            "json_object": "json_object (JSON mode, schema in the prompt)",
            "text": "text (answer parsed from plain text)",
        }
        rows = [("structured output", form_words[caps.form])]
        if caps.logprobs:
            rows.append(("confidence", "token logprobs (label token's probability)"))
        else:
            how = "n > 1 in one request" if caps.n else f"{samples} parallel requests"
            rows.append(("confidence", f"self-consistency: {samples} samples via {how}"))
        if caps.seed is False:
            rows.append(("seed", "not sent (rejected)"))
        return rows


def _content(data: dict[str, Any]) -> str:
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    return str((choices[0].get("message") or {}).get("content") or "")


def _valid(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("label") in ("yes", "no")


class _Prober:
    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider
        self.model = provider.model

    async def send(self, **extra: Any) -> tuple[dict[str, Any] | None, str | None, float]:
        """(answer JSON, error words, seconds). Never raises for HTTP or transport errors."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _MESSAGES,
            "temperature": 0.0,
            "max_tokens": 16,
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        started = time.monotonic()
        try:
            raw = await self.provider.client().post("/chat/completions", body=body, cast_to=bytes)
            data = json.loads(raw)
        except openai.APIStatusError as e:
            words = error_words(e.status_code, e.body, e.message)
            return None, f"HTTP {e.status_code}: {words}", time.monotonic() - started
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            return None, f"{type(e).__name__}: {e}", time.monotonic() - started
        except ValueError as e:
            return None, f"not JSON: {e}", time.monotonic() - started
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            return None, "answer has no choices", time.monotonic() - started
        return data, None, time.monotonic() - started


async def probe_endpoint(
    provider: OpenAIProvider,
    cache: CapabilityCache | None = None,
) -> DoctorReport:
    """Run the probes against ``provider``'s endpoint; save what was learned to ``cache``."""
    report = DoctorReport(provider.base_url, provider.model)
    report.structured_choice = provider.structured_choice
    checks = report.checks
    prober = _Prober(provider)
    client = provider.client()

    # 1. reachable + auth, from GET /models (cheap, and it names the served models).
    started = time.monotonic()
    try:
        page = await client.models.list()
        served = [m.id for m in page.data]
        took = time.monotonic() - started
        checks.append(Check("reachable", True, f"{provider.base_url}/models answered", took))
        checks.append(Check("auth", True, "accepted"))
        if served and provider.model not in served:
            checks.append(
                Check(
                    "model",
                    None,
                    f"'{provider.model}' not in /models ({', '.join(served[:5])}); "
                    "single-model servers often answer any name",
                )
            )
        elif served:
            checks.append(Check("model", True, f"'{provider.model}' is served"))
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        words = error_words(e.status_code, e.body, e.message)
        checks.append(Check("reachable", True, "the server answered"))
        checks.append(
            Check("auth", False, f"HTTP {e.status_code}: {words} → set AUTOLABEL_API_KEY")
        )
        return report
    except openai.APIStatusError as e:
        words = error_words(e.status_code, e.body, e.message)
        checks.append(Check("reachable", True, f"/models: HTTP {e.status_code}: {words}"))
        checks.append(Check("auth", None, "not checked (no /models)"))
    except (openai.APIConnectionError, openai.APITimeoutError) as e:
        cause = e.__cause__ or e
        checks.append(Check("reachable", False, f"cannot reach {provider.base_url}: {cause}"[:300]))
        return report

    # 2. each structured-output form, strongest first.
    allowed = forms_for(provider.structured_choice)
    caps = Capabilities(form=allowed[0])
    working: list[StructuredForm] = []
    for form in FORMS:
        fmt = wire_format(form, "doctor_answer", _SCHEMA)
        data, err, took = await prober.send(response_format=fmt)
        if err is not None:
            if err.startswith("HTTP 401") or err.startswith("HTTP 403"):
                # Some servers leave /models open and guard only completions.
                checks[:] = [c for c in checks if c.name != "auth"]
                checks.append(Check("auth", False, f"{err} → check AUTOLABEL_API_KEY"))
                return report
            checks.append(Check(form, False, f"rejected ({err})", took))
            caps.rejected[form] = err
            continue
        assert data is not None
        text = _content(data)
        detail = "works" if _valid(text) else f"accepted; answer not schema-valid: {text[:60]!r}"
        if form == "text":
            detail = "works (answer parsed from text)" if _valid(text) else "works (plain text)"
        checks.append(Check(form, True, detail, took))
        working.append(form)
    usable = [f for f in FORMS if f in working and f in allowed]
    if not usable:
        checks.append(Check("structured output", False, "no allowed form worked"))
        report.capabilities = caps
        return report
    caps.form = usable[0]
    caps.form_confirmed = True
    fmt = wire_format(caps.form, "doctor_answer", _SCHEMA)

    # 3. logprobs: accepted? sent back? in which shape?
    data, err, took = await prober.send(response_format=fmt, logprobs=True, top_logprobs=3)
    if err is not None:
        caps.logprobs, caps.logprobs_words = False, err
        checks.append(Check("logprobs", False, f"rejected ({err})", took))
    else:
        assert data is not None
        tokens, shape = parse_logprobs(data["choices"][0]) if data["choices"] else (None, None)
        if tokens:
            top = max(len(t.top) for t in tokens)
            caps.logprobs, caps.logprobs_shape, caps.top_logprobs = True, shape, top
            checks.append(
                Check(
                    "logprobs",
                    True,
                    f"per token, up to {top} alternatives ({shape} shape)",
                    took,
                )
            )
        else:
            caps.logprobs = False
            checks.append(Check("logprobs", False, "accepted but none sent back", took))

    # 4. n > 1.
    data, err, took = await prober.send(response_format=fmt, n=2, temperature=0.8)
    if err is not None:
        caps.n = False
        checks.append(Check("n", False, f"rejected ({err})", took))
    else:
        assert data is not None
        got = len(data["choices"])
        caps.n = got >= 2
        what = "honoured (2 choices)" if caps.n else f"ignored ({got} choice for n=2)"
        checks.append(Check("n", caps.n, what, took))

    # 5. seed: the same seed at a high temperature should repeat the answer.
    answers: list[str] = []
    seed_err: str | None = None
    seed_took = 0.0
    for _ in range(2):
        data, err, took = await prober.send(
            messages=_SEED_MESSAGES, temperature=1.0, seed=1234, max_tokens=12
        )
        seed_took += took
        if err is not None:
            seed_err = err
            break
        assert data is not None
        answers.append(_content(data))
    if seed_err is not None:
        caps.seed = False
        checks.append(Check("seed", False, f"rejected ({seed_err})", seed_took / 2))
    elif answers[0] == answers[1]:
        caps.seed = True
        checks.append(Check("seed", True, "honoured (same seed, same answer)", seed_took / 2))
    else:
        caps.seed = None
        checks.append(Check("seed", False, "accepted but ignored (same seed, other answer)"))

    caps.learned_at = time.time()
    report.capabilities = caps
    if cache is not None:
        cache.save(provider.base_url, provider.model, caps)
    return report


__all__ = ["Check", "DoctorReport", "probe_endpoint"]
