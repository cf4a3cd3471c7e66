"""A small, fast OpenAI-protocol HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks enough of the OpenAI REST protocol for ``openai.AsyncOpenAI`` (or any
OpenAI-compatible client) to talk to it unmodified: ``POST /v1/chat/completions``
and ``GET /v1/models``, HTTP/1.1 with keep-alive. It runs a raw asyncio server in a
background thread, so a test needs no network, no key and no patching::

    from autolabel.testing import FakeOpenAIServer, error_reply

    with FakeOpenAIServer(latency_s=0.0) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="unused")
        ...
        assert srv.chat_requests()[0].json["model"] == "my-model"

What each request gets is decided by a *responder*: ``responder(request_json) -> reply``
where the reply is one of

- a :class:`Reply` (status, JSON or raw body, headers, delay) — see :func:`chat_reply`,
  :func:`error_reply`, :func:`hang_reply`, :func:`raw_reply` and :func:`odd_reply`
  (a 200 whose body is malformed in one of the :data:`ODD_SHAPES`) and
  :func:`refusal_reply` (the model declines);
- a ``str``: the assistant's message content (a 200 completion with logprobs if asked);
- a ``dict``: sent as the 200 JSON body as is.

The :func:`default_responder` answers a labeling prompt deterministically: the first
label (from the answer JSON schema, or the "one of: a, b" line of the prompt) whose
name appears in the item's text, else the first label; other task shapes get a minimal
schema-valid answer. It returns realistic token log-probabilities in exactly
OpenAI's shape (``choices[i].logprobs.content[j] = {token, logprob, bytes, top_logprobs}``).

Capability switches emulate endpoints that lack a feature, with the 400 errors such
endpoints send: ``reject_json_schema`` (``response_format`` of type ``json_schema``),
``reject_json_object``, ``reject_logprobs``, ``reject_n`` (``n`` > 1), and
``omit_logprobs`` (accepts ``logprobs`` but sends none, like many local servers),
``reject_images`` (a text-only model: OpenAI's 400 for an ``image_url`` part).

Image parts are always checked as a vision endpoint would: each ``image_url`` must be a
base64 ``data:image/...`` URL that decodes to a picture (else a 400), at most
``max_image_side`` pixels on its longest side when that is set. :func:`images_in` lists
the pictures a request carried (format and size). For prompts with a picture, the default
responder looks at it: with colour-named labels (red, green, blue, ...) it answers the
label nearest the picture's mean colour (classify), the colours present (multi_label),
or a box around each colour's pixels (boxes), in the pixels of the picture it received.

Every request is recorded (:attr:`FakeOpenAIServer.requests`) with its body, headers,
arrival and reply times (``time.monotonic()`` of this process) and the status sent.

For benchmarks, ``python -m autolabel.testing --latency 0.2`` runs the
default responder in its own process (so the server does not share the client's GIL)
and prints ``listening on http://127.0.0.1:PORT/v1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = [
    "ODD_SHAPES",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "Responder",
    "SeenImage",
    "chat_reply",
    "default_responder",
    "error_reply",
    "hang_reply",
    "images_in",
    "odd_reply",
    "raw_reply",
    "refusal_reply",
    "scripted",
    "token_logprobs",
]


@dataclass
class Reply:
    """One HTTP answer. ``body`` is JSON-encoded unless it is ``bytes``/``str``."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Wait this long (on top of the server's latency) before answering: a hang when it
    # is longer than the client's timeout.
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], "Reply | dict[str, Any] | str"]


