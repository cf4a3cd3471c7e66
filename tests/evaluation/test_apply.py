"""Writing a threshold into an ontology file keeps everything else as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolabel.errors import OntologyError
from autolabel.evaluation.apply import apply_threshold, patch_threshold_text
from autolabel.ontology.loader import load_ontology

BASE = """# a comment that must survive
name: demo
task: classify
labels:
  - name: good
  - name: bad
"""


def test_replaces_threshold_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        BASE + "review:\n    # why 0.8\n    threshold: 0.8  # old\n    per_label:\n"
        "      good: 0.7\n    audit_rate: 0.1\nguidelines: be careful\n",
        encoding="utf-8",
    )
    apply_threshold(path, 0.9123)
    text = path.read_text(encoding="utf-8")
    assert "    threshold: 0.9123  # old\n" in text
    assert "# a comment that must survive" in text and "# why 0.8" in text
    assert "      good: 0.7" in text and "guidelines: be careful" in text
    ont = load_ontology(path)
    assert ont.review.threshold == pytest.approx(0.9123)
    assert ont.review.per_label == {"good": 0.7} and ont.review.audit_rate == 0.1


def test_adds_threshold_to_a_review_block_without_one() -> None:
    text = patch_threshold_text(BASE + "review:\n  audit_rate: 0.1\n", 0.75)
    assert text.endswith("review:\n  threshold: 0.75\n  audit_rate: 0.1\n")


def test_adds_review_block_when_absent_and_handles_empty_mapping() -> None:
    assert patch_threshold_text(BASE, 0.6).endswith("review:\n  threshold: 0.6\n")
    assert patch_threshold_text(BASE + "review: {}\n", 0.6).endswith("review:\n  threshold: 0.6\n")


def test_does_not_touch_nested_keys_named_threshold() -> None:
    text = BASE + "review:\n  rules:\n    - name: r\n      kind: regex\n      pattern: x\n"
    out = patch_threshold_text(text, 0.5)
    assert "review:\n  threshold: 0.5\n  rules:" in out


def test_flow_style_review_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE + "review: {threshold: 0.8}\n", encoding="utf-8")
    with pytest.raises(OntologyError, match="inline"):
        apply_threshold(path, 0.9)
    assert "review: {threshold: 0.8}" in path.read_text(encoding="utf-8")
