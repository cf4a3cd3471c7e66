"""Batched choice scoring (one decode for all label continuations) on Gemma 270M.

llama.cpp's CPU logits depend on the *number of tokens in a decode*: decodes of fewer
than 4 tokens and of 4 or more take different quantized-matmul kernels, and the same
token's log-prob moves by up to ~0.15 (Gemma 270M; ~0.05 on Qwen 1.5B) between them,
sequences or not (measured: a continuation decoded token by token vs as one batch).
Today's sequential loop itself mixes both kernels (short labels < 4 tokens). So:

- with one continuation per decode the batched path reproduces today's sequential
  scores within 1e-3 (same shapes: the trie, positions and sequences are right);
- a continuation's score does not change (1e-4) when the *other* continuations of its
  decode change but the decode keeps its shape: sequences do not see each other;
- all continuations in one decode stay within the shape noise of the sequential
  scores, also when chunked; chunks beyond the context's sequences are exact.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from autolabel.ontology.compiler import PromptCompiler
from autolabel.ontology.schema import MultiLabelScoring, Ontology
from autolabel.providers.base import ProviderRequest
from autolabel.providers.llama_runtime import log_softmax

pytestmark = pytest.mark.model

# Intent-like labels with long shared token prefixes (as in BANKING77), plus short ones.
LABELS = [
    "card_arrival",
    "card_linking",
    "card_payment_fee_charged",
    "card_payment_not_recognised",
    "card_payment_wrong_exchange_rate",
    "cash_withdrawal_charge",
    "cash_withdrawal_not_recognised",
    "top_up_failed",
    "top_up_reverted",
    "top_up_by_card_charge",
    "pin_blocked",
    "refund_not_showing_up",
]


def _prompt(provider, labels: list[str], text: str) -> tuple[list[int], list[list[int]]]:  # type: ignore[no-untyped-def]
    ontology = Ontology.model_validate(
        {
            "name": "intents",
            "task": "classify",
            "description": "What does the customer want?",
            "labels": [{"name": label} for label in labels],
        }
    )
    request = ProviderRequest(PromptCompiler(ontology).compile({"text": text}))
    chat = provider.runtime.chat_text(request.messages()) + request.prompt.answer_prefix
    prefix, conts, _ = provider.choice_tokens(chat, labels, '"}')
    return prefix, conts


# Summed over a continuation's tokens; the largest gap measured on an AVX2 CPU was 0.23
# (9 tokens). AVX-512 CPUs (with the guard's safe settings on AMX) move more: 0.43 for 4
# tokens on a Xeon. So the tolerance is measured here, see ``shape_noise``, and never
# below this floor.
SHAPE_NOISE_FLOOR = 0.4


@pytest.fixture(scope="module")
def shape_noise(gemma_provider) -> float:  # type: ignore[no-untyped-def]
    """This machine's decode-shape noise, measured without batching or sequences: the
    largest gap between each label scored in one decode and token by token (1-token
    decodes), times 2 (both sides of a comparison carry it). A batching bug (a wrong
    position, a sequence seeing another's tokens) moves scores by whole nats."""
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "My PIN is blocked.")
    whole = [s for s, _ in rt.score_continuations(prefix, conts, batched=False)]
    gap = max(
        abs(score - _token_by_token(rt, prefix, cont))
        for cont, score in zip(conts, whole, strict=True)
    )
    return max(SHAPE_NOISE_FLOOR, 2 * gap)


def _token_by_token(rt, prefix: list[int], cont: list[int]) -> float:  # type: ignore[no-untyped-def]
    """log P(cont | prefix) from one-token decodes: no batching, no sequences."""
    return sum(float(log_softmax(rt.prepare(prefix + cont[:k]))[cont[k]]) for k in range(len(cont)))


def _assert_same(
    batched: list[tuple[float, int]], sequential: list[tuple[float, int]], tol: float = 1e-3
) -> None:
    assert len(batched) == len(sequential)
    for (b, _), (s, _) in zip(batched, sequential, strict=True):
        assert b == pytest.approx(s, abs=tol)


def test_one_continuation_per_decode_equals_sequential_scores(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "My card still hasn't arrived, when will it?")
    sequential = rt.score_continuations(prefix, conts, batched=False)
    decodes = rt.n_chunk_decodes
    _assert_same(rt.score_continuations(prefix, conts, max_seqs=1), sequential)
    assert rt.n_chunk_decodes - decodes == len(LABELS)


