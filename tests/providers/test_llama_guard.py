"""The AMX guard: a crashing llama.cpp is probed in a child, never met in-process.

The crash is simulated with AUTOLABEL_PROBE_CRASH, which makes the probe child kill
itself with SIGSEGV after loading the model, the way ggml's AMX path kills it. Every
probe here is a real child process loading the real (small) model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autolabel.errors import ModelNotAvailableError
from autolabel.providers import llama_guard
from autolabel.providers.llama_guard import DEFAULT, SAFE, RuntimeSettings, choose_settings

pytestmark = pytest.mark.model
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def verdict_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "runtime"
    monkeypatch.setenv("AUTOLABEL_RUNTIME_DIR", str(directory))
    monkeypatch.delenv("AUTOLABEL_LLAMA_SAFE", raising=False)
    monkeypatch.delenv("AUTOLABEL_PROBE_CRASH", raising=False)
    return directory


@pytest.fixture(scope="module")
def machine_settings(gemma_path: Path) -> RuntimeSettings:
    """What this machine really needs, from one probe child of our own: the defaults,
    or the safe settings where the defaults crash llama.cpp (CPUs with AMX)."""
    return DEFAULT if llama_guard.probe(gemma_path, DEFAULT).ok else SAFE


def test_probe_chooses_the_settings_this_machine_needs_and_caches_them(
    gemma_path: Path, verdict_dir: Path, machine_settings: RuntimeSettings
) -> None:
    first = choose_settings(gemma_path)
    assert first.settings == machine_settings
    assert first.source == "probed"
    second = choose_settings(gemma_path)
    assert second.source == "cached"
    assert second.settings == machine_settings
    stored = json.loads((verdict_dir / "llama-runtime-verdicts.json").read_text())
    assert stored[first.key]["settings"] == machine_settings.name


def test_segfault_under_defaults_chooses_safe_settings_and_caches_them(
    gemma_path: Path,
    verdict_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    machine_settings: RuntimeSettings,
) -> None:
    monkeypatch.setenv("AUTOLABEL_PROBE_CRASH", "default")
    verdict = choose_settings(gemma_path)
    assert verdict.settings == SAFE
    assert verdict.source == "probed"
    assert "SIGSEGV" in verdict.reason
    again = choose_settings(gemma_path)
    assert (again.source, again.settings) == ("cached", SAFE)
    # A simulated crash never poisons the verdict of the real setup.
    monkeypatch.delenv("AUTOLABEL_PROBE_CRASH")
    real = choose_settings(gemma_path)
    assert real.key != verdict.key
    assert real.settings == machine_settings


def test_both_probes_crashing_is_an_error_with_the_fix(
    gemma_path: Path, verdict_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLABEL_PROBE_CRASH", "all")
    with pytest.raises(ModelNotAvailableError) as info:
        choose_settings(gemma_path)
    text = str(info.value)
    assert "crashes llama.cpp" in text and "SIGSEGV" in text
    assert "CMAKE_ARGS" in text
    # Nothing cached: a rebuilt llama-cpp-python is probed again.
    assert not (verdict_dir / "llama-runtime-verdicts.json").exists()


def test_environment_override_skips_the_probe(
    gemma_path: Path, verdict_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLABEL_PROBE_CRASH", "all")  # a probe would fail
    monkeypatch.setenv("AUTOLABEL_LLAMA_SAFE", "1")
    verdict = choose_settings(gemma_path)
    assert (verdict.settings, verdict.source) == (SAFE, "environment")


def test_safe_settings_load_and_score_like_the_defaults(
    gemma_path: Path, machine_settings: RuntimeSettings
) -> None:
    """The safe path is a working runtime, not just a flag: same best label."""
    from autolabel.providers.llama_runtime import LlamaRuntime

    if machine_settings == SAFE:
        pytest.skip(
            "the default settings crash llama.cpp on this CPU (AMX): they cannot be "
            "loaded in-process to compare with; the safe path is what every other "
            "model test here runs on"
        )

    results = []
    for settings in (DEFAULT, SAFE):
        runtime = LlamaRuntime(str(gemma_path), n_ctx=512, n_threads=2, settings=settings)
        try:
            assert runtime.llama.model_params.use_extra_bufts is settings.use_extra_bufts
            prompt = runtime.tokenize(
                runtime.chat_text([{"role": "user", "content": "Is 'great film' positive?"}])
            )
            conts = [runtime.tokenize(w) for w in ("yes", "no", "maybe")]
            results.append([s for s, _ in runtime.score_continuations(prompt, conts)])
        finally:
            runtime.close()
    default_scores, safe_scores = results
    assert max(range(3), key=default_scores.__getitem__) == max(
        range(3), key=safe_scores.__getitem__
    )
    # Repacked weights round differently: compare the label distribution, not raw logprobs.
    assert _normalised(default_scores) == pytest.approx(_normalised(safe_scores), abs=0.05)


def _normalised(scores: list[float]) -> list[float]:
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autolabel.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )


def test_cli_exits_with_the_explanation_when_every_probe_crashes(
    gemma_path: Path, verdict_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "AUTOLABEL_PROBE_CRASH": "all", "AUTOLABEL_HOME": str(tmp_path / "h")}
    proc = _cli(
        ["label", "sst2", "examples/sst2_sample.csv", "--model", "gemma3-270m", "--limit", "2"],
        env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "crashes llama.cpp" in out and "CMAKE_ARGS" in out
    assert "Traceback" not in out
    assert proc.returncode != -11  # never a bare segfault


def test_cli_labels_on_safe_settings_after_a_simulated_crash(
    gemma_path: Path, verdict_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "AUTOLABEL_PROBE_CRASH": "default", "AUTOLABEL_HOME": str(tmp_path / "h")}
    proc = _cli(
        ["label", "sst2", "examples/sst2_sample.csv", "--model", "gemma3-270m", "--limit", "3"],
        env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doctor = _cli(["doctor", "--model", "gemma3-270m"], env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "safe (use_extra_bufts=false" in doctor.stdout
    assert "cached" in doctor.stdout  # the label run's probe answered it


def test_doctor_reports_build_cpu_settings_and_model(
    gemma_path: Path, verdict_dir: Path, tmp_path: Path, machine_settings: RuntimeSettings
) -> None:
    env = {**os.environ, "AUTOLABEL_HOME": str(tmp_path / "h")}
    proc = _cli(["doctor", "--model", "gemma3-270m"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert llama_guard.build_info().version in out
    for feature in ("AVX2", "AMX_INT8"):
        assert feature in out
    has_amx = "amx_int8" in llama_guard.cpu_flags()
    row = next(line for line in out.splitlines() if "AMX_INT8" in line)
    assert ("yes" if has_amx else "no") in row
    assert machine_settings.describe()[:30] in out
    assert "probed now" in out
    assert "(verified)" in out and "gemma-3-270m-q4_k_m.gguf" in out
