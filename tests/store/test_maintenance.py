"""autolabel db backup / check / status, in-process through the CLI entry point."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text, update

from autolabel.cli.main import main
from autolabel.store import Database
from autolabel.store.tables import Run
from tests.review.factories import make_dataset, make_run


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return int(exited.value.code or 0), out, err


def _filled(url: str) -> Database:
    db = Database(url)
    ids = make_dataset(db, ["good", "bad", "meh"])
    make_run(db, ids, ["positive", "negative", None], [0.9, 0.8, None], name="done")
    unfinished = make_run(db, ids, ["positive", None, None], [0.7, None, None], name="half")
    with db.engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == unfinished).values(status="interrupted"))
    return db


def test_check_reports_integrity_references_and_unfinished_runs(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled(db_url).dispose()
    monkeypatch.setenv("AUTOLABEL_DB", db_url)
    code, out, _ = _cli(capsys, "db", "check")
    assert code == 0, out
    assert "integrity: ok" in out and "references: ok" in out
    assert "run 2 (half): interrupted; resume it with the same label command" in out
    assert "run 1 " not in out  # completed runs are not listed
    code, out, _ = _cli(capsys, "db", "status")
    assert code == 0 and "up to date" in out


def test_check_finds_orphaned_rows(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled(sqlite_url).dispose()
    path = sqlite_url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)  # foreign keys are off by default here, as in old files
    con.execute("UPDATE predictions SET run_id = 99 WHERE id = 1")
    con.execute("DELETE FROM items WHERE id = 3")
    con.commit()
    con.close()
    monkeypatch.setenv("AUTOLABEL_DB", sqlite_url)
    code, out, _ = _cli(capsys, "db", "check")
    assert code == 1
    assert "orphaned rows: 1 in predictions.run_id -> runs" in out
    assert "orphaned rows: 2 in predictions.item_id -> items" in out


def test_backup_copies_a_database_in_use(
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = _filled(sqlite_url)
    monkeypatch.setenv("AUTOLABEL_DB", sqlite_url)
    with db.engine.connect() as held:  # another connection has the file open, reading
        held.execute(text("SELECT COUNT(*) FROM items")).scalar_one()
        code, out, _ = _cli(capsys, "db", "backup", str(tmp_path / "copy.db"))
    assert code == 0 and "backed up to" in out
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 6
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    code, _, err = _cli(capsys, "db", "backup", str(tmp_path / "copy.db"))
    assert code == 2 and "already exists" in err and "--force" in err
    code, _, _ = _cli(capsys, "db", "backup", str(tmp_path / "copy.db"), "--force")
    assert code == 0
    db.dispose()


def test_backup_on_postgresql_points_at_pg_dump(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("AUTOLABEL_DB", postgres_url)
    code, _, err = _cli(capsys, "db", "backup", str(tmp_path / "x.dump"))
    assert code == 2 and "pg_dump --format=custom" in err
    assert not (tmp_path / "x.dump").exists()


def test_check_and_status_leave_an_old_database_as_it_is(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.store.test_migrations import _fill_v1

    _fill_v1(sqlite_url)
    monkeypatch.setenv("AUTOLABEL_DB", sqlite_url)
    code, out, _ = _cli(capsys, "db", "check")
    assert code == 0 and "run 1 (first): interrupted" in out
    code, out, _ = _cli(capsys, "db", "status")
    assert "pre-Alembic version 1" in out and "pending 0002 (applied automatically)" in out
    code, out, _ = _cli(capsys, "db", "status")  # still not upgraded
    assert "pre-Alembic version 1" in out
