"""``python -m llama_cpp.server`` with llama.cpp's extra weight buffer types off.

On CPUs with AMX, llama-cpp-python 0.3.x built natively dies with SIGSEGV on the first
batched decode (see ``providers/llama_guard.py``); its server has no flag for the one
model parameter that avoids it. This entry point sets that parameter for every model
the server loads, then hands over to the server's own ``main()`` with the same
arguments:

    python -m autolabel.testing.llama_server_safe --model m.gguf --port 8080 ...
"""

from __future__ import annotations


def main() -> None:
    from llama_cpp.server.__main__ import main as server_main

    from autolabel.providers.llama_guard import safe_default_params

    safe_default_params()  # for the server's whole life: no undo
    server_main()


if __name__ == "__main__":
    main()
