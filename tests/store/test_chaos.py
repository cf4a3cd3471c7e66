"""A fast subset of bench/chaos.py: kills, a fault storm and a killed reviewer, on
SQLite and PostgreSQL. Nothing may be lost, duplicated or crash with a traceback."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _chaos():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_chaos", REPO / "bench" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_chaos"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_chaos_subset(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = _chaos().main(
        [
            "--items", "120", "--kills", "2", "--max-kill-delay", "3",
            "--storm-items", "40", "--decisions-kills", "1", "--db", db_url, "--json",
        ]
    )  # fmt: skip
    fig = json.loads(capsys.readouterr().out)
    assert fig["items_lost"] == 0 and fig["duplicates"] == 0, fig
    assert fig["export_rows"] == 120, fig
    assert fig["storm_exit"] == 0 and fig["storm_unaccounted"] == 0, fig
    assert sum(fig["faults"].values()) > 0, "the storm must inject faults"
    assert fig["decisions_lost"] == 0 and fig["tracebacks"] == 0, fig
    assert code == 0
