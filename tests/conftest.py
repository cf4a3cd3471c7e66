"""Shared fixtures. No test reaches the network: every endpoint is on 127.0.0.1."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models import gemma_path, gemma_provider, qwen_path, qwen_provider  # noqa: F401
from tests.pg import PgServer, start_postgres

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir; no user config leaks in."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOLABEL_HOME", str(home))
    # Endpoint capabilities learned by one test must not steer another on a reused port.
    monkeypatch.setenv("AUTOLABEL_ENDPOINT_CACHE", str(tmp_path / "endpoints"))
    for var in (
        "AUTOLABEL_DB",
        "AUTOLABEL_PROVIDER",
        "AUTOLABEL_MODEL",
        "AUTOLABEL_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AUTOLABEL_API_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'autolabel.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    server, why = start_postgres()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    yield server
    server.stop()


_db_counter = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: PgServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"t{next(_db_counter)}")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'autolabel.db'}"
    return request.getfixturevalue("postgres_url")
