"""Confidence from label probabilities (the embedded image classifier's answers), and which
provider ``--provider local`` means for an image ontology."""

from __future__ import annotations

import pytest

from autolabel.engine.confidence import score_response
from autolabel.errors import AnswerError, ConfigError
from autolabel.ontology.schema import Ontology
from autolabel.providers.base import ProviderResponse
from autolabel.providers.factory import create_provider
from autolabel.settings import Settings


def _ont(task: str) -> Ontology:
    return Ontology.model_validate(
        {
            "name": "pets",
            "task": task,
            "input": {"image": "image"},
            "labels": [{"name": "cat"}, {"name": "dog"}, {"name": "axolotl"}],
        }
    )


def _probs(**p: float) -> ProviderResponse:
    return ProviderResponse(samples=[], model="m", label_probs=p)


def test_classify_keeps_the_top_label_probability_unnormalised() -> None:
    # 30% of the mass is on pictures none of the labels name: that is doubt, kept as such.
    scored = score_response(_ont("classify"), _probs(cat=0.5, dog=0.2, axolotl=0.0), {})
    assert (scored.label, scored.method) == ("cat", "label_probs")
    assert scored.confidence == pytest.approx(0.5)
    assert scored.distribution == {"cat": 0.5, "dog": 0.2, "axolotl": 0.0}
    nothing = score_response(_ont("classify"), _probs(cat=0.0, dog=0.0, axolotl=0.0), {})
    assert nothing.confidence == 0.0  # routes to review


def test_multi_label_takes_labels_at_or_above_one_half() -> None:
    scored = score_response(_ont("multi_label"), _probs(cat=0.9, dog=0.6, axolotl=0.1), {})
    assert scored.label == ["cat", "dog"]
    assert scored.confidence == pytest.approx(0.6)  # the least sure decision


def test_missing_labels_and_cache_round_trip() -> None:
    with pytest.raises(AnswerError, match="axolotl"):
        score_response(_ont("classify"), _probs(cat=0.5, dog=0.2), {})
    response = _probs(cat=0.5, dog=0.2, axolotl=0.0)
    assert ProviderResponse.from_json(response.to_json()) == response


def test_local_provider_for_boxes_says_what_to_use_instead() -> None:
    with pytest.raises(ConfigError, match="cannot answer a boxes task") as err:
        create_provider(
            Settings(),
            provider="local",
            ontology=Ontology.model_validate(
                {
                    "name": "b",
                    "task": "boxes",
                    "input": {"image": "image"},
                    "labels": [{"name": "cat"}],
                }
            ),
        )
    assert "--base-url" in str(err.value)
