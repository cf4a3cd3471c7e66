"""Item text cannot leave the data section: delimiters and chat markers are defused.

Item text goes into ``<data> … </data>`` of the user message. A row that contains
``</data>`` could close the section early and write "instructions" after it; a row
that contains a chat template's control markers (``<|im_start|>``, Gemma's
``<start_of_turn>``, Llama's ``<|eot_id|>``, Mistral's ``[INST]``) would become real
turn boundaries for the embedded model, whose tokenizer parses specials in the
rendered chat text. Each such marker is rewritten with look-alike brackets
(``‹/data›``, ``‹|im_start|›``): the model still sees what the text said, but no
tokenizer or parser treats it as structure. Template syntax such as ``{{ 7*7 }}``
needs nothing: item values are passed to Jinja as data and never rendered as
templates (the tests pin that).
"""

from __future__ import annotations

import re

# <data>, </data>, < / data >: the data section's own delimiters, any case/spacing.
_DELIMITER = re.compile(r"<\s*(/?)\s*(data)\s*>", re.IGNORECASE)
# <|anything|>: ChatML, Llama 3, Phi and most special tokens.
_PIPE_TOKEN = re.compile(r"<\|([^<>|\s]{1,64})\|>")
# Gemma / SentencePiece specials written as tags.
_TAG_TOKEN = re.compile(
    r"<(/?)(start_of_turn|end_of_turn|bos|eos|pad|unk|s|mask|start_of_image|end_of_image"
    r"|think|tool_call|tool_response)>",
    re.IGNORECASE,
)
# Llama 2 / Mistral instruction and system markers.
_BRACKET_TOKEN = re.compile(r"\[(/?)(INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS)\]")
_SYS_TOKEN = re.compile(r"<<(/?)SYS>>")


def neutralise(text: str) -> str:
    """``text`` with every data delimiter and chat control marker defused."""
    if "<" not in text and "[" not in text:
        return text  # the common case costs one scan
    text = _DELIMITER.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)
    text = _PIPE_TOKEN.sub(lambda m: f"‹|{m.group(1)}|›", text)
    text = _TAG_TOKEN.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)
    text = _BRACKET_TOKEN.sub(lambda m: f"⟦{m.group(1)}{m.group(2)}⟧", text)
    return _SYS_TOKEN.sub(lambda m: f"‹‹{m.group(1)}SYS››", text)