def test_batched_scores_match_sequential_scores(gemma_provider, shape_noise) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "My card still hasn't arrived, when will it?")
    # The case is only meaningful if continuations share tokens beyond the first one.
    heads = [tuple(c[:2]) for c in conts if len(c) > 2]
    assert len(set(heads)) < len(heads)

    decodes = rt.n_chunk_decodes
    batched = rt.score_continuations(prefix, conts)
    assert rt.n_chunk_decodes == decodes + 1  # all twelve labels in one decode
    sequential = rt.score_continuations(prefix, conts, batched=False)
    _assert_same(batched, sequential, shape_noise)
    # Scoring left the prompt (sequence 0) intact: the same numbers after the
    # sequential pass moved the cache, and straight after a batched pass.
    _assert_same(rt.score_continuations(prefix, conts), batched)
    _assert_same(rt.score_continuations(prefix, conts), batched)


def test_sequences_do_not_see_each_other(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "I was charged twice for a top up.")
    target = conts[0]
    # Two different neighbours of the same shape (length, no token shared with the
    # target's path): the decode's shape is identical, only the neighbour's tokens differ.
    one = rt.tokenize('refund_not_showing_up"}')
    two = rt.tokenize('cash_withdrawal_charge"}')
    n = min(len(one), len(two))
    one, two = one[:n], two[:n]
    assert one[0] != two[0] and target[0] not in (one[0], two[0])
    a = rt.score_continuations(prefix, [target, one])
    b = rt.score_continuations(prefix, [target, two])
    assert a[0][0] == pytest.approx(b[0][0], abs=1e-4)
    assert a[1][0] != pytest.approx(b[1][0], abs=1e-2)  # the neighbours did differ


def test_labels_beyond_the_sequence_limit_are_chunked(gemma_provider, shape_noise) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "I was charged twice for a top up.")
    sequential = rt.score_continuations(prefix, conts, batched=False)
    decodes = rt.n_chunk_decodes
    chunked = rt.score_continuations(prefix, conts, max_seqs=5)
    assert rt.n_chunk_decodes - decodes == 3  # 12 labels, 5 sequences per decode
    _assert_same(chunked, sequential, shape_noise)


