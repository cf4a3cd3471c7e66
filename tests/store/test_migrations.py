"""Alembic schema revisions: fresh databases, first-schema databases, concurrent first use."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from autolabel.errors import StoreError
from autolabel.store import Database
from autolabel.store.migrations import FIRST_RELEASED, head_revision, script_directory
from autolabel.store.migrations.__main__ import new_revision

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
# Every table of the first released schema, with one or more rows each below.
V1_TABLES = [
    "datasets",
    "items",
    "runs",
    "predictions",
    "review_tasks",
    "review_claims",
    "decisions",
    "gold_sets",
    "gold_labels",
    "eval_records",
]


def _raw_engine(url: str):
    return create_engine(url)


def test_fresh_database_is_at_head_and_matches_the_models(db_url: str) -> None:
    db = Database(db_url)
    assert db.schema.fresh and db.schema.applied == [head_revision()]
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (head_revision(),)
        # The revisions build exactly what tables.py declares (types, indexes, keys).
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diffs == [], f"tables.py and the revisions differ: {diffs}"
        assert conn.execute(text("SELECT version FROM schema_info")).scalar_one() == 1
    db.dispose()
    again = Database(db_url)  # idempotent, nothing applied
    assert again.schema.up_to_date and again.schema.applied == []
    again.dispose()


def test_the_revision_helper_finds_nothing_to_write() -> None:
    assert new_revision("check", write=False) is None


def _fill_v1(url: str) -> dict[str, int]:
    """Create the first released schema from its raw DDL and put rows in every table."""
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    ddl = (DATA / f"schema_v1.{dialect}.sql").read_text(encoding="utf-8")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    engine = _raw_engine(url)
    with engine.begin() as conn:
        for stmt in ddl.split(";\n"):
            if stmt.strip():
                conn.exec_driver_sql(stmt)
        conn.execute(text("INSERT INTO schema_info (id, version) VALUES (1, 1)"))
        ins = [
            ("datasets", {"id": 1, "name": "d", "source": "d.csv", "created_at": now}),
            *[
                (
                    "items",
                    {
                        "id": i,
                        "dataset_id": 1,
                        "external_id": str(i),
                        "content_hash": f"h{i}",
                        "row_number": i,
                        "payload": f'{{"text": "item {i} ünïcode"}}',
                        "created_at": now,
                    },
                )
                for i in (1, 2, 3)
            ],
            (
                "runs",
                {
                    "id": 1,
                    "run_key": "k",
                    "name": "first",
                    "dataset_id": 1,
                    "ontology_name": "o",
                    "ontology_version": "1",
                    "ontology_hash": "oh",
                    "ontology_path": None,
                    "ontology": "{}",
                    "prompt_hash": "p",
                    "template": "t",
                    "task": "classify",
                    "provider": "openai",
                    "model": "m",
                    "base_url": None,
                    "params": "{}",
                    "status": "interrupted",
                    "started_at": now,
                    "finished_at": None,
                    "n_items": 3,
                    "n_labeled": 2,
                    "n_failed": 1,
                    "n_cache_hits": 0,
                    "tokens_in": 30,
                    "tokens_out": 3,
                    "cost_usd": 0.5,
                },
            ),  # fmt: skip
            *[
                (
                    "predictions",
                    {
                        "id": i,
                        "run_id": 1,
                        "item_id": i,
                        "label": '"pos"',
                        "confidence": 0.9,
                        "distribution": '{"pos": 0.9, "neg": 0.1}',
                        "method": "choice_logprobs",
                        "samples": None,
                        "model": "m",
                        "prompt_hash": "p",
                        "tokens_in": 10,
                        "tokens_out": 1,
                        "latency_ms": 12.5,
                        "cache_hit": False,
                        "attempts": 1,
                        "error": None if i < 3 else "invalid answer",
                        "raw": "{}",
                        "created_at": now,
                    },
                )
                for i in (1, 2, 3)
            ],  # fmt: skip
            (
                "review_tasks",
                {
                    "id": 1,
                    "queue": "q",
                    "item_id": 1,
                    "run_id": 1,
                    "prediction_id": 1,
                    "ontology_path": None,
                    "status": "decided",
                    "priority": 0.5,
                    "reasons": '["low_confidence"]',
                    "suggestion": '"pos"',
                    "confidence": 0.9,
                    "alternatives": None,
                    "required_decisions": 1,
                    "reviewers_per_item": 1,
                    "is_honeypot": False,
                    "gold_label": None,
                    "final_label": '"neg"',
                    "final_source": "human",
                    "claimed_by": None,
                    "lease_expires_at": None,
                    "created_at": now,
                    "updated_at": now,
                },
            ),  # fmt: skip
            (
                "review_claims",
                {
                    "id": 1,
                    "task_id": 1,
                    "reviewer": "ann",
                    "lease_expires_at": now,
                    "adjudicating": False,
                    "created_at": now,
                },
            ),  # fmt: skip
            (
                "decisions",
                {
                    "id": 1,
                    "task_id": 1,
                    "item_id": 1,
                    "reviewer": "ann",
                    "action": "decide",
                    "label": '"neg"',
                    "label_before": '"pos"',
                    "note": "sarcasm",
                    "reasons": "[]",
                    "seconds": 4.2,
                    "undone": False,
                    "undoes_id": None,
                    "created_at": now,
                },
            ),  # fmt: skip
            (
                "gold_sets",
                {
                    "id": 1,
                    "name": "g",
                    "version": 1,
                    "dataset_id": 1,
                    "ontology_name": "o",
                    "source": None,
                    "created_at": now,
                },
            ),  # fmt: skip
            ("gold_labels", {"id": 1, "gold_set_id": 1, "item_id": 2, "label": '"neg"'}),
            (
                "eval_records",
                {
                    "id": 1,
                    "run_id": 1,
                    "gold_set_id": 1,
                    "experiment": "e",
                    "metrics": '{"accuracy": 0.5}',
                    "created_at": now,
                },
            ),  # fmt: skip
        ]
        for table, row in ins:
            cols = ", ".join(row)
            conn.execute(
                text(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in row)})"),
                row,
            )
    counts = _counts(engine)
    engine.dispose()
    return counts


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in V1_TABLES}


def test_first_released_schema_database_upgrades_with_nothing_lost(db_url: str) -> None:
    before = _fill_v1(db_url)
    assert all(before.values())
    db = Database(db_url)
    state = db.schema
    assert state.legacy_version == 1 and not state.fresh
    assert state.applied == [r for r in _all_revisions() if r != FIRST_RELEASED]
    assert _counts(db.engine) == before
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (head_revision(),)
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        decision = conn.execute(text("SELECT note, label FROM decisions")).one()
        assert decision.note == "sarcasm"
        failed = conn.execute(text("SELECT error FROM predictions WHERE id = 3")).scalar_one()
        assert failed == "invalid answer"
    from autolabel.store.tables import Item, Run

    with db.session() as s:  # the models read the upgraded rows back
        assert s.get(Item, 1).payload == {"text": "item 1 ünïcode"}
        assert s.get(Run, 1).cost_usd == 0.5
    db.dispose()


def _all_revisions() -> list[str]:
    return [s.revision for s in script_directory().walk_revisions()][::-1]


def test_a_revision_that_changes_tables_is_not_applied_on_open(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fill_v1(sqlite_url)
    pending = [r for r in _all_revisions() if r != FIRST_RELEASED]
    module = script_directory().get_revision(pending[-1]).module
    monkeypatch.setattr(module, "AUTO_UPGRADE", False)  # as if it rewrote a table
    with pytest.raises(StoreError, match="autolabel db upgrade"):
        Database(sqlite_url)
    from autolabel.cli.main import main

    monkeypatch.setenv("AUTOLABEL_DB", sqlite_url)
    with pytest.raises(SystemExit) as exited:
        main(["db", "upgrade"])
    assert exited.value.code in (0, None)
    backups = list(tmp_path.glob("autolabel.db.v1-*.bak"))
    assert len(backups) == 1  # the pre-upgrade copy, still at the first schema
    old = create_engine(f"sqlite:///{backups[0]}")
    assert _counts(old)["predictions"] == 3
    with old.connect() as conn:
        assert not MigrationContext.configure(conn).get_current_heads()
    old.dispose()
    db = Database(sqlite_url)
    assert db.schema.up_to_date and _counts(db.engine)["decisions"] == 1
    db.dispose()


def test_a_database_from_a_newer_autolabel_is_refused(db_url: str) -> None:
    Database(db_url).dispose()
    engine = _raw_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this autolabel"):
        Database(db_url)


def test_a_pre_alembic_database_at_a_later_version_is_refused(sqlite_url: str) -> None:
    engine = _raw_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE schema_info (id INTEGER PRIMARY KEY, version INTEGER)"))
        conn.execute(text("INSERT INTO schema_info VALUES (1, 2)"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 2, newer than this autolabel"):
        Database(sqlite_url)


def test_four_processes_on_a_fresh_home_all_succeed(db_url: str, tmp_path: Path) -> None:
    """Issue 16.5: N commands started at once on a fresh database all succeed."""
    env = {**os.environ, "AUTOLABEL_HOME": str(tmp_path / "fresh"), "AUTOLABEL_DB": db_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "autolabel.cli.main", "runs"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    for p, out, err in results:
        assert p.returncode == 0, err
        assert "Traceback" not in out + err
    db = Database(db_url)
    assert db.schema.up_to_date and db.schema.applied == []
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM schema_info")).scalar_one() == 1
    db.dispose()
