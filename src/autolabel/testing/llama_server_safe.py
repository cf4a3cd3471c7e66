"""``python -m llama_cpp.server`` with llama.cpp's extra weight buffer types off.

On CPUs with AMX, llama-cpp-python 0.3.x built natively dies with SIGSEGV on the first
batched decode (see ``providers/llama_guard.py``); its server has no flag for the one
model parameter that avoids it. This entry point sets that parameter for every model
the server loads, then hands over to the server's own ``main()`` with the same
arguments:

    python -m autolabel.testing.llama_server_safe --model m.gguf --port 8080 ...
"""

from __future__ import annotations

from typing import Any


def main() -> None:
    import llama_cpp.llama_cpp as capi
    from llama_cpp.server.__main__ import main as server_main

    original = capi.llama_model_default_params

    def _safe_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    capi.llama_model_default_params = _safe_params
    server_main()


if __name__ == "__main__":
    main()
