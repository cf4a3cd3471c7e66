"""A throwaway PostgreSQL server on loopback for the tests (Debian's ``postgresql``).

Started once per test session in a temp dir; ``None`` (with a reason) when the
binaries are absent, so the PostgreSQL tests skip with a clear message.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    url: str
    datadir: Path
    bindir: Path
    user: str | None

    def create_database(self, name: str) -> str:
        self._run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", self.port, name])
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    @property
    def port(self) -> str:
        return self.url.rsplit(":", 1)[1].split("/")[0]

    def _run(self, cmd: list[str]) -> None:
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env())

    def stop(self) -> None:
        try:
            self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]
            )
        finally:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PGDATABASE", None)
    env["LC_ALL"] = "C"
    return env


def find_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> tuple[PgServer | None, str]:
    if url := os.environ.get("AUTOLABEL_TEST_POSTGRES_URL"):
        return PgServer(url=url, datadir=Path("/nonexistent"), bindir=Path("/"), user=None), ""
    bindir = find_bindir()
    if bindir is None:
        return None, "PostgreSQL is not installed (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed (pip install 'autolabel[postgres]')"
    # initdb refuses to run as root: run the server as the 'postgres' system user then.
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="autolabel-pg-"))
    datadir = base / "data"
    if user:
        shutil.chown(base, user=user)
    port = _free_port()
    role = user or os.environ.get("USER", "postgres")
    server = PgServer(
        url=f"postgresql+psycopg://{role}@127.0.0.1:{port}/autolabel",
        datadir=datadir,
        bindir=bindir,
        user=user,
    )
    try:
        server._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-A",
                "trust",
                "-U",
                user or os.environ.get("USER", "postgres"),
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=100"
        server._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                opts,
                "-w",
                "-l",
                str(base / "log"),
                "start",
            ]
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        server.create_database("autolabel")
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(base, ignore_errors=True)
        return None, f"could not start PostgreSQL: {detail.strip()[:300]}"
    return server, ""
