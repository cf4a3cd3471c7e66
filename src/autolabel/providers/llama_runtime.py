"""The llama.cpp runtime behind :class:`~autolabel.providers.local.LocalProvider`.

One :class:`LlamaRuntime` per (GGUF path, n_ctx) per process: loading a model costs
seconds and hundreds of MB, and llama.cpp contexts are not thread-safe, so every call
runs on the runtime's single worker thread.

Why not ``Llama.create_completion(logprobs=...)``: llama-cpp-python only returns
logprobs when ``logits_all=True``, which allocates ``n_ctx × n_vocab`` floats
(2.5 GB for Qwen at 4k context, 4.3 GB for Gemma). Instead we drive ``llama_decode``
ourselves and ask for logits only at the positions we score, and we keep track of
the tokens in the KV cache so that consecutive prompts (same system prompt, same
item for every label) re-use everything they share.

Why our own context: the high-level ``Llama`` creates its context with one sequence
(``n_seq_max=1``). Scoring many label continuations in one batched decode needs a
sequence per label, so the runtime swaps in a context made from the *already loaded*
model (same parameters, plus ``n_seq_max`` and a unified KV cache, so that the item
prompt's cells are shared by every label sequence instead of copied).
"""

from __future__ import annotations

import codecs
import ctypes
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autolabel.providers.llama_guard import DEFAULT, RuntimeSettings, load_llama

