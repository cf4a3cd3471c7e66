"""The CLI as a user meets it: exit codes, clear errors without tracebacks, resume after SIGKILL."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolabel.testing import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]


def autolabel(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "autolabel.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        timeout=timeout,
    )


def _reviews(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([f"r{i}", f"a {'positive' if i % 2 else 'negative'} review number {i}"])
    return path


def test_help_teaches_with_examples() -> None:
    out = autolabel("label", "--help")
    assert out.returncode == 0
    assert "autolabel label sst2 examples/sst2_sample.csv" in out.stdout
    assert "--on-bad-row" in out.stdout and "--base-url" in out.stdout


def test_malformed_ontology_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntask: classify\nlabels:\n  - name: a\n  - name: b\n    colour: red\n",
        encoding="utf-8",
    )
    out = autolabel("prompt", "show", str(bad))
    assert out.returncode == 2
    assert f"{bad}:6 labels[1].colour: unknown key 'colour'" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_bad_rows_fail_the_run_with_row_number(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,text\n1,good\n2,\n", encoding="utf-8")
    with FakeOpenAIServer() as srv:
        out = autolabel(
            "label",
            "sst2",
            str(data),
            "--base-url",
            srv.base_url,
            "--model",
            "m",
            "--on-bad-row",
            "fail",
            "--quiet",
        )
    assert out.returncode == 2, out.stderr
    assert "d.csv: row 2, field 'text': empty text" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_provider_and_missing_input(tmp_path: Path) -> None:
    out = autolabel("label", "sst2", "examples/sst2_sample.csv", "--provider", "nope")
    assert out.returncode == 2 and "unknown provider 'nope'" in out.stderr
    out = autolabel(
        "label",
        "sst2",
        str(tmp_path / "none.csv"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    )
    assert out.returncode == 2 and "input file not found" in out.stderr


def test_sigkilled_run_resumes_with_exactly_one_prediction_per_item(tmp_path: Path) -> None:
    n = 300
    data = _reviews(tmp_path / "reviews.csv", n)
    db = tmp_path / "labels.db"
    env = {"AUTOLABEL_DB": f"sqlite:///{db}", "AUTOLABEL_CONCURRENCY": "4"}
    with FakeOpenAIServer(latency_s=0.03) as srv:
        args = [
            "label",
            "sst2",
            str(data),
            "--base-url",
            srv.base_url,
            "--model",
            "m",
            "--no-cache",
            "--quiet",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "autolabel.cli.main", *args],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        committed = 0
        deadline = time.time() + 60
        while committed < n // 4 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            committed = _predictions(db)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = _predictions(db)
        assert 0 < at_kill < n, "the kill must land mid-run"
        requests_before = len(srv.chat_requests())

        out = autolabel(*args, env=env)
        assert out.returncode == 0, out.stderr
        assert "(resumed)" in out.stdout
        # Only the missing items were asked for again.
        assert len(srv.chat_requests()) - requests_before == n - at_kill

    con = sqlite3.connect(db)
    runs = con.execute("SELECT id, status FROM runs").fetchall()
    assert runs == [(1, "completed")]
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT item_id) FROM predictions WHERE run_id = 1"
    ).fetchone()
    assert total == distinct == n
    assert (
        con.execute("SELECT count(*) FROM predictions WHERE error IS NOT NULL").fetchone()[0] == 0
    )


def _predictions(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        return con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize(
    "command",
    [
        "label",
        "plan",
        "export",
        "runs",
        "route",
        "review",
        "eval",
        "experiment",
        "gold",
        "audit",
        "agreement",
    ],
)
def test_every_command_has_help(command: str) -> None:
    out = autolabel(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