def test_more_labels_than_the_context_holds_sequences(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, _ = _prompt(gemma_provider, LABELS, "Where is my new card?")
    # Numbers as answers: short continuations (digits are single tokens in Gemma) that
    # share their first digits, more of them than one decode holds sequences.
    conts = [rt.tokenize(f'{i}"}}') for i in range(rt.n_seq_max + 4)]
    decodes = rt.n_chunk_decodes
    batched = rt.score_continuations(prefix, conts)
    assert rt.n_chunk_decodes - decodes == 2
    # Chunks are filled in token order; scoring each chunk's continuations on their own
    # gives decodes of the very same shape, so the numbers must agree exactly.
    order = sorted(range(len(conts)), key=lambda i: conts[i])
    for part in (order[: rt.n_seq_max - 1], order[rt.n_seq_max - 1 :]):
        alone = rt.score_continuations(prefix, [conts[i] for i in part])
        _assert_same([batched[i] for i in part], alone, 1e-4)


async def test_provider_classifies_with_batched_scores(gemma_provider, shape_noise) -> None:  # type: ignore[no-untyped-def]
    ontology = Ontology.model_validate(
        {
            "name": "intents",
            "task": "classify",
            "description": "What does the customer want?",
            "labels": [{"name": label} for label in LABELS],
        }
    )
    request = ProviderRequest(PromptCompiler(ontology).compile({"text": "My PIN is blocked."}))
    bounded = (await gemma_provider.complete(request)).label_scores  # 12 labels > 8
    with gemma_provider.using(bound_above=len(LABELS)):  # every label scored exactly
        batched = (await gemma_provider.complete(request)).label_scores
    with gemma_provider.using(bound_above=len(LABELS), batched=False):
        sequential = (await gemma_provider.complete(request)).label_scores
    assert batched == pytest.approx(sequential, abs=shape_noise)
    assert max(bounded, key=bounded.__getitem__) == max(batched, key=batched.__getitem__)


EMOTIONS = Ontology.model_validate(
    {
        "name": "emotions",
        "task": "multi_label",
        "description": "Which emotions does the text express?",
        "labels": [{"name": n} for n in ("joy", "anger", "gratitude", "sadness", "curiosity")],
    }
)


async def test_multi_label_is_one_batched_decode_and_order_independent(
    gemma_provider, shape_noise
) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    rt = gemma_provider.runtime
    prompt = PromptCompiler(EMOTIONS).compile({"text": "Thanks a lot, this made my day!"})
    decodes = rt.n_chunk_decodes
    probs = (await gemma_provider.complete(ProviderRequest(prompt))).label_scores
    assert rt.n_chunk_decodes - decodes == 1  # five questions, ten answers, one decode
    assert set(probs) == set(EMOTIONS.label_names)
    assert all(0.0 < p < 1.0 for p in probs.values())
    # The same item with the labels asked in another order: the same probabilities.
    shuffled = dataclasses.replace(prompt, labels=tuple(reversed(prompt.labels)))
    again = (await gemma_provider.complete(ProviderRequest(shuffled))).label_scores
    assert again == pytest.approx(probs, abs=1e-6)
    # And within llama.cpp's decode-shape noise of today's one-question-at-a-time loop.
    with gemma_provider.using(batched=False):
        sequential = (await gemma_provider.complete(ProviderRequest(prompt))).label_scores

    # Compared as logits (yes minus no): each is a difference of two scores, each
    # within shape_noise (the loop decodes "true"/"false" alone: the < 4-token kernel).
    def logit(p: float) -> float:
        return math.log(p / (1.0 - p))

    for label, p in probs.items():
        assert logit(p) == pytest.approx(logit(sequential[label]), abs=2 * shape_noise)


def test_bounded_scoring_finds_the_same_best_label(gemma_provider, shape_noise) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, conts = _prompt(gemma_provider, LABELS, "My card payment was declined twice.")
    full = [s for s, _ in rt.score_continuations(prefix, conts)]
    decodes = rt.n_chunk_decodes
    bounded, exact = rt.score_bounded(prefix, conts, width=2)
    assert rt.n_chunk_decodes > decodes and not all(exact)  # some labels were never decoded
    best = max(range(len(conts)), key=lambda i: bounded[i])
    assert exact[best] and best == max(range(len(conts)), key=lambda i: full[i])
    for b, e, f, c in zip(bounded, exact, full, conts, strict=True):
        if e:  # each search round is its own decode shape: the noise adds up per token
            assert b == pytest.approx(f, abs=max(shape_noise, 0.1 * len(c)))
        else:  # an upper bound that could not win: above the true score, below the best
            assert f <= b + shape_noise and b < bounded[best]


def test_bounded_scoring_beyond_the_sequence_limit(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    prefix, _ = _prompt(gemma_provider, LABELS, "Where is my new card?")
    # More answers than the context has sequences: the chunked label-level search.
    conts = [rt.tokenize(f'{i}"}}') for i in range(rt.n_seq_max + 4)]
    full = [s for s, _ in rt.score_continuations(prefix, conts)]
    bounded, exact = rt.score_bounded(prefix, conts)
    best = max(range(len(conts)), key=lambda i: bounded[i])
    assert exact[best] and best == max(range(len(conts)), key=lambda i: full[i])
    assert not all(exact)


async def test_multi_label_listed_shares_are_exact_and_order_independent(
    gemma_provider, shape_noise
) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from autolabel.engine.confidence import score_response

    rt = gemma_provider.runtime
    listed = EMOTIONS.model_copy(update={"multi_label": MultiLabelScoring(method="listed")})
    prompt = PromptCompiler(listed).compile({"text": "Thanks a lot, this made my day!"})
    decodes = rt.n_chunk_decodes
    resp = await gemma_provider.complete(ProviderRequest(prompt))
    assert rt.n_chunk_decodes - decodes == 1  # every label's tokens in one decode
    probs = resp.label_scores
    assert set(probs) == set(EMOTIONS.label_names)
    assert sum(probs.values()) == pytest.approx(1.0)
    chosen = json.loads(resp.samples[0].text)["labels"]
    assert chosen == [max(probs, key=probs.__getitem__)]  # the sample: the likeliest
    # Another order of the labels: the same numbers (each label sees only its own path).
    shuffled = dataclasses.replace(prompt, labels=tuple(reversed(prompt.labels)))
    again = (await gemma_provider.complete(ProviderRequest(shuffled))).label_scores
    assert again == pytest.approx(probs, abs=1e-4)
    # Against a plain sequential evaluation of each label followed by a closing quote.
    text = rt.chat_text(ProviderRequest(prompt).messages()) + '{"labels": ["'
    prefix, conts, _ = gemma_provider.choice_tokens(text, list(EMOTIONS.label_names), "")
    quote = rt.starts_with(b'"')
    assert quote.size > 1  # the closing quote comes in several tokens ('"', '",', '"]'…)
    ref = []
    for cont in conts:
        last = log_softmax(rt.prepare(prefix + cont))
        ref.append(_token_by_token(rt, prefix, cont) + float(np.logaddexp.reduce(last[quote])))
    ref_probs = np.exp(np.array(ref) - np.logaddexp.reduce(ref))
    for label, p in zip(EMOTIONS.label_names, ref_probs, strict=True):
        assert math.log(probs[label]) == pytest.approx(math.log(p), abs=2 * shape_noise)
    # The engine decides with the ontology's rule: a relative threshold between the
    # runner-up and the third lets exactly the top two in; a prior that halves the top
    # label's share hands the lead to the runner-up when it held more than half of it.
    top, second, third = sorted(probs, key=probs.__getitem__, reverse=True)[:3]

    def decided(**rule: Any) -> list[str]:
        spec = MultiLabelScoring(method="listed", **rule)
        return score_response(listed.model_copy(update={"multi_label": spec}), resp, {}).label

    mid = (probs[second] + probs[third]) / 2 / probs[top]
    assert sorted(decided(relative_threshold=mid)) == sorted([top, second])
    halved = decided(priors={top: 2.0})
    assert halved == [second if probs[second] > probs[top] / 2 else top]
    bare = score_response(listed, resp, {})
    assert bare.label == [top] and bare.confidence == pytest.approx(probs[top])
    # A listed prompt is another cache entry than the questions' one.
    assert prompt.answer_prefix != PromptCompiler(EMOTIONS).compile({"text": "x"}).answer_prefix


def test_bounded_search_to_a_share_of_the_mass(gemma_provider, shape_noise) -> None:  # type: ignore[no-untyped-def]
    """score_bounded(end=, mass=): the labels it scores get the exhaustive scores; the
    ones it leaves are bounded from above and hold at most ``mass`` of the found mass."""
    rt = gemma_provider.runtime
    labels = list(LABELS)
    text = rt.chat_text(
        [{"role": "user", "content": "Which intents? My card payment was declined twice."}]
    )
    prefix, conts, _ = gemma_provider.choice_tokens(text + '{"labels": ["', labels, "")
    quote = rt.starts_with(b'"')
    full = rt.score_ended(prefix, conts, quote)
    for mass in (1e-1, 1e-3):
        bounded, exact = rt.score_bounded(prefix, conts, end=quote, mass=mass, width=2)
        assert any(exact)
        for b, e, f, c in zip(bounded, exact, full, conts, strict=True):
            if e:
                assert b == pytest.approx(f, abs=max(shape_noise, 0.1 * (len(c) + 1)))
            else:
                assert f <= b + shape_noise
        found = np.logaddexp.reduce([b for b, e in zip(bounded, exact, strict=True) if e])
        left = [b for b, e in zip(bounded, exact, strict=True) if not e]
        if left:
            assert np.logaddexp.reduce(left) <= found + math.log(mass) + 1e-9
        # The likeliest label is always among the scored ones, and it is the true argmax.
        assert exact[int(np.argmax(bounded))]
        assert int(np.argmax(bounded)) == int(np.argmax(full))
    # A prior correction (a bias per label) moves the search and the winner with it.
    bias = [0.0] * len(conts)
    bias[int(np.argmax(full))] = -30.0  # the unbiased winner now cannot win
    biased, exact = rt.score_bounded(prefix, conts, end=quote, mass=1e-2, bias=bias)
    target = np.array(full) + np.array(bias)
    win = int(np.argmax(biased))
    assert exact[win] and win == int(np.argmax(target)) and win != int(np.argmax(full))
    assert biased[win] == pytest.approx(target[win], abs=max(shape_noise, 0.1 * len(conts[win])))
    # A smaller mass never scores fewer labels.
    _, loose = rt.score_bounded(prefix, conts, end=quote, mass=1e-1)
    _, tight = rt.score_bounded(prefix, conts, end=quote, mass=1e-6)
    assert sum(tight) >= sum(loose) and sum(tight) > 1
