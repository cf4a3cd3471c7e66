"""Confidence from label scores, token log-probabilities and self-consistency."""

from __future__ import annotations

import json
import math

import pytest

from autolabel.engine.confidence import score_response
from autolabel.errors import AnswerError
from autolabel.ontology import parse_ontology
from autolabel.providers.base import ProviderResponse, Sample, TokenLogprob

CLS = parse_ontology(
    "name: t\ntask: classify\nlabels: [{name: positive}, {name: negative}, {name: neutral}]\n"
)
MULTI = parse_ontology("name: m\ntask: multi_label\nlabels: [{name: joy}, {name: anger}]\n")
SPANS = parse_ontology("name: s\ntask: spans\nlabels: [{name: LOC}, {name: PER}]\n")


def _resp(*samples: Sample, scores: dict[str, float] | None = None) -> ProviderResponse:
    return ProviderResponse(samples=list(samples), model="m", label_scores=scores)


def test_choice_scores_are_a_softmax_over_the_label_set() -> None:
    scored = score_response(
        CLS, _resp(Sample("{}"), scores={"positive": -0.1, "negative": -2.0, "neutral": -5.0}), {}
    )
    z = math.exp(-0.1) + math.exp(-2.0) + math.exp(-5.0)
    assert scored.label == "positive"
    assert scored.confidence == pytest.approx(math.exp(-0.1) / z)
    assert sum(scored.distribution.values()) == pytest.approx(1.0)
    assert scored.method == "choice_logprobs"


def test_multi_label_probabilities_threshold_at_half() -> None:
    scored = score_response(MULTI, _resp(Sample("{}"), scores={"joy": 0.9, "anger": 0.3}), {})
    assert scored.label == ["joy"]
    assert scored.confidence == pytest.approx(0.7)  # the least certain label decides


def test_token_logprobs_classify_uses_alternatives_at_the_label_token() -> None:
    toks = [
        TokenLogprob('{"', -0.01),
        TokenLogprob("label", -0.01),
        TokenLogprob('":"', -0.01),
        TokenLogprob("pos", math.log(0.6), {"pos": math.log(0.6), "neg": math.log(0.3)}),
        TokenLogprob("itive", math.log(0.9)),
        TokenLogprob('"}', -0.01),
    ]
    text = "".join(t.token for t in toks)
    assert json.loads(text) == {"label": "positive"}
    scored = score_response(CLS, _resp(Sample(text, toks)), {})
    p_pos, p_neg = 0.6 * 0.9, 0.3
    assert scored.method == "token_logprobs"
    assert scored.confidence == pytest.approx(p_pos / (p_pos + p_neg))
    assert scored.distribution["negative"] == pytest.approx(p_neg / (p_pos + p_neg))
    assert scored.distribution["neutral"] == 0.0


def test_span_confidence_is_per_span() -> None:
    answer = '{"entities":[{"text":"Paris","label":"LOC"}]}'
    toks = [TokenLogprob(ch, math.log(0.99)) for ch in answer]
    scored = score_response(SPANS, _resp(Sample(answer, toks)), {"text": "I love Paris."})
    assert scored.label == [{"start": 7, "end": 12, "text": "Paris", "label": "LOC"}]
    # 5 characters of "Paris" + 3 of "LOC", each p=0.99
    assert scored.distribution == [pytest.approx(0.99**8)]


def test_self_consistency_counts_unparseable_samples_against_agreement() -> None:
    samples = [Sample('{"label": "negative"}')] * 3 + [
        Sample('{"label": "positive"}'),
        Sample("garbage"),
    ]
    scored = score_response(CLS, _resp(*samples), {})
    assert scored.label == "negative"
    assert scored.confidence == pytest.approx(3 / 5)
    assert scored.distribution == {"positive": 0.2, "negative": 0.6, "neutral": 0.0}
    assert scored.method == "self_consistency"


def test_no_valid_sample_is_an_answer_error() -> None:
    with pytest.raises(AnswerError, match="no valid answer in 2 samples"):
        score_response(CLS, _resp(Sample("x"), Sample('{"label": "maybe"}')), {})
