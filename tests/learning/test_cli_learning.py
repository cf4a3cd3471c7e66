"""The learning commands from the CLI, as a user runs them (real Gemma, tiny data)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "AUTOLABEL_HOME": str(home),
        "PYTHONPATH": str(REPO / "src"),
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "autolabel.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1200,
    )


def _data(tmp_path: Path) -> Path:
    rows = list(csv.DictReader((REPO / "eval/data/small/sst2_dev_40.csv").open(encoding="utf-8")))
    path = tmp_path / "six.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:6])
    return path


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    data = _data(tmp_path)
    out = _cli("simulate", "sst2", str(data), "--gold-column", "nope", home=tmp_path / "h")
    assert out.returncode == 2 and "no column 'nope'" in out.stderr
    assert "Traceback" not in out.stderr
    out = _cli("simulate", "sst2", str(data), "--strategies", "magic", home=tmp_path / "h")
    assert out.returncode == 2 and "unknown strategy" in out.stderr


@pytest.mark.model
def test_check_then_simulate_with_gemma(tmp_path: Path, gemma_path: Path) -> None:
    pytest.importorskip("cleanlab")
    data = _data(tmp_path)
    home = tmp_path / "home"
    out = _cli(
        "check",
        str(data),
        "--ontology",
        "sst2",
        "--model",
        "gemma3-270m",
        "--queue",
        "suspects",
        home=home,
    )
    assert out.returncode == 0, out.stderr
    assert "suspected label errors in 6 labels" in out.stdout
    report = tmp_path / "rep"
    out = _cli(
        "simulate",
        "sst2",
        str(data),
        "--gold-column",
        "label",
        "--batch",
        "2",
        "--budget",
        "0.5",
        "--model",
        "gemma3-270m",
        "--report",
        str(report),
        home=home,
    )
    assert out.returncode == 0, out.stderr
    data_out = json.loads((report / "report.json").read_text())
    for name in ("random", "confidence", "loop"):
        assert "points" in data_out[name] and "effort_to_target" in data_out[name]
        e = data_out[name]["effort_to_target"]
        assert e is None or 0.0 <= e <= 1.0
    # The zero-shot pass was served from the cache the check filled.
    assert data_out["cache_hits"] >= 6
    assert data_out["partial"] is False  # the checkpoints were overwritten by the final report
    assert (report / "effort.png").exists() and (report / "report.md").exists()
