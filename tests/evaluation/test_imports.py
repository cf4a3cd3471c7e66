"""Evaluation is headless: importing it never loads the TUI toolkit or a plotting backend."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "autolabel.evaluation",
    "autolabel.evaluation.metrics",
    "autolabel.evaluation.calibration",
    "autolabel.evaluation.significance",
    "autolabel.evaluation.gold",
    "autolabel.evaluation.evaluate",
    "autolabel.evaluation.experiments",
    "autolabel.evaluation.report",
    "autolabel.evaluation.apply",
    "autolabel.cli.evaluate",
]


def test_no_textual_and_no_matplotlib_on_import() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "bad = [m for m in ('textual', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_sorted_and_complete() -> None:
    import autolabel.evaluation as ev

    assert ev.__all__ == sorted(ev.__all__)
    assert all(hasattr(ev, name) for name in ev.__all__)
