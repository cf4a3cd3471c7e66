"""Why items failed, grouped into reasons a user can act on.

A run with failures stores one error text per failed prediction
(``predictions.error``). Twenty copies of the same HTTP 500 are one problem, so this
module groups the texts by their cause (status code and the server's words, timeouts,
unreachable endpoint, invalid answers…), counts them, notes how many attempts were
really made (from ``predictions.attempts``), and attaches a hint that says what to do.
The run summary of ``label`` and ``autolabel runs RUN`` both print it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from autolabel.store.database import Database
from autolabel.store.tables import Prediction, Run

_HTTP = re.compile(r"HTTP (\d{3})\)?:?\s*(.*)", re.S)
_PREFIX = re.compile(
    r"^(provider failed after \d+ attempts?|provider refused|invalid answer after \d+ asks?):\s*"
)
_FEATURES = ("response_format", "json_schema", "json_object", "logprob", "'n'", "seed")
_EXAMPLE_MAX = 160


@dataclass
class FailureReason:
    """One cause of failures in a run."""

    reason: str  # e.g. "HTTP 500 from the endpoint: response_format: Input should be …"
    count: int
    hint: str
    min_attempts: int = 0
    max_attempts: int = 0

    @property
    def attempts(self) -> str:
        """ "3 attempts" or "1–7 attempts" (what the retry loop really did)."""
        if self.max_attempts <= 0:
            return ""
        span = (
            f"{self.min_attempts}"
            if self.min_attempts == self.max_attempts
            else f"{self.min_attempts}–{self.max_attempts}"
        )
        return f"{span} attempt{'s' if self.max_attempts != 1 else ''} each"

    def line(self) -> str:
        """``20 × HTTP 500 …, 7 attempts each → hint``."""
        tries = f" ({self.attempts})" if self.attempts else ""
        return f"{self.count} × {self.reason}{tries} → {self.hint}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXAMPLE_MAX else text[: _EXAMPLE_MAX - 1] + "…"


def _doctor(base_url: str | None, model: str | None) -> str:
    if not base_url:
        return "autolabel doctor"
    return f"autolabel doctor --base-url {base_url} --model {model or 'MODEL'}"


def classify_error(
    error: str, base_url: str | None = None, model: str | None = None
) -> tuple[str, str]:
    """(reason, hint) for one stored error text. Equal reasons are grouped."""
    body = _PREFIX.sub("", error.strip())
    doctor = f"run `{_doctor(base_url, model)}`"
    if error.startswith("invalid answer"):
        return (
            "invalid answer: the model's output did not match the answer schema",
            "try a larger model or --structured json_object / json_schema where the endpoint "
            "supports it; `autolabel prompt show ONTOLOGY` shows what the model is asked",
        )
    http = _HTTP.search(body)
    if http:
        status, words = int(http.group(1)), _short(http.group(2))
        lowered = words.lower()
        if status == 429:
            return ("HTTP 429: rate limited", "lower --concurrency or set --rpm / --tpm")
        if status in (401, 403):
            return (
                f"HTTP {status}: {words}",
                "check AUTOLABEL_API_KEY / OPENAI_API_KEY and the key's access to the model",
            )
        if status == 404:
            return (
                f"HTTP 404: {words}",
                f"check --model and --base-url (it usually ends in /v1); {doctor}",
            )
        if any(f in lowered for f in _FEATURES):
            return (
                f"HTTP {status} from the endpoint: {words}",
                "the endpoint rejects a request feature; autolabel downgrades features the "
                f"server names (400/422/500) — {doctor} to see what it accepts, or force one "
                "with --structured",
            )
        if status >= 500:
            return (
                f"HTTP {status} from the endpoint: {words}",
                f"the server failed; check its log, {doctor}",
            )
        return (f"HTTP {status}: {words}", doctor)
    lowered = body.lower()
    if "did not answer within" in lowered:
        return (
            "timeout: the endpoint did not answer in time",
            "raise timeout_s (AUTOLABEL_TIMEOUT_S) or lower --concurrency; a local server "
            "serves few requests at once",
        )
    if "cannot reach" in lowered:
        return (
            "cannot reach the endpoint",
            f"is the server running and is --base-url right? {doctor}",
        )
    if "non-json" in lowered or "no choices" in lowered:
        return (f"odd answer from the endpoint: {_short(body)}", doctor)
    # Anything else: the text itself, with numbers that vary per item blurred.
    return (_short(re.sub(r"\d+", "N", body)), doctor)


def group_failures(
    rows: Iterable[tuple[str, int | None]],
    base_url: str | None = None,
    model: str | None = None,
) -> list[FailureReason]:
    """Group ``(error, attempts)`` rows into reasons, most frequent first."""
    groups: dict[str, FailureReason] = {}
    for error, attempts in rows:
        if not error:
            continue
        reason, hint = classify_error(error, base_url, model)
        tries = int(attempts or 0)
        found = groups.get(reason)
        if found is None:
            groups[reason] = FailureReason(reason, 1, hint, tries, tries)
        else:
            found.count += 1
            found.min_attempts = min(found.min_attempts, tries)
            found.max_attempts = max(found.max_attempts, tries)
    return sorted(groups.values(), key=lambda r: (-r.count, r.reason))


def failure_reasons(db: Database, run_id: int, limit: int = 5) -> list[FailureReason]:
    """The top failure reasons of a stored run."""
    with db.engine.connect() as conn:
        run = conn.execute(
            select(Run.base_url, Run.model).where(Run.id == run_id)  # type: ignore[arg-type]
        ).first()
        rows = conn.execute(
            select(Prediction.error, Prediction.attempts).where(
                Prediction.run_id == run_id,  # type: ignore[arg-type]
                Prediction.error.is_not(None),  # type: ignore[union-attr]
            )
        ).all()
    base_url, model = (run[0], run[1]) if run else (None, None)
    return group_failures(((e, a) for e, a in rows), base_url, model)[:limit]


__all__ = ["FailureReason", "classify_error", "failure_reasons", "group_failures"]
