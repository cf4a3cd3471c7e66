"""The one error hierarchy of autolabel.

Every error a user can cause or meet derives from :class:`AutolabelError` and
carries a message that says what is wrong and, where we know, how to fix it.
The CLI prints these without a traceback and exits non-zero.

    AutolabelError
    ├── ConfigError              settings, CLI arguments, autolabel.toml
    ├── OntologyError            a malformed ontology file (file:line field.path: message)
    ├── InputError               input data: unreadable file, bad rows
    │   ├── BadRowError          one row failed validation (row number, field)
    │   └── ImageError           an image is missing, unreadable, not an image or too large
    ├── ProviderError            a model endpoint or the embedded model
    │   ├── ModelNotAvailableError   the embedded model is not installed / a GGUF is missing
    │   ├── TransientProviderError   retryable: 429, 5xx, timeouts, connection errors
    │   └── PermanentProviderError   not retryable: 4xx other than 429, auth failures
    ├── AnswerError              the model's answer cannot be parsed or fails the schema
    │                            (control flow: the engine re-asks, bounded, then records failure)
    ├── StoreError               database problems (unreachable, migration needed)
    │   ├── NotFoundError        a run, item, gold set or task that does not exist
    │   └── JobBusyError         the job is being run by another live process
    ├── ReviewError              queue misuse: claim held by another reviewer, nothing to undo
    │   └── TaskGoneError        the task left the reviewer (decided, taken, withdrawn) meanwhile
    └── EvaluationError          no gold overlap, incompatible task types
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class AutolabelError(Exception):
    """Base of all autolabel errors. ``hint`` says how to fix it, when known."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(AutolabelError):
    """Settings, CLI arguments or autolabel.toml are invalid."""


class OntologyError(AutolabelError):
    """An ontology file is malformed. ``problems`` lists each located problem."""

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class InputError(AutolabelError):
    """Input data cannot be read."""


class BadRowError(InputError):
    """One input row failed validation."""

    def __init__(self, message: str, *, row: int, field: str | None = None) -> None:
        where = f"row {row}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")
        self.row = row
        self.field = field
        self.reason = message


class ImageError(InputError):
    """An image file cannot be used (the row naming it becomes a bad row)."""


class ProviderError(AutolabelError):
    """A model endpoint or the embedded model failed."""

    # Calls made before giving up, set by the engine's retry loop (None: not counted).
    attempts: int | None = None


class ModelNotAvailableError(ProviderError):
    """The requested model cannot be loaded."""


class TransientProviderError(ProviderError):
    """A failure worth retrying. ``retry_after`` is the server's wish, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """A failure that retrying will not fix."""


class AnswerError(AutolabelError):
    """The model's answer is not valid for the schema. The engine re-asks, then records it."""

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class StoreError(AutolabelError):
    """The database cannot be used."""


class NotFoundError(StoreError):
    """A run, item, gold set or review task does not exist."""


class JobBusyError(StoreError):
    """Another live process holds the job's lease (one run per job at a time)."""


class ReviewError(AutolabelError):
    """The review queue was used wrongly."""


class TaskGoneError(ReviewError):
    """The reviewer's task was settled, taken or withdrawn while they looked at it.

    Not a misuse: a lease ran out, or another reviewer or the adjudicator got there
    first. ``reason`` is ``decided`` | ``taken`` | ``adjudication`` | ``withdrawn``;
    ``by`` / ``at`` say who did it and when (when known); ``second_opinion_id`` is the
    audit row that kept the reviewer's own label (None when there was none to keep).
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: int,
        reason: str,
        by: str | None = None,
        at: datetime | None = None,
        final_label: Any = None,
        second_opinion_id: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.task_id = task_id
        self.reason = reason
        self.by = by
        self.at = at
        self.final_label = final_label
        self.second_opinion_id = second_opinion_id


class EvaluationError(AutolabelError):
    """An evaluation cannot be computed."""


__all__ = [
    "AnswerError",
    "AutolabelError",
    "BadRowError",
    "ConfigError",
    "EvaluationError",
    "InputError",
    "JobBusyError",
    "ModelNotAvailableError",
    "NotFoundError",
    "OntologyError",
    "PermanentProviderError",
    "ProviderError",
    "ReviewError",
    "StoreError",
    "TaskGoneError",
    "TransientProviderError",
]
