"""Image input in the ontology: what is accepted, what is refused (file:line errors)."""

from __future__ import annotations

import pytest

from autolabel.errors import OntologyError
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.loader import parse_ontology

BOXES = """\
name: shapes
task: boxes
input: {image: picture, max_side: 100}
labels: [{name: red}, {name: blue}]
"""


def test_image_input_defaults_to_no_text_fields_and_prompts_with_the_picture(tmp_path) -> None:
    ont = parse_ontology(BOXES)
    assert ont.input.fields == [] and ont.has_image
    item = {"__image__": {"path": "/x.png", "sha256": "ab" * 32, "width": 400, "height": 200}}
    prompt = PromptCompiler(ont).compile(item)
    text, image = prompt.messages[-1]["content"]
    assert "the attached picture, 100x50 pixels" in text["text"]  # the size the model sees
    assert image == {"type": "image", "sha256": "ab" * 32, "max_side": 100, "size": [100, 50]}
    assert prompt.images[0].width == 400
    assert '"objects"' in prompt.messages[0]["content"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BOXES.replace("input: {image: picture, max_side: 100}\n", ""), "needs an image column"),
        (BOXES.replace("task: boxes", "task: spans"), "cannot read images"),
        (BOXES.replace("max_side: 100", "max_side: 4"), "max_side"),
        (
            "name: t\ntask: classify\ninput: {fields: []}\nlabels: [{name: a}, {name: b}]\n",
            "at least one field",
        ),
        (
            "name: t\ntask: classify\ninput: {image: p}\nlabels: [{name: a}, {name: b}]\n"
            "examples: [{input: {}, output: a}]\n",
            "cannot show pictures",
        ),
    ],
    ids=["boxes-without-image", "spans-with-image", "tiny-max-side", "no-input", "examples"],
)
def test_image_ontology_errors(text: str, words: str) -> None:
    with pytest.raises(OntologyError) as err:
        parse_ontology(text)
    assert words in str(err.value)


def test_token_estimate_counts_picture_tiles() -> None:
    from autolabel.engine.limits import estimate_tokens

    def msg(size: list[int]) -> list[dict]:
        part = {"type": "image", "sha256": "x", "max_side": 1024, "size": size}
        return [{"role": "user", "content": [{"type": "text", "text": "a" * 40}, part]}]

    assert estimate_tokens(msg([100, 50]), 0) == 10 + 85 + 170  # one tile
    assert estimate_tokens(msg([1024, 768]), 0) == 10 + 85 + 170 * 4  # 2 x 2 tiles
