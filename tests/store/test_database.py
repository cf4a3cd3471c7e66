"""Opening databases: clear errors, settings. (Schema revisions: test_migrations.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from autolabel.errors import ConfigError, StoreError
from autolabel.settings import load_settings
from autolabel.store import Database


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
