"""Credentials never reach the database, the cache or the output.

Canaries go in the base URL (user info and a secret query parameter) and in the API
key (``OPENAI_API_KEY``); the endpoint echoes what it received back in its error
messages, as some proxies do. Then every byte of the database, the cache directory,
the exported file and the output of ``label`` and ``runs`` is scanned for them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import SQLModel

from autolabel.store.database import Database
from autolabel.store.tables import Run
from autolabel.testing import FakeOpenAIServer, default_responder, error_reply
from tests.cli.test_cli import autolabel

USER = "canaryuser-31c7"
PASSWORD = "canaryPW-8d1e4"
QUERY_SECRET = "canaryQ-77b2f"
API_KEY = "sk-canaryKEY-5f3a9c"
CANARIES = (USER, PASSWORD, QUERY_SECRET, API_KEY)


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    rows = ["id,text", "r1,a positive film", "r2,a negative film ECHO-ME", "r3,positive again"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _dump(url: str) -> str:
    """Every row of every table, as text."""
    db = Database(url)
    out: list[str] = []
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            out += [repr(tuple(row)) for row in conn.execute(select(table))]
    db.dispose()
    return "\n".join(out)


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [c for c in CANARIES if c.encode() in data]


def test_canary_credentials_are_never_stored_or_printed(tmp_path: Path, db_url: str):
    def respond(req: dict[str, Any]) -> Any:
        seen = srv.requests[-1]  # concurrency 1: the request being answered
        if "ECHO-ME" not in str(req["messages"]):
            return default_responder(req)
        auth = seen.headers.get("authorization", "")
        decoded = ""
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth.split(" ", 1)[1]).decode()
        # A proxy that quotes the request it could not forward, credentials and all.
        return error_reply(400, f"bad request {seen.path} auth={auth} ({decoded})")

    def echoed() -> str:
        text = []
        for r in srv.requests:
            auth = r.headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                auth = base64.b64decode(auth.split(" ", 1)[1]).decode()
            text.append(f"{r.path} {auth}")
        return "\n".join(text)

    home = tmp_path / "home"
    env = {
        "AUTOLABEL_HOME": str(home),
        "AUTOLABEL_CONCURRENCY": "1",
        "AUTOLABEL_MAX_RETRIES": "1",
        "OPENAI_API_KEY": API_KEY,
    }
    data = _data(tmp_path)
    export = tmp_path / "labels.jsonl"
    with FakeOpenAIServer(responder=respond) as srv:
        # User info in the URL makes the client send Basic auth instead of the key: a
        # second endpoint URL without it gets the key (as a Bearer token) echoed too.
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/v1?api-key={QUERY_SECRET}"
        keyed = f"http://127.0.0.1:{srv.port}/v1?api-key={QUERY_SECRET}"
        label = ["label", "sst2", str(data), "--model", "m", "--db", db_url]
        outputs = [
            autolabel(*label, "--base-url", url, "--quiet", "--export", str(export), env=env),
            autolabel(*label, "--base-url", url, env=env),  # a re-run: retries the failure
            autolabel(*label, "--base-url", keyed, "--quiet", env=env),
            autolabel("runs", "--db", db_url, env=env),
        ]
        seen = echoed()
    # The credentials did reach the endpoint (so the scan below means something) ...
    assert all(c in seen for c in CANARIES), seen
    first = outputs[0]
    assert first.returncode == 0, first.stderr
    assert "run 1" in first.stdout and "1 item(s) failed" in first.stdout
    assert "retried 1 item(s) that had failed, in the same run (1)" in outputs[1].stdout
    for out in outputs:
        assert "Traceback" not in out.stderr
        assert _leaks(out.stdout + out.stderr) == [], out.stdout + out.stderr
    # ... and are nowhere in what autolabel keeps.
    dump = _dump(db_url)
    assert "bad request" in dump  # the echoed error was stored, with the secrets masked
    assert _leaks(dump) == []
    # Every file: the SQLite database (and its WAL) when used, the cache, the export.
    assert (tmp_path / "home" / "cache").is_dir() and export.exists()
    assert _leaks(_files(tmp_path)) == []
    db = Database(db_url)
    with db.session() as s:
        stored = s.execute(select(Run.base_url)).scalars().all()
    db.dispose()
    assert sorted(stored) == [
        f"http://***@127.0.0.1:{srv.port}/v1?api-key=***",
        f"http://127.0.0.1:{srv.port}/v1?api-key=***",
    ], stored


def test_a_config_error_does_not_print_the_url_credentials(tmp_path: Path):
    url = f"https://{USER}:{PASSWORD}@llm.example.invalid/v1?token={QUERY_SECRET}"
    out = autolabel("plan", "sst2", str(_data(tmp_path)), "--base-url", url, "--model", "m")
    assert out.returncode == 2
    assert "no API key for https://***@llm.example.invalid/v1?token=***" in out.stderr
    assert _leaks(out.stdout + out.stderr) == []
