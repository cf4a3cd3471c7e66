"""Compile an ontology + item into chat messages and a JSON schema for the answer.

The prompt hash covers the template sources and the ontology, not the item, so
every label produced with the same instructions carries the same hash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from autolabel.errors import ConfigError
from autolabel.hashing import stable_hash
from autolabel.images import IMAGE_KEY, ImageRef, sent_size
from autolabel.ontology.answers import answer_prefix, answer_schema, format_answer
from autolabel.ontology.neutralise import neutralise
from autolabel.ontology.schema import Ontology, TaskType


def default_prompts_dir() -> Path:
    """``prompts/`` of a source checkout, else the copy packaged into the wheel."""
    repo = Path(__file__).resolve().parents[3] / "prompts"
    if repo.is_dir():
        return repo
    return Path(str(resources.files("autolabel") / "_prompts"))


@dataclass(frozen=True)
class CompiledPrompt:
    """What a provider needs for one item."""

    # A message's content is text, or for an image item a list of parts: the text and
    # ``{"type": "image", "sha256": ..., "max_side": ...}`` naming one of ``images``.
    # Providers that can see turn the part into their wire form (a data URL for OpenAI);
    # the hash, not the path, is what cache keys see.
    messages: list[dict[str, Any]]
    schema: dict[str, Any]
    prompt_hash: str
    task: TaskType
    # The label set for classify / multi_label (choice scoring needs it).
    labels: tuple[str, ...] = ()
    # The assistant's answer begins with this text for choice scoring (e.g. '{"label": "').
    answer_prefix: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # Refs of the demonstrations chosen for this item (learning issue); part of the hash.
    demonstrations: tuple[str, ...] = ()
    images: tuple[ImageRef, ...] = ()

    def to_text(self) -> str:
        parts = [f"--- {m['role']} ---\n{content_text(m['content'])}" for m in self.messages]
        parts.append("--- answer schema ---\n" + json.dumps(self.schema, indent=2))
        return "\n\n".join(parts)


class PromptCompiler:
    """Renders one template per task type. ``template`` picks a variant (e.g. 'classify_terse')."""

    def __init__(
        self,
        ontology: Ontology,
        *,
        template: str | None = None,
        prompts_dir: Path | None = None,
    ) -> None:
        self.ontology = ontology
        self.prompts_dir = prompts_dir or default_prompts_dir()
        self.template_name = f"{template or ontology.task.value}.j2"
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.prompts_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # plain text prompts, not HTML
            auto_reload=False,  # templates are read once; the prompt hash covers them
        )
        try:
            self._template = self._env.get_template(self.template_name)
        except jinja2.TemplateNotFound:
            available = sorted(p.stem for p in self.prompts_dir.glob("*.j2") if p.stem[0] != "_")
            raise ConfigError(
                f"prompt template '{self.template_name}' not found in {self.prompts_dir}",
                hint=f"available templates: {', '.join(available)}",
            ) from None
        self.schema = answer_schema(ontology)
        self.prompt_hash = self._hash()
        self._system = self._render_block("system", item={})

    def _hash(self) -> str:
        sources = {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted(self.prompts_dir.glob("*.j2"))
            if p.name == self.template_name or p.name.startswith("_")
        }
        return stable_hash(
            {
                "template": self.template_name,
                "sources": sources,
                "ontology": self.ontology.prompt_view(),
            }
        )

    def _render_block(self, block: str, **context: Any) -> str:
        ctx = self._template.new_context({"ontology": self.ontology, **context})
        try:
            render = self._template.blocks[block]
        except KeyError:
            raise ConfigError(
                f"template {self.template_name} has no '{{% block {block} %}}'"
            ) from None
        return "".join(render(ctx)).strip()

    def compile(self, item: dict[str, Any], demos: Sequence[Any] = ()) -> CompiledPrompt:
        """Messages for one item. ``demos`` (objects with ``ref``, ``input``, ``output``, e.g.
        ``learning.Demonstration``) follow the static examples; the prompt hash then covers
        which demonstrations were shown and their labels."""
        # Defused, so no item can close the data section or open a chat turn.
        shown = {
            name: neutralise(as_text(item.get(name, ""))) for name in self.ontology.input.fields
        }
        images: tuple[ImageRef, ...] = ()
        if self.ontology.input.image is not None:
            ref = _image_of(item)
            if ref is not None:
                images = (ref,)
                w, h = sent_size(ref.width, ref.height, self.ontology.input.max_side)
                # The model is told the size it sees: boxes come back in those pixels and
                # are scaled to the original by the answer parser.
                shown = {"image": f"the attached picture, {w}x{h} pixels", **shown}
        messages: list[dict[str, Any]] = [{"role": "system", "content": self._system}]
        for example in [*self.ontology.examples, *demos]:
            # Demonstrations are reviewed items: user data, defused like the item itself.
            ex_item = {
                name: neutralise(as_text(example.input.get(name, "")))
                for name in self.ontology.input.fields
            }
            messages.append({"role": "user", "content": self._render_block("user", item=ex_item)})
            messages.append(
                {"role": "assistant", "content": format_answer(self.ontology, example.output)}
            )
        user: Any = self._render_block("user", item=shown)
        if images:
            user = [
                {"type": "text", "text": user},
                {
                    "type": "image",
                    "sha256": images[0].sha256,
                    "max_side": self.ontology.input.max_side,
                    "size": [w, h],  # as sent (token estimates)
                },
            ]
        messages.append({"role": "user", "content": user})
        refs = tuple(str(d.ref) for d in demos)
        prompt_hash = self.prompt_hash
        if demos:
            prompt_hash = stable_hash(
                {
                    "base": self.prompt_hash,
                    "demos": [[r, d.output] for r, d in zip(refs, demos, strict=True)],
                }
            )
        # Spans are located in the first input field (answers.align_spans): a decoder that
        # copies entity text from the item needs that text as is.
        meta = {}
        if self.ontology.task == TaskType.SPANS:
            meta["source"] = as_text(item.get(self.ontology.input.fields[0], ""))
        return CompiledPrompt(
            messages=messages,
            schema=self.schema,
            prompt_hash=prompt_hash,
            task=self.ontology.task,
            labels=tuple(self.ontology.label_names),
            answer_prefix=answer_prefix(self.ontology),
            demonstrations=refs,
            meta=meta,
            images=images,
        )


def _image_of(item: dict[str, Any]) -> ImageRef | None:
    """The item's image (``None`` for a placeholder item, e.g. ``prompt show`` without data)."""
    data = item.get(IMAGE_KEY)
    return ImageRef.from_json(data) if isinstance(data, dict) else None


def content_text(content: Any) -> str:
    """A message's text: the content itself, or its text parts with a marker per image."""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        if part.get("type") == "text":
            out.append(str(part.get("text", "")))
        else:
            out.append(f"[image sha256:{str(part.get('sha256', ''))[:12]}]")
    return "\n".join(out)


def as_text(value: Any) -> str:
    """An item field as prompt text: JSON for structured values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
