"""Write what an evaluation chose into an ontology file: the recommended
``review: threshold:``, and for ``listed`` multi-label scoring the fitted rule
(``multi_label:`` priors and relative threshold).

The file is edited as text, touching one line (the threshold) or the ``multi_label:``
block alone, so comments, key order and formatting elsewhere survive (a YAML round
trip through PyYAML would drop comments). The result is validated with the ontology
loader before it replaces the file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from autolabel.errors import OntologyError
from autolabel.evaluation.multilabel_rule import ListedRule
from autolabel.ontology.loader import parse_ontology, resolve_ontology_path

_TOP_KEY = re.compile(r"^[A-Za-z_][\w\-]*\s*:")
_REVIEW = re.compile(r"^review\s*:\s*(?P<rest>.*)$")


def patch_threshold_text(text: str, threshold: float) -> str:
    """Return ``text`` with ``review: threshold:`` set to ``threshold`` (added if absent)."""
    value = (
        f"{threshold:.4f}".rstrip("0").rstrip(".")
        if threshold not in (0, 1)
        else str(int(threshold))
    )
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    start = next((i for i, line in enumerate(lines) if _REVIEW.match(line)), None)
    if start is None:
        tail = "" if not text or text.endswith(("\n", "\r\n")) else newline
        return f"{text}{tail}review:{newline}  threshold: {value}{newline}"
    rest = _REVIEW.match(lines[start]).group("rest")  # type: ignore[union-attr]
    rest_clean = rest.split("#", 1)[0].strip()
    if rest_clean in ("{}", "", "null", "~"):
        if rest_clean:
            lines[start] = f"review:{newline}"
    else:
        raise OntologyError(
            "cannot edit an inline (flow-style) 'review:' mapping",
            hint="write review: as an indented block, or set review.threshold by hand",
        )
    # The block runs until the next top-level key (or the end of the file).
    end = len(lines)
    for j in range(start + 1, len(lines)):
        if _TOP_KEY.match(lines[j]):
            end = j
            break
    indent = None
    for j in range(start + 1, end):
        stripped = lines[j].lstrip(" ")
        if stripped.strip() and not stripped.startswith("#"):
            indent = len(lines[j]) - len(stripped)
            if re.match(r"threshold\s*:", stripped) and indent == _child_indent(lines, start, end):
                comment = ""
                if "#" in stripped:
                    comment = "  #" + stripped.split("#", 1)[1].rstrip("\r\n")
                lines[j] = f"{' ' * indent}threshold: {value}{comment}{newline}"
                return "".join(lines)
    child = _child_indent(lines, start, end) or 2
    lines.insert(start + 1, f"{' ' * child}threshold: {value}{newline}")
    if not lines[start].endswith(("\n", "\r\n")):
        lines[start] += newline
    return "".join(lines)


def _child_indent(lines: list[str], start: int, end: int) -> int | None:
    for j in range(start + 1, end):
        stripped = lines[j].lstrip(" ")
        if stripped.strip() and not stripped.startswith("#"):
            return len(lines[j]) - len(stripped)
    return None


def apply_threshold(ontology: str | Path, threshold: float) -> Path:
    """Set the threshold in the ontology file, validating before replacing it."""
    path = resolve_ontology_path(ontology)
    patched = patch_threshold_text(path.read_text(encoding="utf-8"), threshold)
    parsed = parse_ontology(patched, source=str(path))
    if abs(parsed.review.threshold - round(threshold, 4)) > 1e-9:
        raise OntologyError(f"{path}: the threshold edit did not take effect")
    _replace(path, patched)
    return path


def patch_listed_rule_text(text: str, rule: ListedRule, note: str = "") -> str:
    """Return ``text`` with its top-level ``multi_label:`` block replaced by ``rule``
    (appended when absent). Comments inside the old block go with it."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    block = ["multi_label:", "  method: listed"]
    if note:
        block.append(f"  # {note}")
    block.append(f"  relative_threshold: {rule.relative_threshold:g}")
    if rule.priors:
        block.append("  priors:")
        block += [f"    {_yaml_key(label)}: {p:.6f}" for label, p in rule.priors.items()]
    rendered = [line + newline for line in block]
    start = next((i for i, line in enumerate(lines) if re.match(r"^multi_label\s*:", line)), None)
    if start is None:
        tail = "" if not text or text.endswith(("\n", "\r\n")) else newline
        return text + tail + "".join(rendered)
    end = len(lines)
    for j in range(start + 1, len(lines)):
        if _TOP_KEY.match(lines[j]) or lines[j].startswith("#"):
            end = j
            break
    return "".join(lines[:start] + rendered + lines[end:])


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_key(label: str) -> str:
    """A label as a YAML key: bare when it cannot be read as anything else, else quoted."""
    plain = re.fullmatch(r"[A-Za-z_][\w\-]*", label) and label.lower() not in _YAML_WORDS
    return label if plain else json.dumps(label, ensure_ascii=False)


def apply_listed_rule(ontology: str | Path, rule: ListedRule, note: str = "") -> Path:
    """Write a fitted ``listed`` rule into the ontology file, validating first."""
    path = resolve_ontology_path(ontology)
    patched = patch_listed_rule_text(path.read_text(encoding="utf-8"), rule, note)
    parsed = parse_ontology(patched, source=str(path))
    got = parsed.multi_label
    if got is None or got.relative_threshold != rule.relative_threshold:
        raise OntologyError(f"{path}: the multi_label edit did not take effect")
    _replace(path, patched)
    return path


def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
