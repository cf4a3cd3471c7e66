"""Opening databases: schema versioning and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from autolabel.errors import ConfigError, StoreError
from autolabel.settings import load_settings
from autolabel.store import Database
from autolabel.store.migrations import SCHEMA_VERSION


def test_new_database_is_at_current_schema_and_reopens(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_info")).scalar_one() == SCHEMA_VERSION
    db.dispose()
    Database(sqlite_url).dispose()  # idempotent


def test_database_from_a_newer_autolabel_is_refused(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE schema_info SET version = :v"), {"v": SCHEMA_VERSION + 1})
    db.dispose()
    with pytest.raises(StoreError, match="newer than this autolabel"):
        Database(sqlite_url)


def test_bad_urls_say_how_to_fix() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        Database("not a url")


def test_settings_reject_typos_in_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "autolabel.toml"
    cfg.write_text("concurency = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="concurency: Extra inputs are not permitted"):
        load_settings(cfg)
    cfg.write_text("concurrency = 4\nmodel = 'm'\n", encoding="utf-8")
    settings = load_settings(cfg, model="override")
    assert (settings.concurrency, settings.model) == (4, "override")


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "autolabel.toml"
    cfg.write_text("concurrency = 4\n", encoding="utf-8")
    monkeypatch.setenv("AUTOLABEL_CONCURRENCY", "9")
    assert load_settings(cfg).concurrency == 9
    assert str(load_settings(cfg).home_dir).endswith("home")  # the test's isolated data dir
