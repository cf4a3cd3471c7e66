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
    assert image == {"type": "image", "sha256": "ab" * 32, "max_side": 100}
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