@dataclass
class RecordedRequest:
    """A request as the server saw it. Times are ``time.monotonic()`` in this process."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    replied_at: float | None = None
    status: int | None = None


# -- building replies ---------------------------------------------------------------------

_ids = itertools.count(1)
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_TOKEN_RE = re.compile(r'\{"|":|, "| "|"\}|"|\w+|\s+|[^\w\s]')


def _tokens(text: str) -> list[str]:
    """A crude tokenization whose pieces concatenate back to ``text`` exactly."""
    return _TOKEN_RE.findall(text)


def _logprob_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in top
        ],
    }


def token_logprobs(
    content: str,
    *,
    top_k: int = 5,
    choice: str | None = None,
    alternatives: Iterable[str] = (),
    choice_logprob: float = -0.05,
) -> list[dict[str, Any]]:
    """OpenAI-shaped ``logprobs.content`` for ``content``.

    Every token gets a near-certain log-probability; the token equal to ``choice`` (a
    label) gets ``choice_logprob`` and its ``top_logprobs`` list the ``alternatives``
    with the remaining probability mass shared out in decreasing steps.
    """
    import math

    alts = [a for a in alternatives if a != choice][: max(top_k - 1, 0)]
    rest = max(1.0 - math.exp(choice_logprob), 1e-9)
    weights = [0.5**i for i in range(len(alts))]
    total = sum(weights) or 1.0
    out = []
    for tok in _tokens(content):
        if choice is not None and tok == choice:
            top = [(tok, choice_logprob)] + [
                (a, math.log(rest * w / total)) for a, w in zip(alts, weights, strict=True)
            ]
            out.append(_logprob_entry(tok, choice_logprob, top[:top_k]))
        else:
            lp = -0.0001
            out.append(_logprob_entry(tok, lp, [(tok, lp)][:top_k]))
    return out


def chat_reply(
    request: dict[str, Any],
    content: str | list[str],
    *,
    logprobs: list[dict[str, Any]] | list[list[dict[str, Any]]] | None = None,
    with_logprobs: bool | None = None,
    finish_reason: str = "stop",
    model: str | None = None,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> Reply:
    """A 200 chat completion answering ``request``.

    ``content`` is one text for all ``n`` choices or one text per choice. Log-probs are
    included when the request asked for them (override with ``with_logprobs``); pass
    ``logprobs`` to script them (one list for all choices, or one per choice), else
    they are generated by :func:`token_logprobs`.
    """
    n = int(request.get("n") or 1)
    texts = [content] * n if isinstance(content, str) else list(content)
    want = bool(request.get("logprobs")) if with_logprobs is None else with_logprobs
    top_k = int(request.get("top_logprobs") or 0)
    choices = []
    completion_tokens = 0
    for i, text in enumerate(texts):
        completion_tokens += len(_tokens(text))
        lp: dict[str, Any] | None = None
        if want:
            if logprobs is None:
                entries = token_logprobs(text, top_k=top_k)
            elif logprobs and isinstance(logprobs[0], list):
                entries = logprobs[i]  # type: ignore[assignment]
            else:
                entries = logprobs  # type: ignore[assignment]
            lp = {"content": entries, "refusal": None}
        choices.append(
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": lp,
                "finish_reason": finish_reason,
            }
        )
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4
    body = {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or request.get("model", "fake-model"),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_autolabel_fake",
    }
    return Reply(200, body, dict(headers or {}), delay_s)


def error_reply(
    status: int,
    message: str,
    *,
    type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> Reply:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    default_type = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error")
    err = {"message": message, "type": type or default_type, "param": param, "code": code}
    body = {"error": err}
    return Reply(status, body, dict(headers or {}), delay_s)


def hang_reply(seconds: float) -> Reply:
    """Say nothing for ``seconds`` (then a normal-looking 500), to trip client timeouts."""
    return error_reply(500, "the fake server hung on purpose", delay_s=seconds)


def raw_reply(status: int, body: bytes | str, content_type: str = "application/json") -> Reply:
    """A reply with a body sent byte for byte (e.g. truncated JSON)."""
    return Reply(status, body, {"Content-Type": content_type})


# Answers that are HTTP 200 and JSON but not a usable chat completion, as proxies and
# overloaded servers send them. Keys are the names :func:`odd_reply` takes.
ODD_SHAPES: dict[str, str] = {
    "empty_choices": '"choices": []',
    "no_choices": "no 'choices' key",
    "choices_not_list": '"choices": {}',
    "choice_not_object": '"choices": ["text"]',
    "missing_message": "a choice without 'message'",
    "null_content": '"content": null',
    "missing_content": "a message without 'content'",
    "content_not_text": '"content": 42',
    "logprobs_not_object": '"logprobs": [1, 2]',
    "logprobs_content_not_list": '"logprobs": {"content": "x"}',
    "logprobs_bad_entry": '"logprobs": {"content": [{"token": "x", "logprob": null}]}',
    "top_logprobs_bad": '"top_logprobs": "x"',
    "body_is_list": "a JSON array",
    "body_is_string": "a JSON string",
    "body_is_null": "JSON null",
}


def odd_reply(request: dict[str, Any], shape: str) -> Reply:
    """A 200 whose JSON body has the defect named ``shape`` (a key of :data:`ODD_SHAPES`).

    Starts from :func:`default_responder`'s valid answer and breaks one thing, so the
    rest of the body is realistic.
    """
    if shape == "body_is_list":
        return Reply(200, [default_responder(request).body])
    if shape == "body_is_string":
        return Reply(200, json.dumps("the server is busy"))
    if shape == "body_is_null":
        return raw_reply(200, "null")
    body = default_responder(request).body
    choice = body["choices"][0]
    message = choice["message"]
    if shape == "empty_choices":
        body["choices"] = []
    elif shape == "no_choices":
        del body["choices"]
    elif shape == "choices_not_list":
        body["choices"] = {"0": choice}
    elif shape == "choice_not_object":
        body["choices"] = [message["content"]]
    elif shape == "missing_message":
        del choice["message"]
    elif shape == "null_content":
        message["content"] = None
    elif shape == "missing_content":
        del message["content"]
    elif shape == "content_not_text":
        message["content"] = 42
    elif shape == "logprobs_not_object":
        choice["logprobs"] = [1, 2]
    elif shape == "logprobs_content_not_list":
        choice["logprobs"] = {"content": "x"}
    elif shape == "logprobs_bad_entry":
        choice["logprobs"] = {"content": [{"token": "x", "logprob": None}]}
    elif shape == "top_logprobs_bad":
        entries = (choice.get("logprobs") or {}).get("content") or [{"token": "x", "logprob": 0}]
        entries[0]["top_logprobs"] = "x"
        choice["logprobs"] = {"content": entries}
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(ODD_SHAPES)}")
    return Reply(200, body)


def refusal_reply(request: dict[str, Any], refusal: str = "I can't help with that.") -> Reply:
    """A 200 in which the model declines: ``content`` null, the reason in ``refusal``."""
    reply = chat_reply(request, "", with_logprobs=False)
    for choice in reply.body["choices"]:
        choice["message"].update(content=None, refusal=refusal)
    return reply


def scripted(*replies: Any, then: Responder | None = None) -> Responder:
    """A responder that answers the first requests with ``replies`` in order, then ``then``.

    Each scripted item is a reply (see the module doc) or a callable ``request -> reply``.
    """
    queue = list(replies)
    lock = threading.Lock()
    fallback = then or default_responder

    def respond(request: dict[str, Any]) -> Reply | dict[str, Any] | str:
        with lock:
            nxt = queue.pop(0) if queue else None
        if nxt is None:
            return fallback(request)
        return nxt(request) if callable(nxt) else nxt

    return respond


# -- the default responder ----------------------------------------------------------------

_ONE_OF = re.compile(r"one of:\s*([^>\"\n]+)")
_DATA = re.compile(r"<data>(.*?)</data>", re.S)


def _labels_from(request: dict[str, Any], schema: dict[str, Any] | None) -> list[str]:
    if schema:
        label = schema.get("properties", {}).get("label", {})
        if "enum" in label:
            return [str(x) for x in label["enum"]]
    for m in request.get("messages", []):
        found = _ONE_OF.search(_text_of(m.get("content", "")))
        if found:
            return [s.strip() for s in found.group(1).split(",") if s.strip()]
    return []


def _text_of(content: Any) -> str:
    """A message's text; for content parts, the text parts only (never an image's base64)."""
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content or "")


def _item_text(request: dict[str, Any]) -> str:
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    text = _text_of(users[-1].get("content", "")) if users else ""
    found = _DATA.search(text)
    return found.group(1) if found else text


# -- images -------------------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,(.*)$", re.S)


@dataclass(frozen=True)
class SeenImage:
    """A picture a request carried: its MIME type, decoded size and bytes."""

    mime: str
    width: int
    height: int
    data: bytes


class _BadImagePart(ValueError):
    pass


def _image_urls(req: dict[str, Any]) -> list[str]:
    urls = []
    for m in req.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                raise _BadImagePart(f"unknown content part {part!r:.80}")
            if part["type"] == "image_url":
                url = (part.get("image_url") or {}).get("url")
                if not isinstance(url, str):
                    raise _BadImagePart("an image_url part without a url")
                urls.append(url)
    return urls


def _decode_image(url: str) -> SeenImage:
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    found = _DATA_URL.match(url)
    if not found:
        raise _BadImagePart(f"not a base64 data URL: {url[:40]!r}")
    try:
        data = base64.b64decode(found.group(2), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _BadImagePart(f"bad base64 in the data URL: {e}") from e
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return SeenImage(found.group(1), img.width, img.height, data)
    except (UnidentifiedImageError, OSError) as e:
        raise _BadImagePart(f"the data URL is not a picture: {e}") from e


def images_in(req: Any) -> list[SeenImage]:
    """The pictures in a chat request's content parts (raises ValueError on a bad one)."""
    if not isinstance(req, dict):
        return []
    return [_decode_image(u) for u in _image_urls(req)]


_COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}


def _colour_answer(image: SeenImage, labels: list[str], kind: str) -> Any:
    """What a (very) small vision model would say about a picture of coloured shapes."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image.data)) as img:
        rgb = img.convert("RGB")
    known = [lb for lb in labels if lb.casefold() in _COLOURS]
    pixels = list(rgb.getdata())

    def near(px: tuple[int, int, int], name: str) -> bool:
        ref = _COLOURS[name.casefold()]
        return sum(abs(a - b) for a, b in zip(px, ref, strict=True)) < 150

    if kind == "classify":
        mean = tuple(sum(c) / len(pixels) for c in zip(*pixels, strict=True))
        best = min(
            known,
            key=lambda lb: sum(
                (a - b) ** 2 for a, b in zip(mean, _COLOURS[lb.casefold()], strict=True)
            ),
        )
        return {"label": best}
    present = [lb for lb in known if sum(1 for px in pixels if near(px, lb)) > len(pixels) // 50]
    if kind == "multi_label":
        return {"labels": present}
    objects = []
    for lb in present:
        xs = [i % rgb.width for i, px in enumerate(pixels) if near(px, lb)]
        ys = [i // rgb.width for i, px in enumerate(pixels) if near(px, lb)]
        x0, y0 = min(xs), min(ys)
        objects.append({"label": lb, "box": [x0, y0, max(xs) - x0 + 1, max(ys) - y0 + 1]})
    return {"objects": objects}


def _image_reply(request: dict[str, Any], schema: dict[str, Any] | None) -> Reply | None:
    images = images_in(request)
    props = (schema or {}).get("properties", {})
    if not images or not schema:
        return None
    if "label" in props:
        kind, labels = "classify", props["label"].get("enum", [])
    elif "labels" in props:
        kind, labels = "multi_label", props["labels"]["items"].get("enum", [])
    elif "objects" in props:
        kind = "boxes"
        labels = props["objects"]["items"]["properties"]["label"].get("enum", [])
    else:
        return None
    if not any(lb.casefold() in _COLOURS for lb in labels):
        return None
    answer = _colour_answer(images[-1], labels, kind)
    content = json.dumps(answer)
    top_k = int(request.get("top_logprobs") or 0)
    if kind == "classify":
        lps = token_logprobs(content, top_k=top_k, choice=answer["label"], alternatives=labels)
        return chat_reply(request, content, logprobs=lps)
    return chat_reply(request, content)


def _example(schema: dict[str, Any]) -> Any:
    """A minimal value valid for ``schema`` (enough for our answer schemas)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        return {k: _example(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    return {"string": "", "number": 0, "integer": 0, "boolean": False, "null": None}.get(
        str(kind), None
    )


def default_responder(request: dict[str, Any]) -> Reply:
    """Answer a labeling prompt deterministically (see the module doc)."""
    fmt = request.get("response_format") or {}
    schema = None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
    seen = _image_reply(request, schema)
    if seen is not None:
        return seen
    labels = _labels_from(request, schema)
    if labels and (schema is None or "label" in schema.get("properties", {})):
        text = _item_text(request).casefold()
        choice = next((lb for lb in labels if lb.casefold() in text), labels[0])
        content = json.dumps({"label": choice}, ensure_ascii=False)
        top_k = int(request.get("top_logprobs") or 0)
        lps = token_logprobs(content, top_k=top_k, choice=choice, alternatives=labels)
        return chat_reply(request, content, logprobs=lps)
    content = json.dumps(_example(schema) if schema else {}, ensure_ascii=False)
    return chat_reply(request, content)


# -- the server ---------------------------------------------------------------------------


class FakeOpenAIServer:
    """An OpenAI-protocol server on 127.0.0.1 in a background thread (a context manager).

    ``latency_s`` is added to every chat completion (as a non-blocking sleep, so
    concurrent requests overlap as they would against a real endpoint).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        model: str = "fake-model",
        host: str = "127.0.0.1",
        port: int = 0,
        reject_json_schema: bool = False,
        reject_json_object: bool = False,
        reject_logprobs: bool = False,
        reject_n: bool = False,
        omit_logprobs: bool = False,
        reject_images: bool = False,
        max_image_side: int | None = None,
        record: bool = True,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency_s = latency_s
        self.model = model
        self.host = host
        self.port = port
        self.reject_json_schema = reject_json_schema
        self.reject_json_object = reject_json_object
        self.reject_logprobs = reject_logprobs
        self.reject_n = reject_n
        self.omit_logprobs = omit_logprobs
        self.reject_images = reject_images
        self.max_image_side = max_image_side
        self.record = record
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, self.port, backlog=1024)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw ----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completion requests received so far."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- protocol -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                rec = RecordedRequest(
                    method, path, headers, body, _json_or_none(body), time.monotonic()
                )
                if self.record:
                    # Recorded on arrival, so a request the client gave up on still shows
                    # (with ``status`` None if it was never answered).
                    with self._lock:
                        self._requests.append(rec)
                status, payload, extra = await self._dispatch(rec)
                rec.status = status
                rec.replied_at = time.monotonic()
                reason = _REASONS.get(status, "")
                keep = headers.get("connection", "").lower() != "close"
                out = [f"HTTP/1.1 {status} {reason}"]
                extra.setdefault("Content-Type", "application/json")
                for k, v in extra.items():
                    out.append(f"{k}: {v}")
                out.append(f"Content-Length: {len(payload)}")
                out.append("Connection: keep-alive" if keep else "Connection: close")
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, rec: RecordedRequest) -> tuple[int, bytes, dict[str, str]]:
        path = rec.path.split("?", 1)[0].rstrip("/")
        if rec.method == "GET" and path.endswith("/models"):
            body = {
                "object": "list",
                "data": [
                    {"id": self.model, "object": "model", "created": 0, "owned_by": "autolabel"}
                ],
            }
            return 200, json.dumps(body).encode(), {}
        if rec.method != "POST" or not path.endswith("/chat/completions"):
            reply = error_reply(404, f"no route for {rec.method} {path}")
            return reply.status, json.dumps(reply.body).encode(), {}
        if not isinstance(rec.json, dict):
            reply = error_reply(400, "the request body is not valid JSON")
            return reply.status, json.dumps(reply.body).encode(), {}
        reply = self._capability_error(rec.json)
        if reply is None:
            try:
                answer = self.responder(rec.json)
            except Exception as e:  # noqa: BLE001 - a broken responder is a 500, not a dead server
                answer = error_reply(500, f"responder failed: {type(e).__name__}: {e}")
            if isinstance(answer, str):
                reply = chat_reply(rec.json, answer)
            elif isinstance(answer, dict):
                reply = Reply(200, answer)
            else:
                reply = answer
            if self.omit_logprobs and reply.status == 200 and isinstance(reply.body, dict):
                for choice in reply.body.get("choices", []):
                    choice["logprobs"] = None
        wait = self.latency_s + reply.delay_s
        if wait > 0:
            await asyncio.sleep(wait)
        if isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode("utf-8")
        else:
            payload = json.dumps(reply.body).encode("utf-8")
        return reply.status, payload, dict(reply.headers)

    def _image_error(self, req: dict[str, Any]) -> Reply | None:
        """A 400 for an image part a vision endpoint would refuse, or for any when text-only."""
        try:
            urls = _image_urls(req)
            if urls and self.reject_images:
                return error_reply(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param="messages",
                    code="invalid_value",
                )
            for url in urls:
                img = _decode_image(url)
                if self.max_image_side and max(img.width, img.height) > self.max_image_side:
                    return error_reply(
                        400,
                        f"image is {img.width}x{img.height}, larger than "
                        f"{self.max_image_side} pixels on a side",
                        param="messages",
                    )
        except _BadImagePart as e:
            return error_reply(400, f"Invalid image: {e}", param="messages")
        return None

    def _capability_error(self, req: dict[str, Any]) -> Reply | None:
        bad_image = self._image_error(req)
        if bad_image is not None:
            return bad_image
        fmt = (req.get("response_format") or {}).get("type")
        if self.reject_json_schema and fmt == "json_schema":
            return error_reply(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model.",
                param="response_format",
            )
        if self.reject_json_object and fmt == "json_object":
            return error_reply(
                400,
                "Invalid parameter: 'response_format' of type 'json_object' is not supported "
                "with this model.",
                param="response_format",
            )
        if self.reject_logprobs and (req.get("logprobs") or req.get("top_logprobs")):
            return error_reply(400, "logprobs are not supported by this model.", param="logprobs")
        if self.reject_n and int(req.get("n") or 1) > 1:
            return error_reply(400, "'n' must be 1 for this model.", param="n")
        return None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def main(argv: list[str] | None = None) -> None:
    """Run the default responder until interrupted (for benchmarks and manual tries)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args(argv)
    srv = FakeOpenAIServer(latency_s=args.latency, model=args.model, port=args.port, record=False)
    with srv:
        print(f"listening on {srv.base_url}", flush=True)
        try:
            # Exit when the parent closes our stdin (benchmarks) or on Ctrl-C.
            sys.stdin.read()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
