"""The tokenizer shortcut for a long prompt followed by many short answers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.model


def test_tokenize_tails_equals_tokenizing_each_full_text(gemma_provider) -> None:  # type: ignore[no-untyped-def]
    rt = gemma_provider.runtime
    messages = [
        {"role": "system", "content": "Labels:\n- card_arrival\n- top_up_failed\n" * 20},
        {"role": "user", "content": "<data>\ntext: Where's my card? It's been 2 weeks!\n</data>"},
    ]
    text = rt.chat_text(messages) + '{"label": "'
    tails = ['card_arrival"}', 'top_up_failed"}', ' spaced"}', '"}', 'é"}']
    tokens, fulls = rt.tokenize_tails(text, tails)
    assert any(rt.is_special(t) for t in tokens)  # the shortcut applies to this prompt
    assert tokens == rt.tokenize(text)
    assert fulls == [rt.tokenize(text + tail) for tail in tails]
    # Without a special token there is nothing to split at: the plain path, same result.
    plain, again = rt.tokenize_tails("no turn markers here: ", tails)
    assert again == [rt.tokenize("no turn markers here: " + tail) for tail in tails]
    assert not any(rt.is_special(t) for t in plain)
