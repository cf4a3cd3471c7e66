"""Copy-only span decoding (providers/span_decoding.py) and span validation.

The model tests run Gemma 270M (plumbing): whatever it answers, every entity must be
copied from the item with exact offsets, the JSON must be valid and parse back to
the same spans.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autolabel.errors import AnswerError
from autolabel.ontology.answers import align_spans, parse_answer
from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.loader import load_ontology
from autolabel.providers.base import ProviderRequest
from autolabel.providers.span_decoding import SpanDecoder, ends_word, word_starts

REPO = Path(__file__).resolve().parents[2]
WNUT = load_ontology(REPO / "ontologies" / "wnut17.yaml")
ITEMS = [
    json.loads(line)["text"]
    for line in (REPO / "eval" / "data" / "small" / "wnut17_40.jsonl").read_text().splitlines()[:6]
]


def test_an_entity_not_in_the_item_is_rejected() -> None:
    text = "Angela Merkel visited Paris ."
    with pytest.raises(AnswerError, match="does not occur in the item"):
        align_spans(text, [{"text": "Berlin", "label": "location"}], WNUT.label_names)
    # Through the answer parser too (the engine re-asks on AnswerError).
    with pytest.raises(AnswerError):
        parse_answer(
            WNUT, '{"entities": [{"text": "Angela Merkle", "label": "person"}]}', {"text": text}
        )


def test_found_entities_get_exact_offsets() -> None:
    text = "Straße in Paris and PARIS"
    spans = align_spans(
        text,
        [{"text": "paris", "label": "location"}, {"text": "Paris", "label": "location"}],
        WNUT.label_names,
    )
    assert spans and all(text[s["start"] : s["end"]] == s["text"] for s in spans)
    # Case folding that changes a length must not shift offsets: no match is an error.
    with pytest.raises(AnswerError):
        align_spans("Strasse", [{"text": "straße", "label": "location"}], WNUT.label_names)


def test_entities_start_and_end_on_word_boundaries() -> None:
    text = "I love #Paris2024 !"
    starts = word_starts(text)
    assert [text[i] for i in starts] == ["I", "l", "#", "P", "!"]
    assert ends_word(text, len("I love")) and not ends_word(text, len("I lo"))
    assert ends_word(text, len(text))


@pytest.mark.model
def test_copied_spans_match_the_item_text(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    decoder = SpanDecoder.of(rt, WNUT.label_names)
    compiler = PromptCompiler(WNUT)
    found = 0
    for i, text in enumerate(ITEMS[:3]):
        temperature = 0.0 if i % 2 else 1.5  # greedy, and sampled (more, odder entities)
        prompt = rt.tokenize(rt.chat_text(compiler.compile({"text": text}).messages))
        gen, spans = rt.executor.submit(
            decoder.decode,
            prompt,
            text,
            max_tokens=32,
            temperature=temperature,
            rng=np.random.default_rng(i),
        ).result()
        data = json.loads(gen.text)  # always complete, valid JSON
        assert [e["label"] for e in data["entities"]] == [s["label"] for s in spans]
        end = 0
        for span in spans:
            assert text[span["start"] : span["end"]] == span["text"] != ""
            assert span["start"] >= end  # in order of appearance, never overlapping
            end = span["end"]
            assert span["label"] in WNUT.label_names
        # The engine's parser finds the same spans at the same offsets.
        parsed = parse_answer(WNUT, gen.text, {"text": text})
        assert {(s["start"], s["end"], s["label"]) for s in parsed} == {
            (s["start"], s["end"], s["label"]) for s in spans
        }
        found += len(spans)
    assert found > 0  # the check above ran on real entities


@pytest.mark.model
async def test_provider_answers_spans_by_copying(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    text = ITEMS[4]  # a short one
    req = ProviderRequest(
        PromptCompiler(WNUT).compile({"text": text}), temperature=1.0, n=2, seed=3, max_tokens=24
    )
    a = await gemma_provider.complete(req)
    b = await gemma_provider.complete(req)
    assert len(a.samples) == 2 and [s.text for s in a.samples] == [s.text for s in b.samples]
    for sample in a.samples:
        assert "".join(t.token for t in sample.logprobs) == sample.text
        assert all(t.logprob <= 0.0 and t.top for t in sample.logprobs)
        parse_answer(WNUT, sample.text, {"text": text})  # valid, every entity in the item
    assert a.tokens_out == sum(len(s.logprobs) for s in a.samples)
