"""Run llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``).

A *real* third-party server, not ours: tests and ``eval/server_vs_embedded.py`` point
the openai provider at it to prove the negotiation works against what teams run, with
the same GGUF the embedded path uses. Needs ``pip install 'llama-cpp-python[server]'``
(in the ``test`` and ``server`` extras).

    with LlamaCppServer(gguf_path, alias="gemma") as srv:
        provider = OpenAIProvider("gemma", base_url=srv.base_url)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["LlamaCppServer", "llama_server_available"]


def llama_server_available() -> bool:
    """True when ``llama_cpp.server`` and its web stack are importable."""
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaCppServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 and a free port, as a context manager."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        alias: str = "model",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        startup_timeout_s: float = 180.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(os.cpu_count() or 1, 4))
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs (for CPU-time accounting in eval scripts)."""
        return self._proc.pid if self._proc is not None else None

    def version(self) -> str:
        from importlib.metadata import version

        return version("llama-cpp-python")

    def log_tail(self, chars: int = 3000) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-chars:]

    def start(self) -> LlamaCppServer:
        from autolabel.providers.llama_guard import choose_settings

        self.port = _free_port()
        # The machine's verdict for this model (probed once, cached): where the default
        # settings crash llama.cpp (AMX), the server runs with the safe ones too.
        settings = choose_settings(self.model_path).settings
        module = "llama_cpp.server"
        if not settings.use_extra_bufts:
            module = "autolabel.testing.llama_server_safe"
        cmd = [
            sys.executable,
            "-m",
            module,
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
        ]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start in time:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
