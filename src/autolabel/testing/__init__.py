"""Test helpers for autolabel and its users: a real OpenAI-protocol server on loopback.

See :mod:`autolabel.testing.openai_server`.
"""

from autolabel.testing.openai_server import (
    ODD_SHAPES,
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    Responder,
    SeenImage,
    chat_reply,
    default_responder,
    error_reply,
    hang_reply,
    images_in,
    odd_reply,
    raw_reply,
    refusal_reply,
    scripted,
    token_logprobs,
)

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
