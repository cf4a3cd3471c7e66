"""Fast constrained decoding of span answers for the embedded model (copy-only).

The answer is ``{"entities": [{"text": "...", "label": "..."}, ...]}``. Instead of a
GBNF grammar (llama.cpp checks all 151k vocabulary tokens against the grammar at every
step, and each structural token costs a decode of its own), the decoder knows the
answer's shape and drives the model through it:

- **Structure is forced**, not sampled: ``{"entities": [``, ``, "label": "`` and the
  closing brackets are fed in one batched decode each (one forward pass for a run of
  tokens instead of one per token).
- **Decisions are choices** between a few known continuations (another entity or the
  end of the list; which label), decided on their tokens' probabilities like a
  classify answer, token by token through a trie of the alternatives.
- **Entity text is copy-only**: the allowed next tokens are exactly the vocabulary
  pieces that continue a substring of the item text, starting at a word boundary after
  the previous entity (so entities come in order of appearance, and cannot repeat or
  loop); the string may close only at a word boundary. The candidate set is a handful
  of tokens found by dictionary look-ups of the item's substrings (a piece → token map
  built once per model), not a scan of the vocabulary.

So an entity's text always occurs in the item, and its character offsets are known
exactly. Log-probs are those of the constrained distribution (forced tokens: 0), as
with the grammar path, so confidence estimation reads them the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autolabel.providers.base import ProviderRequest, ProviderResponse, Sample, TokenLogprob
from autolabel.providers.llama_runtime import Generated, LlamaRuntime, log_softmax

_OPEN = '{"entities": ['
_ENTITY_OPEN = '{"text": "'
_NEXT_ENTITY = ', {"text": "'
_LABEL_OPEN = ', "label": "'
_CLOSE_LIST = "]}"

_VOCAB_LOCK = threading.Lock()
_VOCABS: dict[int, PieceIndex] = {}
_DECODERS: dict[tuple[int, tuple[str, ...]], SpanDecoder] = {}


class PieceIndex:
    """Text piece → token id for every vocabulary token that decodes to clean UTF-8."""

    def __init__(self, runtime: LlamaRuntime) -> None:
        self.by_piece: dict[str, int] = {}
        for token in range(runtime.n_vocab):
            raw = runtime.piece(token)
            if not raw or runtime.is_end(token):
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # a partial multi-byte piece: never copied
            # Two ids can share a text (specials written as text): keep the first.
            self.by_piece.setdefault(text, token)
        self.max_len = max((len(p) for p in self.by_piece), default=1)

    @classmethod
    def of(cls, runtime: LlamaRuntime) -> PieceIndex:
        """Built once per loaded model (about a second for a 151k vocabulary)."""
        with _VOCAB_LOCK:
            index = _VOCABS.get(id(runtime))
            if index is None:
                index = _VOCABS[id(runtime)] = cls(runtime)
            return index


def word_starts(text: str) -> list[int]:
    """Positions where an entity may begin: not inside a run of letters/digits."""
    return [
        i
        for i in range(len(text))
        if not text[i].isspace() and (i == 0 or not (text[i - 1].isalnum() and text[i].isalnum()))
    ]


def ends_word(text: str, end: int) -> bool:
    """An entity may end at ``end``: end of text, or not between two letters/digits."""
    return end >= len(text) or not (text[end - 1].isalnum() and text[end].isalnum())


@dataclass
class _State:
    """Prompt + answer tokens so far (the newest ones may not be decoded yet)."""

    tokens: list[int]
    out: Generated = field(default_factory=lambda: Generated(text=""))
    # The last batched decode: the token list it ended with (the answer so far plus a
    # guess of what follows) and, by token count, the logits after each of its tokens.
    decoded: list[int] = field(default_factory=list)
    rows: dict[int, np.ndarray] = field(default_factory=dict)


class SpanDecoder:
    """Copy-only constrained decoding of one spans answer on a :class:`LlamaRuntime`."""

    def __init__(self, runtime: LlamaRuntime, labels: Sequence[str]) -> None:
        self.rt = runtime
        self.labels = list(labels)
        self.index = PieceIndex.of(runtime)
        # Fixed pieces of the answer, tokenized once.
        self._open = self._tok(_OPEN)
        # Label choices end with the entity's closing brace; the list choices follow it.
        self._label_alts = [self._tok(json.dumps(label)[1:] + "}") for label in self.labels]
        self._more_alts = [self._tok(_NEXT_ENTITY), self._tok(_CLOSE_LIST)]
        self._first_alts = [self._tok(_ENTITY_OPEN), self._tok(_CLOSE_LIST)]
        # The entity string closes with the label's key: '",' is one token in most
        # vocabularies, so the close is offered as the model would write it.
        self._close = self._tok('"' + _LABEL_OPEN)

    @classmethod
    def of(cls, runtime: LlamaRuntime, labels: Sequence[str]) -> SpanDecoder:
        """One decoder per (model, label set): the fixed pieces are tokenized once."""
        key = (id(runtime), tuple(labels))
        with _VOCAB_LOCK:
            decoder = _DECODERS.get(key)
        if decoder is None:
            decoder = cls(runtime, labels)
            with _VOCAB_LOCK:
                _DECODERS[key] = decoder
        return decoder

    def _tok(self, text: str) -> list[int]:
        return list(self.rt.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # --- feeding the model ---------------------------------------------------------------

    def _feed(self, state: _State, tokens: Sequence[int], lps: Sequence[float] = ()) -> None:
        """Append ``tokens`` to the answer. They are decoded lazily, together with whatever
        follows them up to the next decision, in one batched decode (see ``_ahead``)."""
        state.tokens.extend(tokens)
        lps = list(lps) or [0.0] * len(tokens)
        for token, lp in zip(tokens, lps, strict=True):
            text = self.rt.piece(token).decode("utf-8", errors="replace")
            state.out.tokens.append((text, lp, {text: lp}))
            state.out.text += text
            state.out.n_tokens += 1

    def _known(self, state: _State) -> np.ndarray | None:
        """The logits after the answer so far, if the last decode computed them."""
        n = len(state.tokens)
        row = state.rows.get(n)
        if row is None or state.decoded[:n] != state.tokens:
            return None
        return row

    def _ahead(self, state: _State, guess: Sequence[int] = ()) -> None:
        """Decode the answer's undecoded tokens plus ``guess`` (what probably follows) in
        one batch, keeping the logits after each token from the current end on.

        Speculative, as with a draft model, but the draft is free: fixed JSON pieces and
        the item's own text (an entity usually continues as the item does). Where the
        model's pick matches the guess, the next decision needs no decode of its own;
        where it does not, the cache is trimmed by the next decode (``_decode`` starts
        at the first token that differs).
        """
        rt = self.rt
        seq = state.tokens + list(guess)
        if len(seq) >= rt.n_ctx:
            raise ValueError(f"prompt and answer exceed n_ctx={rt.n_ctx}")
        # Re-decode at least one token for its logits.
        keep = min(rt.cached_prefix(seq), len(state.tokens) - 1)
        rest = seq[keep:]
        want = list(range(len(state.tokens) - 1 - keep, len(rest)))
        rows = rt._decode(rest, keep, want)
        rt._last_logits = None  # the runtime's own cached logits no longer match its cache
        state.decoded = seq
        state.rows = {keep + i + 1: row for i, row in zip(want, rows, strict=True)}

    def _logits(self, state: _State) -> np.ndarray:
        row = self._known(state)
        if row is None:
            self._ahead(state)
            row = state.rows[len(state.tokens)]
        return row

    def _pick(
        self, state: _State, allowed: Sequence[int], temperature: float, rng: np.random.Generator
    ) -> tuple[int, float, dict[str, float]]:
        """One token among ``allowed`` from the current logits: (token, logprob, top-5)."""
        ids = np.asarray(allowed, dtype=np.int64)
        sub = self._logits(state)[ids].astype(np.float64)
        lp = log_softmax(sub)
        if temperature <= 0 or ids.size == 1:
            k = int(np.argmax(lp))
        else:
            probs = np.exp(log_softmax(sub / temperature))
            k = int(rng.choice(ids.size, p=probs / probs.sum()))
        order = np.argsort(-lp)[:5]
        top = {
            self.rt.piece(int(ids[j])).decode("utf-8", errors="replace"): float(lp[j])
            for j in order
        }
        return int(ids[k]), float(lp[k]), top

    def _choose(
        self,
        state: _State,
        alts: Sequence[Sequence[int]],
        temperature: float,
        rng: np.random.Generator,
    ) -> int:
        """Walk the token trie of ``alts``: forced where it does not branch, else a pick."""
        live = list(range(len(alts)))
        depth = 0
        while True:
            done = [i for i in live if len(alts[i]) == depth]
            if done:  # (no alternative here is a prefix of another)
                return done[0]
            nexts = sorted({alts[i][depth] for i in live})
            if len(nexts) == 1:
                token = nexts[0]
                self._feed(state, [token])
            else:
                token, lp, top = self._pick(state, nexts, temperature, rng)
                self._feed(state, [token], [lp])
                state.out.tokens[-1] = (state.out.tokens[-1][0], lp, top)
            live = [i for i in live if alts[i][depth] == token]
            depth += 1

    # --- the answer ----------------------------------------------------------------------

    def decode(
        self,
        prompt: Sequence[int],
        source: str,
        *,
        max_tokens: int,
        temperature: float,
        rng: np.random.Generator,
    ) -> tuple[Generated, list[dict[str, Any]]]:
        """The answer's JSON text and its spans (exact offsets into ``source``).

        ``max_tokens`` is checked between entities: the answer is always complete JSON
        (an entity in progress is finished, then the list is closed).
        """
        rt = self.rt
        state = _State(tokens=list(prompt))
        spans: list[dict[str, Any]] = []
        try:
            self._feed(state, self._open)
            alts = self._first_alts
            cursor = 0
            starts = word_starts(source)
            while True:
                if state.out.n_tokens >= max_tokens or not [s for s in starts if s >= cursor]:
                    self._feed(state, self._tok(_CLOSE_LIST))
                    break
                if self._known(state) is None:  # guess: another entity follows
                    self._ahead(state, alts[0])
                if self._choose(state, alts, temperature, rng) == 1:
                    break  # the list closed
                later = [s for s in starts if s >= cursor]
                span = self._copy(state, source, later, temperature, rng)
                self._feed(state, self._close[1:])
                label = self.labels[self._choose(state, self._label_alts, temperature, rng)]
                span["label"] = label
                spans.append(span)
                cursor = span["end"]
                alts = self._more_alts
        finally:
            # The KV cache now ends with this answer; the next prepare() trims it.
            rt._last_logits = None
        return state.out, spans

    def _guess(self, source: str, at: int) -> list[int]:
        """What probably follows in an entity at ``source[at:]``: the rest of the word,
        then the string's close (the next word, if any, is guessed after this one)."""
        end = at
        while end < len(source) and not source[end].isspace():
            end += 1
        rest = source[at:end]
        if any(c in '"\\' or c < " " for c in rest):
            rest = ""
        return (self._tok(rest) if rest else []) + self._close

    def _copy(
        self,
        state: _State,
        source: str,
        starts: list[int],
        temperature: float,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """Entity text copied from ``source`` token by token; returns its span."""
        index = self.index
        close = self._close[0]
        text = ""
        live = starts  # start offsets whose substring so far equals ``text``
        while True:
            cands: dict[int, str] = {}
            for s in live:
                at = s + len(text)
                for k in range(1, min(index.max_len, len(source) - at) + 1):
                    piece = source[at : at + k]
                    if piece[-1] in '"\\' or piece[-1] < " ":
                        break  # would need escaping inside the JSON string: not copied
                    token = index.by_piece.get(piece)
                    if token is not None:
                        cands.setdefault(token, piece)
            can_end = bool(text.strip()) and any(ends_word(source, s + len(text)) for s in live)
            if text and self._known(state) is None:
                self._ahead(state, self._guess(source, live[0] + len(text)))
            allowed = list(cands)
            if can_end:
                allowed.append(close)
            if not cands:  # nothing copyable follows: the string closes here
                self._feed(state, [close])
                break
            token, lp, top = self._pick(state, allowed, temperature, rng)
            if token == close and can_end:
                self._feed(state, [token], [lp])
                state.out.tokens[-1] = (state.out.tokens[-1][0], lp, top)
                break
            piece = cands[token]
            self._feed(state, [token], [lp])
            state.out.tokens[-1] = (state.out.tokens[-1][0], lp, top)
            text += piece
            live = [s for s in live if source.startswith(text, s)]
        stripped = text.rstrip()
        live = [s for s in live if ends_word(source, s + len(stripped))] or live
        start = live[0]
        return {"start": start, "end": start + len(stripped), "text": stripped}


def generate_spans(
    runtime: LlamaRuntime, request: ProviderRequest, model: str, source: str
) -> ProviderResponse:
    """``request.n`` copy-only span answers for the item text ``source``."""
    prompt = request.prompt
    decoder = SpanDecoder.of(runtime, prompt.labels)
    tokens = runtime.tokenize(runtime.chat_text(request.messages()))
    samples: list[Sample] = []
    n_out = 0
    for i in range(max(1, request.n)):
        seed = None if request.seed is None else request.seed + i
        gen, _ = decoder.decode(
            tokens,
            source,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            rng=np.random.default_rng(seed),
        )
        logprobs = (
            [TokenLogprob(t, lp, top) for t, lp, top in gen.tokens] if request.logprobs else None
        )
        samples.append(Sample(text=gen.text, logprobs=logprobs))
        n_out += gen.n_tokens
    return ProviderResponse(
        samples=samples,
        model=model,
        tokens_in=len(tokens),
        tokens_out=n_out,
        structured="choices",
    )
