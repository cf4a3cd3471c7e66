"""The child side of :mod:`autolabel.providers.llama_guard`: load, one batched decode, exit.

Run as ``python -m autolabel.providers.llama_probe MODEL.gguf --settings default|safe``.
Exit 0: the settings work. Death by a signal: they crash this machine's llama.cpp.
A one-token prompt is not enough (the AMX crash needs a batched matrix multiply),
so a few dozen tokens are decoded as one batch, as a real labeling prompt is.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from autolabel.providers.llama_guard import DEFAULT, SAFE, load_llama

_TEXT = (
    "You label text. Read the item and answer with JSON only. Item: the film is a "
    "quiet, patient study of grief, and its last scene lands with real force. "
    'Answer: {"label": "positive"}'
)


def _simulated_crash(settings_name: str) -> None:
    """Tests only: make this child die the way the AMX bug kills it."""
    mode = os.environ.get("AUTOLABEL_PROBE_CRASH", "")
    if mode == "all" or (mode == "default" and settings_name == "default"):
        os.kill(os.getpid(), signal.SIGSEGV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llama_probe")
    parser.add_argument("model")
    parser.add_argument("--settings", choices=["default", "safe"], default="default")
    args = parser.parse_args(argv)
    settings = SAFE if args.settings == "safe" else DEFAULT
    from autolabel.providers.llama_runtime import silence_llama_logs

    silence_llama_logs()
    llama = load_llama(
        args.model,
        settings,
        n_ctx=256,
        n_batch=256,
        n_threads=os.cpu_count() or 1,
        n_threads_batch=os.cpu_count() or 1,
        verbose=False,
    )
    tokens = llama.tokenize(_TEXT.encode(), add_bos=True, special=True)
    _simulated_crash(settings.name)
    llama.eval(tokens)  # one batch: the path that crashes
    llama.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