_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else 'user' }}{{ '\\n' }}"
    "{{ m['content'] }}<end_of_turn>{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model{{ '\\n' }}{% endif %}"
)
_PLAIN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}"
    "{{ '\\n\\n' }}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"
)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax of one row (``-inf`` entries stay ``-inf``)."""
    top = float(np.max(logits))
    shifted = logits - top
    return shifted - np.log(np.sum(np.exp(shifted)))


@dataclass
class Generated:
    """One constrained generation: text and, per token, (text, logprob, top alternatives)."""

    text: str
    tokens: list[tuple[str, float, dict[str, float]]] = field(default_factory=list)
    n_tokens: int = 0


_LOG_CALLBACK: Any = None
# Label sequences per batched decode (llama.cpp allows up to 256): enough for most
# label sets in one decode, and the logits buffer stays bounded by the token budget.
_MAX_SEQUENCES = 128
# A continuation's virtual last step in score_bounded(end=...): "any end token next".
_END_TOKEN = -1


def silence_llama_logs() -> None:
    """Route llama.cpp's C-level log lines to nowhere (AUTOLABEL_LLAMA_LOG=1 keeps them).

    ``verbose=False`` does not catch every line (context warnings still reach stderr
    and clutter the progress bar).
    """
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None or os.environ.get("AUTOLABEL_LLAMA_LOG"):
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _discard(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _LOG_CALLBACK = _discard  # keep a reference: C holds only the pointer
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


class LlamaRuntime:
    """A loaded model, its worker thread and the token list mirrored in its KV cache."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_threads: int | None,
        settings: RuntimeSettings = DEFAULT,
    ) -> None:
        silence_llama_logs()
        self.settings = settings
        self.llama = load_llama(
            model_path,
            settings,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            logits_all=False,
            verbose=False,
        )
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_vocab = self.llama.n_vocab()
        self.n_batch = self.llama.n_batch
        self.n_seq_max = self._swap_in_batch_context()
        self.n_chunk_decodes = 0  # batched-scoring decodes so far (benchmarks, tests)
        # llama.cpp contexts are not thread-safe: one worker thread owns this one.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._kv: list[int] = []  # tokens currently held in sequence 0 of the KV cache
        self._last_logits: np.ndarray | None = None
        self._formatter = self._make_formatter()

    def _swap_in_batch_context(self) -> int:
        """Replace the ``Llama``'s one-sequence context by a multi-sequence one.

        Made from ``self.llama._model`` (no second model load) with the ``Llama``'s own
        context parameters, so whatever the constructor configured still applies. The
        old context is freed (its KV cache and logits buffer would only cost memory).
        Returns the number of sequences the new context holds.
        """
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        params = llama_cpp.llama_context_params.from_buffer_copy(self.llama.context_params)
        # Sequence 0 holds the prompt; 1…n-1 hold label continuations. A unified cache
        # lets a cell belong to several sequences, so the shared prompt is stored once.
        n_seq = min(int(llama_cpp.llama_max_parallel_sequences()), _MAX_SEQUENCES)
        params.n_seq_max = n_seq
        params.kv_unified = True
        ctx = LlamaContext(model=self.llama._model, params=params, verbose=False)
        old = self.llama._ctx
        self.llama._ctx = ctx
        self.llama.context_params = params
        old.close()
        return n_seq

    # --- text ↔ tokens --------------------------------------------------------------

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self.llama.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            # Base models (Gemma 270M) carry no chat template; Gemma still knows its turns.
            arch = meta.get("general.architecture", "")
            template = _GEMMA_TEMPLATE if arch.startswith("gemma") else _PLAIN_TEMPLATE
        model = self.llama._model
        bos = model.token_get_text(self.llama.token_bos()) if self.llama.token_bos() >= 0 else ""
        eos = model.token_get_text(self.llama.token_eos()) if self.llama.token_eos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def chat_text(self, messages: Sequence[dict[str, str]]) -> str:
        """The model's chat template applied, with the assistant turn opened."""
        return str(self._formatter(messages=list(messages)).prompt)

    def tokenize(self, text: str) -> list[int]:
        # The chat template writes BOS and turn markers as text: parse them as specials.
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def tokenize_tails(self, text: str, tails: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """``tokenize(text)`` and ``tokenize(text + tail)`` for every tail, cheaply.

        A classify prompt is ~2,000 tokens (the label list) and every label needs the
        tokens of prompt + label: tokenizing 77 full copies cost more than a decode.
        llama.cpp splits the text at special tokens (``<|im_start|>``…) before BPE and
        tokenizes the pieces independently, so everything up to the last special token
        of ``text`` keeps its tokens whatever follows: only the short tail after it is
        tokenized per label. Verified on ``text`` itself; if the split does not
        reproduce it (a tokenizer that treats a piece's start differently), every
        tail is tokenized in full as before.
        """
        tokens = self.tokenize(text)
        cut = max((j for j, tok in enumerate(tokens) if self.is_special(tok)), default=-1)
        if cut >= 0:
            mark = self.piece(tokens[cut], special=True).decode("utf-8", errors="replace")
            at = text.rfind(mark) if mark else -1
            if at >= 0:
                head, rest = tokens[: cut + 1], text[at + len(mark) :]
                if self.tokenize(rest) == tokens[cut + 1 :]:
                    return tokens, [head + self.tokenize(rest + tail) for tail in tails]
        return tokens, [self.tokenize(text + tail) for tail in tails]

    def is_special(self, token: int) -> bool:
        """A control token (turn markers, BOS/EOS): written as text, parsed as one token."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_control(self.llama._model.vocab, token))

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (llama-cpp-python's helper pads to 32 bytes with NULs)."""
        import llama_cpp

        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(
                self.llama._model.vocab, token, buf, size, 0, special
            )
            if n >= 0:
                return buf.raw[:n]
            size = -n  # a negative result is the size needed

    def is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))

    # --- decoding ---------------------------------------------------------------------

    def _decode(self, tokens: Sequence[int], start: int, want: Sequence[int]) -> list[np.ndarray]:
        """Decode ``tokens`` at positions ``start…``; return logits rows for indices ``want``."""
        import llama_cpp

        ctx = self.llama._ctx
        ctx.kv_cache_seq_rm(0, start, -1)
        del self._kv[start:]
        wanted = set(want)
        rows: dict[int, np.ndarray] = {}
        batch = self.llama._batch.batch
        for chunk_start in range(0, len(tokens), self.n_batch):
            chunk = tokens[chunk_start : chunk_start + self.n_batch]
            batch.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                batch.token[i] = tok
                batch.pos[i] = start + chunk_start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = (chunk_start + i) in wanted
            ctx.decode(self.llama._batch)
            self._kv.extend(chunk)
            for i in range(len(chunk)):
                if (chunk_start + i) in wanted:
                    ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, i)
                    rows[chunk_start + i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        return [rows[i] for i in want]

    def cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading ``tokens`` the KV cache already holds (its longest common prefix)."""
        common = 0
        for a, b in zip(self._kv, tokens, strict=False):
            if a != b:
                break
            common += 1
        return common

    def prepare(self, tokens: Sequence[int]) -> np.ndarray:
        """Make the KV cache hold exactly ``tokens``; return the logits after the last one.

        Re-uses the longest common prefix with what the cache already holds, so a
        shared system prompt (and the item, across labels) is evaluated once.
        """
        if not tokens:
            raise ValueError("cannot score an empty prompt")
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens exceeds n_ctx={self.n_ctx}")
        common = self.cached_prefix(tokens)
        if common == len(tokens) == len(self._kv) and self._last_logits is not None:
            return self._last_logits
        keep = min(common, len(tokens) - 1)  # re-decode at least one token for its logits
        rest = list(tokens[keep:])
        (logits,) = self._decode(rest, keep, [len(rest) - 1])
        self._last_logits = logits
        return logits

    def score_continuations(
        self,
        prefix: Sequence[int],
        continuations: Sequence[Sequence[int]],
        *,
        batched: bool = True,
        max_seqs: int | None = None,
    ) -> list[tuple[float, int]]:
        """Sum of log-probs of each continuation after ``prefix`` (prefix decoded once).

        Returns (logprob, tokens decoded) per continuation. ``batched`` decodes all
        continuations in one llama_decode per chunk (a token trie, a sequence per
        continuation); ``batched=False`` is the one-after-another reference.
        ``max_seqs`` caps the continuations per chunk (below the context's limit).
        """
        if batched:
            return self._score_batched(prefix, continuations, max_seqs=max_seqs)
        first = log_softmax(self.prepare(prefix))
        base = len(prefix)
        out: list[tuple[float, int]] = []
        for cont in continuations:
            total = float(first[cont[0]])
            body = list(cont[:-1])  # the last token's own logits are never needed
            if body:
                rows = self._decode(body, base, list(range(len(body))))
                for row, nxt in zip(rows, cont[1:], strict=True):
                    total += float(log_softmax(row)[nxt])
            out.append((total, len(body)))
        # The cache now ends with the last continuation; the next prepare() trims it.
        self._last_logits = None
        return out

    def score_bounded(
        self,
        prefix: Sequence[int],
        continuations: Sequence[Sequence[int]],
        *,
        width: int = 2,
        spread: float = 1e-2,
        end: np.ndarray | None = None,
        mass: float | None = None,
        bias: Sequence[float] | None = None,
    ) -> tuple[list[float], list[bool]]:
        """Exact scores for the continuations that can still win; bounds for the rest.

        Best-first search over the continuations' token trie. A path's summed log-prob
        bounds every continuation through it (each further term is <= 0), and the first
        tokens are free (the prefix's logits). Each round decodes, in one batched decode,
        the trie nodes that can still beat the best complete continuation (at most
        ``width`` of them, the likeliest first, and only those within ``spread`` of the
        likeliest: a node far below it rarely survives the next round); a node that only
        one continuation goes through is decoded with the rest of that continuation.
        Decoding a node scores all its children. When no node can beat the best complete
        score, its continuation is the exact argmax; every other continuation keeps the
        bound of the deepest node scored on its path (its probability is over-, the
        winner's under-estimated). Returns (score, exact) per continuation. Width 2 and
        spread 1e-2 were chosen by replaying the search on recorded BANKING77 trie
        log-probs (Qwen 1.5B): ~2 decodes and ~5 tokens per item, where label-level
        bounding decoded ~10–35.

        Every continuation has its own sequence, and a decoded node's KV cell belongs to
        the sequences of all continuations through it, so a node decoded in a later round
        sees the prefix and exactly its own path: the same scores as decoding each
        continuation alone. More continuations than sequences: the chunked label-level
        search (:meth:`score_bounded_labels`).

        ``end`` (token ids): a continuation's score also includes log P(any ``end``
        token) after it, as in :meth:`score_ended`. ``mass``: instead of the argmax,
        search until the continuations left unscored hold at most ``mass`` of the
        scored ones' probability by their bounds and none can beat the best (every
        share the caller normalises is then exact to within that fraction, and the
        argmax is exact; the multi-label "listed" shares). ``bias``: a constant added to
        each continuation's score (a log prior correction), before the search compares
        them; the returned scores include it.
        """
        conts = [tuple(c) for c in continuations]
        if any(not c for c in conts):
            raise ValueError("cannot score an empty continuation")
        if len(conts) > self.n_seq_max - 1:
            if end is not None or mass is not None or bias is not None:  # all, exactly
                no_end = np.array([], dtype=np.int64)
                scored = self.score_ended(prefix, conts, no_end if end is None else end)
                if bias is not None:
                    scored = [sc + float(b) for sc, b in zip(scored, bias, strict=True)]
                return scored, [True] * len(conts)
            return self.score_bounded_labels(prefix, continuations)
        if end is not None:  # one more step per continuation: the end, a virtual token
            conts = [(*c, _END_TOKEN) for c in conts]
        prefix_logits = self.prepare(prefix)
        lp = log_softmax(prefix_logits)
        base = len(prefix)
        if base + max(len(c) for c in conts) > self.n_ctx:
            raise ValueError(f"an answer does not fit n_ctx={self.n_ctx}")
        known: dict[tuple[int, ...], float] = {c[:1]: float(lp[c[0]]) for c in conts}
        through: dict[tuple[int, ...], list[int]] = {}  # node → continuations going on after it
        for i, c in enumerate(conts):
            for d in range(1, len(c)):
                through.setdefault(c[:d], []).append(i)
        depth = [1] * len(conts)  # per continuation: length of its deepest scored path
        shift = [0.0] * len(conts) if bias is None else [float(b) for b in bias]
        free = self.n_ctx - base  # KV cells left for decoded nodes (they stay until the end)
        ctx = self.llama._ctx
        for k in range(len(conts)):
            ctx.kv_cache_seq_cp(0, k + 1, -1, -1)  # metadata only: prefix cells gain a seq id
        try:
            while True:
                for i, c in enumerate(conts):
                    while depth[i] < len(c) and c[: depth[i] + 1] in known:
                        depth[i] += 1
                scores = [known[c[: depth[i]]] + shift[i] for i, c in enumerate(conts)]
                done = [depth[i] == len(c) for i, c in enumerate(conts)]
                best = max((sc for sc, e in zip(scores, done, strict=True) if e), default=-np.inf)
                open_ = [i for i in range(len(conts)) if not done[i]]
                if mass is None:
                    open_ = [i for i in open_ if scores[i] >= best]
                elif open_ and any(done):  # done when the rest is small and cannot win
                    left = np.logaddexp.reduce([scores[i] for i in open_])
                    found = np.logaddexp.reduce([scores[i] for i in range(len(conts)) if done[i]])
                    if left <= found + math.log(mass) and max(scores[i] for i in open_) < best:
                        open_ = []
                frontier: dict[tuple[int, ...], float] = {}  # node → its best bound
                for i in open_:
                    node = conts[i][: depth[i]]
                    frontier[node] = max(frontier.get(node, -np.inf), scores[i])
                if not frontier:
                    return scores, done
                ranked = sorted(frontier, key=lambda p: -frontier[p])
                floor = frontier[ranked[0]] + math.log(spread)
                rows = []
                for path in [p for p in ranked if frontier[p] >= floor][:width]:
                    rows.append(path)
                    if len(through[path]) == 1:
                        # Only one continuation goes on: its remaining tokens are needed
                        # for its exact score anyway, so they join this decode (a round saved).
                        (i,) = through[path]
                        rows.extend(conts[i][:d] for d in range(len(path) + 1, len(conts[i])))
                rows = rows[: min(self.n_batch, free)]
                if not rows:
                    raise ValueError(f"the answers' tokens do not fit n_ctx={self.n_ctx}")
                self._decode_nodes(base, rows, through, conts, known, end)
                free -= len(rows)
        finally:
            for k in range(len(conts)):
                ctx.kv_cache_seq_rm(k + 1, -1, -1)
            # Sequence 0 still holds exactly the prefix: its logits stay valid.
            self._last_logits = prefix_logits

    def _decode_nodes(
        self,
        base: int,
        rows: Sequence[tuple[int, ...]],
        through: dict[tuple[int, ...], list[int]],
        conts: Sequence[tuple[int, ...]],
        known: dict[tuple[int, ...], float],
        end: np.ndarray | None = None,
    ) -> None:
        """One batched decode of trie nodes (their parents are in the cache); score children."""
        import llama_cpp

        ctx = self.llama._ctx
        batch = self.llama._batch.batch
        batch.n_tokens = len(rows)
        for row, path in enumerate(rows):
            batch.token[row] = path[-1]
            batch.pos[row] = base + len(path) - 1
            seqs = through[path]
            batch.n_seq_id[row] = len(seqs)
            for j, i in enumerate(seqs):
                batch.seq_id[row][j] = i + 1
            batch.logits[row] = True
        ctx.decode(self.llama._batch)
        self.n_chunk_decodes += 1
        for row, path in enumerate(rows):
            ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, row)
            lp = log_softmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)))
            for i in through[path]:
                child = conts[i][: len(path) + 1]
                if child[-1] != _END_TOKEN:
                    step = float(lp[child[-1]])
                elif end is not None and end.size:
                    step = float(np.logaddexp.reduce(lp[end]))
                else:
                    step = 0.0
                known[child] = known[path] + step

    def starts_with(self, text: bytes) -> np.ndarray:
        """Ids of the tokens whose text starts with ``text`` (e.g. every closing quote)."""
        cache = self.__dict__.setdefault("_starts_with", {})
        ids = cache.get(text)
        if ids is None:
            ids = np.array(
                [t for t in range(self.n_vocab) if self.piece(t).startswith(text)], dtype=np.int64
            )
            cache[text] = ids
        return ids

    def score_ended(
        self, prefix: Sequence[int], continuations: Sequence[Sequence[int]], end: np.ndarray
    ) -> list[float]:
        """log P(continuation, then any token of ``end``) after ``prefix``, for each one.

        Why ``end``: a label inside a JSON string is followed by a token that *starts*
        with the closing quote (``"``, ``",``, ``"]``…), which one tokenization of
        label + quote cannot name; summing over those tokens also keeps a label that
        is a token prefix of another (``dis`` / ``disgust``) from taking its mass. Every
        token of every continuation is decoded, as a trie, in one batched decode per
        ``n_seq_max - 1`` continuations; each continuation sees only its own path.
        """
        conts = [tuple(c) for c in continuations]
        if any(not c for c in conts):
            raise ValueError("cannot score an empty continuation")
        prefix_logits = self.prepare(prefix)
        lp0 = log_softmax(prefix_logits)
        base = len(prefix)
        limit = self.n_seq_max - 1
        ended: list[float] = [0.0] * len(conts)
        ctx = self.llama._ctx
        for lo in range(0, len(conts), limit):
            group = list(range(lo, min(lo + limit, len(conts))))
            through: dict[tuple[int, ...], list[int]] = {}
            for i in group:
                for d in range(1, len(conts[i]) + 1):
                    through.setdefault(conts[i][:d], []).append(i - lo)
            rows = sorted(through, key=len)  # parents before children
            if len(rows) > min(self.n_batch, self.n_ctx - base):
                raise ValueError(f"the answers' tokens do not fit n_ctx={self.n_ctx}")
            for k in range(len(group)):
                ctx.kv_cache_seq_cp(0, k + 1, -1, -1)
            try:
                rowlp = self._decode_rows(base, rows, through)
            finally:
                for k in range(len(group)):
                    ctx.kv_cache_seq_rm(k + 1, -1, -1)
            for i in group:
                c = conts[i]
                total = float(lp0[c[0]])
                for d in range(1, len(c)):
                    total += float(rowlp[c[:d]][c[d]])
                last = rowlp[c]
                ended[i] = total + float(np.logaddexp.reduce(last[end])) if end.size else total
        self._last_logits = prefix_logits
        return ended

    def _decode_rows(
        self, base: int, rows: Sequence[tuple[int, ...]], through: dict[tuple[int, ...], list[int]]
    ) -> dict[tuple[int, ...], np.ndarray]:
        """One decode of trie nodes (sequence k+1 per continuation k); log-probs per node."""
        import llama_cpp

        ctx = self.llama._ctx
        batch = self.llama._batch.batch
        batch.n_tokens = len(rows)
        for row, path in enumerate(rows):
            batch.token[row] = path[-1]
            batch.pos[row] = base + len(path) - 1
            batch.n_seq_id[row] = len(through[path])
            for j, k in enumerate(through[path]):
                batch.seq_id[row][j] = k + 1
            batch.logits[row] = True
        ctx.decode(self.llama._batch)
        self.n_chunk_decodes += 1
        out = {}
        for row, path in enumerate(rows):
            ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, row)
            out[path] = log_softmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)))
        return out

    def score_bounded_labels(
        self, prefix: Sequence[int], continuations: Sequence[Sequence[int]], *, first: int = 4
    ) -> tuple[list[float], list[bool]]:
        """Label-level bounded scoring, for more continuations than the context has sequences.

        Scores the likeliest ``first`` continuations exactly (batched, chunked), then
        only those whose first-token bound still reaches the best exact score, until
        none does.
        """
        lp = log_softmax(self.prepare(prefix))
        scores = [float(lp[c[0]]) for c in continuations]
        exact = [len(c) == 1 for c in continuations]
        best = max((s for s, e in zip(scores, exact, strict=True) if e), default=-np.inf)
        order = sorted(range(len(continuations)), key=lambda i: -scores[i])
        take = first
        while True:
            todo = [i for i in order if not exact[i] and scores[i] >= best][:take]
            if not todo:
                return scores, exact
            done = self._score_batched(prefix, [continuations[i] for i in todo], max_seqs=None)
            for i, (score, _) in zip(todo, done, strict=True):
                scores[i], exact[i] = score, True
                best = max(best, score)
            take *= 2

    def _score_batched(
        self,
        prefix: Sequence[int],
        continuations: Sequence[Sequence[int]],
        *,
        max_seqs: int | None,
    ) -> list[tuple[float, int]]:
        """All continuations as one token trie, decoded in as few batches as fit.

        The prefix stays in sequence 0; each continuation of a chunk gets its own
        sequence (1…k) that shares the prefix's KV cells, and a trie node (a token at
        a depth, reached by the same tokens) is decoded once for every continuation
        through it. The scores are those of the sequential loop: same tokens, same
        positions, same attention (each sequence sees the prefix and its own path).
        """
        prefix_logits = self.prepare(prefix)
        first = log_softmax(prefix_logits)
        base = len(prefix)
        limit = self.n_seq_max - 1
        if max_seqs is not None:
            limit = max(1, min(limit, max_seqs))
        # Token budget of one decode: the batch size and the free KV cells.
        budget = min(self.n_batch, self.n_ctx - base)
        out: list[tuple[float, int] | None] = [None] * len(continuations)
        # Sorted, continuations that share prefixes land in the same chunk.
        todo = sorted(
            (i for i, c in enumerate(continuations) if len(c) > 1),
            key=lambda i: list(continuations[i]),
        )
        for i, cont in enumerate(continuations):
            if not cont:
                raise ValueError("cannot score an empty continuation")
            if len(cont) == 1:
                out[i] = (float(first[cont[0]]), 0)
        chunk: list[int] = []
        nodes: set[tuple[int, ...]] = set()
        for i in todo:
            body = tuple(continuations[i][:-1])
            if len(body) > budget:
                raise ValueError(f"an answer of {len(body)} tokens does not fit n_ctx={self.n_ctx}")
            new = {body[: d + 1] for d in range(len(body))} - nodes
            if chunk and (len(chunk) >= limit or len(nodes) + len(new) > budget):
                self._score_chunk(base, first, continuations, chunk, out)
                chunk, nodes = [], set()
                new = {body[: d + 1] for d in range(len(body))}
            chunk.append(i)
            nodes |= new
        if chunk:
            self._score_chunk(base, first, continuations, chunk, out)
        # Sequence 0 still holds exactly the prefix: its logits stay valid.
        self._last_logits = prefix_logits
        return [o for o in out if o is not None]

    def _score_chunk(
        self,
        base: int,
        first: np.ndarray,
        continuations: Sequence[Sequence[int]],
        chunk: Sequence[int],
        out: list[tuple[float, int] | None],
    ) -> None:
        import llama_cpp

        ctx = self.llama._ctx
        index: dict[tuple[int, ...], int] = {}  # path of tokens → batch row
        tokens: list[int] = []
        seqs: list[list[int]] = []
        depths: list[int] = []
        for k, i in enumerate(chunk):
            body = tuple(continuations[i][:-1])
            for d in range(len(body)):
                row = index.get(body[: d + 1])
                if row is None:  # a parent is always added before its children
                    row = index[body[: d + 1]] = len(tokens)
                    tokens.append(body[d])
                    depths.append(d)
                    seqs.append([])
                seqs[row].append(k + 1)
        batch = self.llama._batch.batch
        batch.n_tokens = len(tokens)
        for row, tok in enumerate(tokens):
            batch.token[row] = tok
            batch.pos[row] = base + depths[row]
            batch.n_seq_id[row] = len(seqs[row])
            for j, seq in enumerate(seqs[row]):
                batch.seq_id[row][j] = seq
            batch.logits[row] = True
        for k in range(len(chunk)):
            ctx.kv_cache_seq_cp(0, k + 1, -1, -1)  # metadata only: cells gain a seq id
        try:
            ctx.decode(self.llama._batch)
            self.n_chunk_decodes += 1
            # Which next tokens each row predicts; one log-softmax per row, kept small.
            wanted: dict[int, set[int]] = {}
            for i in chunk:
                cont = continuations[i]
                for d in range(len(cont) - 1):
                    wanted.setdefault(index[tuple(cont[: d + 1])], set()).add(cont[d + 1])
            picked: dict[tuple[int, int], float] = {}
            for row, nexts in wanted.items():
                ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, row)
                lp = log_softmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)))
                for tok in nexts:
                    picked[row, tok] = float(lp[tok])
            for i in chunk:
                cont = continuations[i]
                total = float(first[cont[0]])
                for d in range(len(cont) - 1):
                    total += picked[index[tuple(cont[: d + 1])], cont[d + 1]]
                out[i] = (total, len(cont) - 1)
        finally:
            for k in range(len(chunk)):
                ctx.kv_cache_seq_rm(k + 1, -1, -1)

    def generate(
        self,
        prompt: Sequence[int],
        *,
        grammar: Any,
        max_tokens: int,
        temperature: float,
        rng: np.random.Generator,
        top_n: int = 5,
    ) -> Generated:
        """Grammar-constrained generation; logprobs are of the constrained distribution."""
        import llama_cpp
        from llama_cpp._internals import LlamaTokenDataArray

        sampler = llama_cpp.llama_sampler_init_grammar(
            self.llama._model.vocab, grammar._grammar.encode(), grammar._root.encode()
        )
        cand = LlamaTokenDataArray(n_vocab=self.n_vocab)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        result = Generated(text="")
        try:
            logits = self.prepare(prompt)
            for _ in range(max_tokens):
                cand.copy_logits(logits)
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(cand.candidates))
                # The grammar only sets forbidden tokens to -inf (no reordering), so the
                # array index is the token id. Work on the allowed subset: often tiny.
                masked = cand.candidates_data.logit[: self.n_vocab]
                allowed = np.flatnonzero(np.isfinite(masked))
                if allowed.size == 0:
                    break
                sub = masked[allowed].astype(np.float64)
                lp = log_softmax(sub)
                if temperature <= 0:
                    choice = int(np.argmax(lp))
                else:
                    probs = np.exp(log_softmax(sub / temperature))
                    choice = int(rng.choice(sub.size, p=probs / probs.sum()))
                token = int(allowed[choice])
                if self.is_end(token):
                    break
                llama_cpp.llama_sampler_accept(sampler, token)
                k = min(top_n, sub.size)
                best = np.argpartition(-lp, k - 1)[:k] if k < sub.size else np.arange(sub.size)
                best = best[np.argsort(-lp[best])]
                top: dict[str, float] = {}
                for j in best:  # distinct tokens can share a text: keep the likelier one
                    piece = self.piece(int(allowed[j])).decode("utf-8", errors="replace")
                    top.setdefault(piece, float(lp[j]))
                text = decoder.decode(self.piece(token))
                result.tokens.append((text, float(lp[choice]), top))
                result.text += text
                result.n_tokens += 1
                if "}" in text and _complete_json(result.text):
                    break
                pos = len(self._kv)
                (logits,) = self._decode([token], pos, [0])
            result.text += decoder.decode(b"", final=True)
        finally:
            llama_cpp.llama_sampler_free(sampler)
            self._last_logits = None
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.llama.close()


def _complete_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True
