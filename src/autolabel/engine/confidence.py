"""From a provider response to (label, confidence, distribution, method).

Methods, in order of preference:
- ``choice_logprobs``: the provider scored every label (embedded model). Classify:
  softmax over the label set; multi_label: one probability per label.
- ``listed_shares``: multi_label with ``multi_label: {method: listed}``: the provider
  gave each label's share as the answer list's lead; the ontology's fitted rule
  (priors, relative threshold) decides, and the confidence is the corrected share the
  chosen labels hold together.
- ``token_logprobs``: the endpoint returned token log-probabilities for its answer.
  Classify: the chosen label's probability is the product of its tokens'
  probabilities, alternatives come from the top log-probs at the label's first
  token; the result is normalised over the label set. Spans/fields: each span's
  (field's) probability is the product over the tokens of its value.
- ``label_probs``: the provider gave each label's probability outright (the embedded
  image classifier); classify keeps the top label's own probability.
- ``self_consistency``: no log-probabilities; the share of n samples that agree
  with the majority answer (per label / span / field for the distribution).

Boxes: an object's confidence is the probability of its label's tokens
(``token_logprobs``), or the share of samples holding the same label at IoU >= 0.5
(``self_consistency``); the item's confidence is its least sure object, and the
distribution lists the objects' confidences in order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from autolabel.errors import AnswerError
from autolabel.hashing import canonical_json
from autolabel.ontology.answers import parse_answer
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.providers.base import ProviderResponse, Sample, TokenLogprob


@dataclass(frozen=True)
class Scored:
    label: Any
    confidence: float
    distribution: Any
    method: str
    samples: list[Any] | None = None


def softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def score_response(ontology: Ontology, response: ProviderResponse, item: dict[str, Any]) -> Scored:
    """Raise AnswerError when no sample yields a valid answer."""
    if response.label_scores:
        return _from_label_scores(ontology, response.label_scores)
    if response.label_probs:
        return _from_label_probs(ontology, response.label_probs)
    if not response.samples:
        # Providers reject empty answers; this guards replayed (cached) ones too.
        raise AnswerError("the answer holds no text")
    if len(response.samples) > 1:
        return _self_consistency(ontology, response.samples, item)
    sample = response.samples[0]
    label = _parse_sample(ontology, sample, item)
    if sample.logprobs:
        return _from_token_logprobs(ontology, label, sample)
    # One sample and nothing to score it with: the caller asks for more samples.
    return Scored(label, float("nan"), None, "none")


def _parse_sample(ontology: Ontology, sample: Sample, item: dict[str, Any]) -> Any:
    if sample.refusal is not None:
        raise AnswerError(f"the model refused: {sample.refusal[:200]}", raw=sample.text)
    if sample.truncated:
        # Even if the cut-off text happens to parse, it is not the model's whole answer.
        raise AnswerError("the answer was cut off at max_tokens", raw=sample.text)
    return parse_answer(ontology, sample.text, item)


def _from_label_scores(ontology: Ontology, scores: dict[str, float]) -> Scored:
    names = ontology.label_names
    missing = [n for n in names if n not in scores]
    if missing:
        raise AnswerError(f"no score for label(s) {', '.join(missing)}")
    if ontology.task == TaskType.CLASSIFY:
        dist = softmax({n: scores[n] for n in names})
        label = max(dist, key=dist.__getitem__)
        return Scored(label, dist[label], dist, "choice_logprobs")
    if ontology.listed_scoring:
        return listed_decision(ontology, scores)
    probs = {n: float(scores[n]) for n in names}
    chosen = [n for n in names if probs[n] >= 0.5]
    return Scored(chosen, _set_confidence(probs), probs, "choice_logprobs")


def listed_decision(ontology: Ontology, shares: dict[str, float]) -> Scored:
    """The ontology's ``listed`` rule on raw shares: divide by the priors, renormalise,
    keep every label within ``relative_threshold`` of the top one. The distribution is
    the corrected shares; the confidence is the share the chosen labels hold together
    (a lone label that holds 90% is sure; two that split 40/40 with the rest are not)."""
    rule = ontology.multi_label
    assert rule is not None
    names = ontology.label_names
    corrected = {n: max(float(shares[n]), 0.0) / rule.priors.get(n, 1.0) for n in names}
    total = sum(corrected.values())
    if not total > 0.0:
        raise AnswerError("every label's share is zero")
    dist = {n: v / total for n, v in corrected.items()}
    floor = rule.relative_threshold * max(dist.values())
    chosen = [n for n in names if dist[n] >= floor]
    return Scored(chosen, min(1.0, sum(dist[n] for n in chosen)), dist, "listed_shares")


def _from_label_probs(ontology: Ontology, probs: dict[str, float]) -> Scored:
    """Probabilities as given: classify takes the most probable label and its own
    probability (not renormalised over the labels: mass outside them is doubt)."""
    names = ontology.label_names
    missing = [n for n in names if n not in probs]
    if missing:
        raise AnswerError(f"no probability for label(s) {', '.join(missing)}")
    dist = {n: min(1.0, max(0.0, float(probs[n]))) for n in names}
    if ontology.task == TaskType.CLASSIFY:
        label = max(names, key=dist.__getitem__)
        return Scored(label, dist[label], dist, "label_probs")
    if ontology.task == TaskType.MULTI_LABEL:
        chosen = [n for n in names if dist[n] >= 0.5]
        return Scored(chosen, _set_confidence(dist), dist, "label_probs")
    raise AnswerError(f"label probabilities cannot answer a {ontology.task.value} task")


def _set_confidence(probs: dict[str, float]) -> float:
    """How sure the whole multi-label decision is: the least certain label decides."""
    return min((max(p, 1.0 - p) for p in probs.values()), default=1.0)


# -- token log-probabilities -----------------------------------------------------------


def _offsets(tokens: list[TokenLogprob]) -> tuple[str, list[int]]:
    starts: list[int] = []
    pos = 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok.token)
    return "".join(t.token for t in tokens), starts


def _tokens_in(starts: list[int], tokens: list[TokenLogprob], lo: int, hi: int) -> list[int]:
    return [i for i, s in enumerate(starts) if s < hi and s + len(tokens[i].token) > lo]


def _value_span(text: str, key: str, value: str, after: int = 0) -> tuple[int, int] | None:
    """Character span of a JSON string value ``value`` for ``key``, searching from ``after``."""
    key_at = text.find(f'"{key}"', after)
    if key_at == -1:
        return None
    start = text.find(value, key_at + len(key) + 2)
    if start == -1:
        return None
    return start, start + len(value)


def _prob(tokens: list[TokenLogprob], idx: list[int]) -> float:
    return math.exp(sum(tokens[i].logprob for i in idx)) if idx else 1.0


def _from_token_logprobs(ontology: Ontology, label: Any, sample: Sample) -> Scored:
    tokens = sample.logprobs or []
    text, starts = _offsets(tokens)
    task = ontology.task
    if task == TaskType.CLASSIFY:
        span = _value_span(text, "label", str(label))
        if span is None:  # the model wrote the label differently (case); score whole answer
            p = _prob(tokens, list(range(len(tokens))))
            dist = {n: (p if n == label else 0.0) for n in ontology.label_names}
            return Scored(label, p, _normalise(dist, label), "token_logprobs")
        idx = _tokens_in(starts, tokens, *span)
        mass = {n: 0.0 for n in ontology.label_names}
        mass[label] = _prob(tokens, idx)
        first = tokens[idx[0]] if idx else None
        if first is not None:
            offset = span[0] - starts[idx[0]]  # the token may begin before the value (a quote)
            for alt, lp in first.top.items():
                alt_text = alt[offset:] if offset > 0 else alt
                if not alt_text or alt == first.token:
                    continue
                matches = [n for n in ontology.label_names if n != label and n.startswith(alt_text)]
                for n in matches:
                    mass[n] += math.exp(lp) / len(matches)
        dist = _normalise(mass, label)
        return Scored(label, dist[label], dist, "token_logprobs")
    if task == TaskType.MULTI_LABEL:
        probs = {n: 0.0 for n in ontology.label_names}
        cursor = 0
        for name in label:
            at = text.find(f'"{name}"', cursor)
            if at == -1:
                probs[name] = 1.0
                continue
            probs[name] = _prob(tokens, _tokens_in(starts, tokens, at + 1, at + 1 + len(name)))
            cursor = at + len(name)
        return Scored(label, _set_confidence(probs), probs, "token_logprobs")
    if task == TaskType.BOXES:
        per_obj: list[float] = []
        cursor = 0
        for obj in label["objects"]:
            span = _value_span(text, "label", obj["label"], cursor)
            per_obj.append(_prob(tokens, _tokens_in(starts, tokens, *span)) if span else 1.0)
            cursor = span[1] if span else cursor
        return _boxes_scored(label, per_obj, "token_logprobs", tokens)
    if task == TaskType.SPANS:
        per_span: list[float] = []
        for span_obj in label:
            span = _value_span(text, "text", span_obj["text"])
            lspan = _value_span(text, "label", span_obj["label"], span[1] if span else 0)
            idx = _tokens_in(starts, tokens, *span) if span else []
            if lspan:
                idx += _tokens_in(starts, tokens, *lspan)
            per_span.append(_prob(tokens, sorted(set(idx))))
        if not per_span:  # "no entities" is itself a decision with a probability
            return Scored(label, _prob(tokens, list(range(len(tokens)))), [], "token_logprobs")
        return Scored(label, min(per_span), per_span, "token_logprobs")
    # fields
    per_field: dict[str, float] = {}
    for name, value in label.items():
        rendered = canonical_json(value) if not isinstance(value, str) else value
        span = _value_span(text, name, rendered)
        per_field[name] = _prob(tokens, _tokens_in(starts, tokens, *span)) if span else 1.0
    return Scored(label, min(per_field.values(), default=1.0), per_field, "token_logprobs")


def _boxes_scored(
    label: dict[str, Any], per_obj: list[float], method: str, tokens: list[TokenLogprob]
) -> Scored:
    objects = [_with_confidence(o, c) for o, c in zip(label["objects"], per_obj, strict=True)]
    if per_obj:
        conf = min(per_obj)
    else:  # "nothing here" is itself a decision with a probability
        conf = _prob(tokens, list(range(len(tokens))))
    return Scored({"objects": objects}, conf, per_obj, method)


def _with_confidence(obj: dict[str, Any], conf: float) -> dict[str, Any]:
    return {**obj, "confidence": round(conf, 6)}


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


BOX_MATCH_IOU = 0.5  # the usual detection match (COCO's AP50)


def same_boxes(want: dict[str, Any], got: dict[str, Any] | None) -> bool:
    """Every object of ``want`` matched once by one of ``got`` with its label at IoU >= 0.5,
    none left over: the same boxes answer (used for accuracy, routing and agreement)."""
    if got is None:
        return False
    left = list(got["objects"])
    if len(left) != len(want["objects"]):
        return False
    for g in want["objects"]:
        best = max(
            (o for o in left if o["label"] == g["label"]),
            key=lambda o: iou(o["box"], g["box"]),
            default=None,
        )
        if best is None or iou(best["box"], g["box"]) < BOX_MATCH_IOU:
            return False
        left.remove(best)
    return True


def _holds(answer: dict[str, Any], obj: dict[str, Any]) -> bool:
    return any(
        o["label"] == obj["label"] and iou(o["box"], obj["box"]) >= BOX_MATCH_IOU
        for o in answer["objects"]
    )


def _boxes_consistency(answers: list[dict[str, Any]], n: int) -> Scored:
    """The sample that agrees most with the others, each object scored by how many samples
    hold it; an empty answer by the share of empty answers."""

    def support(obj: dict[str, Any]) -> float:
        return sum(1 for a in answers if _holds(a, obj)) / n

    def agreement(a: dict[str, Any]) -> float:
        if not a["objects"]:
            return sum(1 for b in answers if not b["objects"]) / n
        return sum(support(o) for o in a["objects"]) / len(a["objects"])

    best = max(answers, key=agreement)  # first of the best: samples keep their order
    per_obj = [support(o) for o in best["objects"]]
    objects = [_with_confidence(o, c) for o, c in zip(best["objects"], per_obj, strict=True)]
    conf = min(per_obj) if per_obj else agreement(best)
    return Scored({"objects": objects}, conf, per_obj, "self_consistency", samples=answers)


def _normalise(mass: dict[str, float], chosen: str) -> dict[str, float]:
    total = sum(mass.values())
    if total <= 0:
        return {n: (1.0 if n == chosen else 0.0) for n in mass}
    return {n: v / total for n, v in mass.items()}


# -- self-consistency ----------------------------------------------------------------


def _self_consistency(ontology: Ontology, samples: list[Sample], item: dict[str, Any]) -> Scored:
    answers: list[Any] = []
    errors: list[str] = []
    for s in samples:
        try:
            answers.append(_parse_sample(ontology, s, item))
        except AnswerError as exc:
            errors.append(exc.message)
    if not answers:
        raise AnswerError(f"no valid answer in {len(samples)} samples: {errors[0]}")
    n = len(samples)  # unparseable samples count against agreement
    if ontology.task == TaskType.BOXES:
        return _boxes_consistency(answers, n)
    votes = Counter(canonical_json(a) for a in answers)
    top_key, top_count = votes.most_common(1)[0]
    label = next(a for a in answers if canonical_json(a) == top_key)
    task = ontology.task
    dist: Any
    if task == TaskType.CLASSIFY:
        dist = {name: sum(1 for a in answers if a == name) / n for name in ontology.label_names}
    elif task == TaskType.MULTI_LABEL:
        dist = {name: sum(1 for a in answers if name in a) / n for name in ontology.label_names}
    elif task == TaskType.SPANS:
        dist = [sum(1 for a in answers if sp in a) / n for sp in label]
    else:
        dist = {k: sum(1 for a in answers if a.get(k) == v) / n for k, v in label.items()}
    return Scored(label, top_count / n, dist, "self_consistency", samples=answers)
