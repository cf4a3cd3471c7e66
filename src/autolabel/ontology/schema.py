"""The ontology: a labeling task's schema, validated strictly (unknown keys are errors)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)


class TaskType(StrEnum):
    CLASSIFY = "classify"  # exactly one label
    MULTI_LABEL = "multi_label"  # any subset of the labels (possibly empty)
    SPANS = "spans"  # typed character spans (named entities)
    FIELDS = "fields"  # structured extraction into typed fields
    BOXES = "boxes"  # object boxes on an image: [{label, box [x, y, w, h] px, confidence}]


# Tasks that may (classify, multi_label) or must (boxes) read an image.
IMAGE_TASKS = frozenset({TaskType.CLASSIFY, TaskType.MULTI_LABEL, TaskType.BOXES})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    examples: list[str] = Field(default_factory=list)
    # Keyboard shortcut in the review TUI; assigned 1-9, a-z when absent.
    key: str | None = Field(default=None, min_length=1, max_length=1)


FieldType = Literal["string", "number", "integer", "boolean", "date"]


class ExtractField(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    type: FieldType = "string"
    description: str = ""
    required: bool = True
    enum: list[str] | None = None


class InputSpec(_Strict):
    """What a row holds. ``image`` names a column of image paths (relative to the data file);
    with it, ``fields`` (text shown beside the image) default to none."""

    fields: list[str] = Field(default_factory=lambda: ["text"])
    id: str | None = None  # column holding a stable external id; else a content hash
    image: str | None = None
    # The longest side an image is sent with (resized, aspect kept): vision models see
    # ~1k px at most, and a smaller picture costs fewer tokens.
    max_side: int = Field(default=1024, ge=32, le=8192)
    # Larger files are bad rows (a 100 MP scan would stall a run and every reviewer).
    max_pixels: int = Field(default=50_000_000, ge=1)
    max_bytes: int = Field(default=40_000_000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _image_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("image") and "fields" not in data:
            data = {**data, "fields": []}
        return data

    @model_validator(mode="after")
    def _some_input(self) -> InputSpec:
        if not self.fields and not self.image:
            raise ValueError("input needs at least one field (or an image column)")
        if self.image and self.image in self.fields:
            raise ValueError(f"'{self.image}' is the image column; list only text in fields")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """Text input dumps without the image keys: the prompt hashes, ontology hashes and
        stored ontologies of text tasks stay exactly as they were before images."""
        data = handler(self)
        if self.image is None:
            for key in _IMAGE_KEYS:
                data.pop(key, None)
        return data


_IMAGE_KEYS = ("image", "max_side", "max_pixels", "max_bytes")


class Example(_Strict):
    """A few-shot example: an input (by field) and its expected output."""

    input: dict[str, str]
    # classify: "label"; multi_label: ["a", "b"]; spans: [{"text":..,"label":..}]; fields: {...}
    output: Any
    explanation: str | None = None


class DemonstrationSpec(_Strict):
    """Few-shot demonstrations chosen per item from human decisions (learning issue).

    Written in an ontology as ``examples: {from: reviews, k: 8, select: similar}``
    (static examples then go under ``static:``), or as ``demonstrations:``.
    """

    from_: Literal["reviews"] = Field(default="reviews", alias="from")
    k: int = Field(default=8, ge=1, le=64)
    select: Literal["similar", "mmr"] = "similar"  # both: MMR over the nearest, label-diverse
    include_gold: bool = False  # also imported gold labels of this ontology
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MultiLabelScoring(_Strict):
    """How a label-scoring provider (the embedded model) answers a multi_label task.

    ``questions`` (default): one yes/no question per label, P(applies) each, labels with
    P >= 0.5 apply. ``listed``: every label scored as the first element of the answer
    list, a *share* per label from one short decode (several times faster with many
    labels). Shares need a decision rule fitted on labelled dev items by
    ``autolabel eval RUN --apply``: ``priors`` (each label's mean share on the dev items;
    shares are divided by them, since a small model leads with a few favourite labels
    whatever the item says) and ``relative_threshold`` (a label applies when its
    corrected share is at least this fraction of the top label's). Only ``method``
    shapes the prompt; the rule is applied to the answer, like review thresholds.
    """

    method: Literal["questions", "listed"] = "questions"
    priors: dict[str, float] = Field(default_factory=dict)
    relative_threshold: float = Field(default=1.0, gt=0.0, le=1.0)

    @field_validator("priors")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for label, p in value.items():
            if not p > 0.0:
                raise ValueError(f"prior for '{label}' must be positive, got {p}")
        return value


class ReviewPolicy(_Strict):
    """Thresholds the router uses (review issue); all overridable per run."""

    threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    per_label: dict[str, float] = Field(default_factory=dict)
    audit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    consensus: int = Field(default=1, ge=1, description="agreeing human decisions to finalise")
    reviewers_per_item: int = Field(default=1, ge=1)
    route_on_disagreement: bool = True
    honeypot_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    rules: list[ReviewRule] = Field(default_factory=list)
    lease_seconds: int = Field(default=600, ge=5)
    # Queue order used by `autolabel route` / `relabel` when none is given.
    order: Literal["confidence", "uncertainty", "active", "random", "fifo"] = "confidence"

    @field_validator("per_label")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for label, t in value.items():
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"threshold for '{label}' must be within [0, 1], got {t}")
        return value


class ReviewRule(_Strict):
    """A check that forces review when violated."""

    name: str
    kind: Literal["regex", "required_fields", "forbidden_combination"]
    pattern: str | None = None  # regex: route when the item text matches
    field: str | None = None  # regex: which input field (default: all shown fields)
    fields: list[str] = Field(default_factory=list)  # required_fields
    labels: list[str] = Field(default_factory=list)  # forbidden_combination


ReviewPolicy.model_rebuild()


class MigrationSpec(_Strict):
    """How labels of the previous version map to this one (``autolabel ontology migrate``).

    ``rename: {old: new}``, ``merge: {new: [old1, old2]}``, ``split: {old: [new1, new2]}``,
    ``remove: [old]``. Targets must be labels of this version; sources are checked
    against the previous version when the migration is applied.
    """

    rename: dict[str, str] = Field(default_factory=dict)
    merge: dict[str, list[str]] = Field(default_factory=dict)
    split: dict[str, list[str]] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Ontology(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    version: str = "1"
    task: TaskType
    description: str = ""
    input: InputSpec = Field(default_factory=InputSpec)
    labels: list[Label] = Field(default_factory=list)
    fields: list[ExtractField] = Field(default_factory=list)
    guidelines: str = ""
    examples: list[Example] = Field(default_factory=list)
    demonstrations: DemonstrationSpec | None = None
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    # Only for multi_label; absent from dumps when unset (hashes stay as they were).
    multi_label: MultiLabelScoring | None = None
    # Excluded from dumps: a migration section changes no prompt, run key or hash.
    migrate: MigrationSpec | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _examples_mapping(cls, data: Any) -> Any:
        """``examples: {from: reviews, k: 8, static: [...]}`` → demonstrations + static list."""
        if isinstance(data, dict) and isinstance(data.get("examples"), dict):
            data = dict(data)
            spec = dict(data.pop("examples"))
            data["examples"] = spec.pop("static", [])
            if "demonstrations" in data:
                raise ValueError("give demonstrations either under examples: or demonstrations:")
            data["demonstrations"] = spec
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _consistent(self) -> Ontology:
        names = [label.name for label in self.labels]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise _LocatedError(("labels", i, "name"), f"duplicate label '{name}'")
            seen.add(name)
        keys = [label.key for label in self.labels if label.key]
        if len(keys) != len(set(keys)):
            raise _LocatedError(("labels",), "two labels share the same review key")
        if self.task in (TaskType.CLASSIFY, TaskType.MULTI_LABEL, TaskType.SPANS):
            if self.task == TaskType.CLASSIFY and len(self.labels) < 2:
                raise _LocatedError(("labels",), "a classify task needs at least two labels")
            if not self.labels:
                raise _LocatedError(("labels",), f"a {self.task.value} task needs labels")
        if self.input.image and self.task not in IMAGE_TASKS:
            raise _LocatedError(
                ("input", "image"),
                f"a {self.task.value} task cannot read images (only "
                "classify, multi_label and boxes)",
            )
        if self.input.image and (self.examples or self.demonstrations):
            raise _LocatedError(
                ("examples",),
                "few-shot examples cannot show pictures yet; drop them for "
                "image input (put what they teach in the guidelines)",
            )
        if self.task == TaskType.BOXES:
            if not self.input.image:
                raise _LocatedError(("input",), "a boxes task needs an image column (input.image)")
            if not self.labels:
                raise _LocatedError(("labels",), "a boxes task needs labels (the object classes)")
        if self.task == TaskType.FIELDS and not self.fields:
            raise _LocatedError(("fields",), "a fields task needs at least one field")
        if self.multi_label is not None:
            if self.task != TaskType.MULTI_LABEL:
                raise _LocatedError(
                    ("multi_label",), f"a {self.task.value} task has no multi_label scoring"
                )
            for label in self.multi_label.priors:
                if label not in seen:
                    raise _LocatedError(
                        ("multi_label", "priors", label), f"unknown label '{label}'"
                    )
        for label in self.review.per_label:
            if label not in seen:
                raise _LocatedError(("review", "per_label", label), f"unknown label '{label}'")
        if self.migrate is not None:
            self._check_migration_targets(seen)
        for i, ex in enumerate(self.examples):
            for key in ex.input:
                if key not in self.input.fields:
                    raise _LocatedError(
                        ("examples", i, "input", key),
                        f"field '{key}' is not in input.fields {self.input.fields}",
                    )
            self._check_example_output(i, ex.output, seen)
        return self

    def _check_migration_targets(self, labels: set[str]) -> None:
        spec = self.migrate
        assert spec is not None
        targets: list[tuple[tuple[Any, ...], str]] = [
            (("migrate", "rename", old), new) for old, new in spec.rename.items()
        ]
        targets += [(("migrate", "merge", new), new) for new in spec.merge]
        for old, news in spec.split.items():
            if len(news) < 2:
                raise _LocatedError(("migrate", "split", old), "a split needs two or more labels")
            targets += [(("migrate", "split", old), new) for new in news]
        for loc, name in targets:
            if name not in labels:
                raise _LocatedError(loc, f"'{name}' is not a label of this version")
        for old in spec.remove:
            if old in labels:
                raise _LocatedError(("migrate", "remove"), f"'{old}' is still a label")

    def _check_example_output(self, i: int, output: Any, labels: set[str]) -> None:
        loc = ("examples", i, "output")
        if self.task == TaskType.CLASSIFY:
            if output not in labels:
                raise _LocatedError(loc, f"'{output}' is not one of the labels")
        elif self.task == TaskType.MULTI_LABEL:
            if not isinstance(output, list) or any(o not in labels for o in output):
                raise _LocatedError(loc, "must be a list of known labels")
        elif self.task == TaskType.SPANS:
            if not isinstance(output, list) or any(
                not isinstance(o, dict) or o.get("label") not in labels or "text" not in o
                for o in output
            ):
                raise _LocatedError(loc, "must be a list of {text, label} with known labels")
        elif self.task == TaskType.BOXES:
            objects = output.get("objects") if isinstance(output, dict) else None
            if not isinstance(objects, list) or any(
                not isinstance(o, dict) or o.get("label") not in labels or "box" not in o
                for o in objects
            ):
                raise _LocatedError(loc, "must be {objects: [{label, box}]} with known labels")
        elif self.task == TaskType.FIELDS and not isinstance(output, dict):
            raise _LocatedError(loc, "must be a mapping of field name to value")

    # -- helpers used across the engine -------------------------------------------------
    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """Without ``multi_label`` when unset: ontologies that do not use it keep their
        ontology hashes, run keys and stored copies."""
        data = handler(self)
        if data.get("multi_label", 0) is None:
            data.pop("multi_label")
        return data

    def prompt_view(self) -> dict[str, Any]:
        """What defines the prompt (hashed): no review policy; ``demonstrations`` only when
        set, so ontologies without it keep the prompt hashes they always had; of
        ``multi_label`` only the method (the decision rule is fitted after the answers)."""
        exclude: set[str] = {"review"}
        if self.demonstrations is None:
            exclude.add("demonstrations")
        data = self.model_dump(mode="json", exclude=exclude)
        if "multi_label" in data:
            data["multi_label"] = {"method": data["multi_label"]["method"]}
        return data

    @property
    def listed_scoring(self) -> bool:
        """Multi-label answers scored as shares of the list's lead (see MultiLabelScoring)."""
        return self.multi_label is not None and self.multi_label.method == "listed"

    @property
    def has_image(self) -> bool:
        return self.input.image is not None

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def label_keys(self) -> dict[str, str]:
        """Review key per label: its explicit ``key``, else the next free of 1-9, a-z, 0, A-Z.

        Keys the review TUI uses for commands are never handed out.
        """
        taken = {lab.key for lab in self.labels if lab.key and lab.key not in REVIEW_COMMAND_KEYS}
        pool = iter(k for k in _KEY_POOL if k not in REVIEW_COMMAND_KEYS | taken)
        out: dict[str, str] = {}
        for label in self.labels:
            key = label.key if label.key and label.key not in REVIEW_COMMAND_KEYS else None
            key = key or next(pool, None)
            if key is not None:
                out[label.name] = key
        return out


# Keys of review commands (skip, flag, undo, edit, guidelines, quit, help, filter, toggle).
REVIEW_COMMAND_KEYS = frozenset("sfuegq?/ ")
_KEY_POOL = "123456789abcdefghijklmnopqrstuvwxyz0ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _LocatedError(ValueError):
    """A validation error that knows its field path (turned into file:line by the loader)."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
