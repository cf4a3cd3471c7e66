"""Learning is headless and lean: importing it loads no TUI, no cleanlab, no plotting."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "autolabel.learning.active",
    "autolabel.learning.calibrators",
    "autolabel.learning.check",
    "autolabel.learning.demonstrations",
    "autolabel.learning.embeddings",
    "autolabel.learning.label_errors",
    "autolabel.learning.live",
    "autolabel.learning.recalibration",
    "autolabel.learning.relabel",
    "autolabel.learning.simulate",
    "autolabel.learning.simulate_report",
    "autolabel.cli.learning",
]


def test_headless_imports() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "heavy = ('textual', 'matplotlib', 'cleanlab', 'llama_cpp')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
