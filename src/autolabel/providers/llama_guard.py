"""Keep native crashes of llama.cpp away from users: probe once, load with what works.

Why: ggml's AMX kernels (Intel Xeon Sapphire Rapids and later) die with SIGSEGV at
``ldtilecfg`` on the first batched decode on many (often virtualised) machines: a
known upstream failure (llama.cpp #20824) that no installable release fixes. A
one-token prompt works, so nothing short of a real batched decode shows it, and a
segfault in-process cannot be caught. Loading the model with the model parameter
``use_extra_bufts = false`` (no extra weight buffer types: no AMX, no repacking)
avoids it.

How: before a process first loads a model, :func:`choose_settings` looks up a
verdict cached per (llama-cpp-python build, CPU flags, model file). Without one it
*probes* in a child process (:mod:`autolabel.providers.llama_probe`: load + one
batched decode) with the default settings; if the child dies by a signal or hangs,
it probes again with the safe settings. What passed is cached, so later runs pay
one small JSON read. If both die, :class:`~autolabel.errors.ModelNotAvailableError`
names the cause and the fix.

Why probe rather than always turn extra buffers off when the build reports AMX:
where AMX works (bare metal, kernels that grant tile permission) it is the fast
path, and where the CPU has no AMX the default settings are the ones we measured
(``bench/local.py --settings``). Why not (only) build without AMX: pip's wheel cache
ignores ``CMAKE_ARGS``, and users bring their own builds; the runtime guard covers
every build.

Environment: ``AUTOLABEL_LLAMA_SAFE=1`` forces the safe settings and ``=0`` the
defaults (no probe); ``AUTOLABEL_RUNTIME_DIR`` moves the verdict file;
``AUTOLABEL_PROBE_CRASH=default|all`` (tests only) makes the probe child kill itself
with SIGSEGV under the default settings, or under both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autolabel.errors import ModelNotAvailableError

PROBE_TIMEOUT_S = 120.0
_VERDICT_FILE = "llama-runtime-verdicts.json"
# CPU flags that decide which ggml kernels run (and can crash).
_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c", "sse4", "ssse3", "bmi2")
REBUILD_HINT = (
    "rebuild llama-cpp-python without AMX and without native tuning: "
    "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON' "
    "pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python "
    "llama-cpp-python; then run `autolabel doctor --reprobe`"
)


@dataclass(frozen=True)
class RuntimeSettings:
    """llama.cpp model parameters chosen for this machine."""

    use_extra_bufts: bool = True

    @property
    def name(self) -> str:
        return "default" if self.use_extra_bufts else "safe"

    def describe(self) -> str:
        if self.use_extra_bufts:
            return "default (extra weight buffer types on: AMX/repacking where the build has them)"
        return "safe (use_extra_bufts=false: no AMX tiles, no weight repacking)"


DEFAULT = RuntimeSettings(use_extra_bufts=True)
SAFE = RuntimeSettings(use_extra_bufts=False)
_BY_NAME = {s.name: s for s in (DEFAULT, SAFE)}


@dataclass(frozen=True)
class Verdict:
    """The settings to load with, why, and where the answer came from."""

    settings: RuntimeSettings
    reason: str
    source: str  # "cached" | "probed" | "environment"
    key: str
    probe_seconds: float = 0.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    crashed: bool  # died by a signal, or hung past the timeout
    detail: str
    seconds: float


# --- what this machine and build are --------------------------------------------------


def cpu_flags() -> list[str]:
    """The CPU flags that matter to ggml's kernels (Linux ``/proc/cpuinfo``; else empty)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return sorted({f for f in flags if f.startswith(_FLAG_PREFIXES)})
    return []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class BuildInfo:
    version: str
    library: str
    library_size: int
    library_mtime_ns: int
    system_info: str

    def feature(self, name: str) -> bool | None:
        """Whether llama.cpp's system info lists ``NAME = 1`` (it lists only what was
        compiled in; None when there is no system info at all)."""
        if "=" not in self.system_info:
            return None
        for part in self.system_info.split("|"):
            key, _, value = part.partition("=")
            if key.strip().upper() == name.upper():
                return value.strip() == "1"
        return False


def build_info() -> BuildInfo:
    """Identity of the installed llama-cpp-python build (a rebuild changes it)."""
    try:
        import llama_cpp
    except ImportError:
        from autolabel.providers.models import INSTALL_HINT

        raise ModelNotAvailableError(
            "the embedded model needs llama-cpp-python", hint=INSTALL_HINT
        ) from None
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted(lib_dir.glob("*llama*")) or sorted(lib_dir.glob("*"))
    lib = libs[0] if libs else Path(llama_cpp.__file__)
    st = lib.stat()
    raw = llama_cpp.llama_print_system_info()
    info = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return BuildInfo(
        version=str(getattr(llama_cpp, "__version__", "?")),
        library=str(lib),
        library_size=st.st_size,
        library_mtime_ns=st.st_mtime_ns,
        system_info=info.strip(),
    )


def verdict_key(model_path: Path, build: BuildInfo, flags: list[str]) -> str:
    """Canonical hash of everything a verdict depends on."""
    try:
        size = model_path.stat().st_size
    except OSError:
        size = -1
    material = {
        "build": asdict(build),
        "cpu": flags,
        "model": [model_path.name, size],
        # A simulated crash (tests) must never poison the verdict of the real setup.
        "simulate": os.environ.get("AUTOLABEL_PROBE_CRASH", ""),
        "python": sys.version_info[:2],
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def verdict_file() -> Path:
    override = os.environ.get("AUTOLABEL_RUNTIME_DIR")
    if override:
        return Path(override).expanduser() / _VERDICT_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("autolabel")) / _VERDICT_FILE


# --- the verdict cache ----------------------------------------------------------------


def _read_verdicts(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verdict(path: Path, key: str, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_verdicts(path)
    data[key] = record
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise probes across processes (two first runs at once probe once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: probing twice is harmless, only slower
        yield
        return
    with open(path.with_suffix(".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- probing --------------------------------------------------------------------------


def probe(model_path: Path, settings: RuntimeSettings, *, timeout: float = PROBE_TIMEOUT_S):
    """Load ``model_path`` and run one batched decode in a child process."""
    cmd = [sys.executable, "-m", "autolabel.providers.llama_probe", str(model_path)]
    cmd += ["--settings", settings.name]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, True, f"hung for more than {timeout:.0f} s", timeout)
    seconds = time.perf_counter() - start
    if proc.returncode == 0:
        return ProbeResult(True, False, "load + batched decode passed", seconds)
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return ProbeResult(False, True, f"died with {name}", seconds)
    if proc.returncode in (0xC0000005, -1073741819):  # Windows access violation
        return ProbeResult(False, True, "died with an access violation", seconds)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return ProbeResult(False, False, " / ".join(tail) or f"exit {proc.returncode}", seconds)


def choose_settings(model_path: str | Path, *, reprobe: bool = False) -> Verdict:
    """The settings this process should load ``model_path`` with (probing at most once)."""
    path = Path(model_path)
    forced = os.environ.get("AUTOLABEL_LLAMA_SAFE", "").strip()
    if forced in ("0", "1"):
        settings = SAFE if forced == "1" else DEFAULT
        return Verdict(settings, f"AUTOLABEL_LLAMA_SAFE={forced}", "environment", "")
    build = build_info()
    key = verdict_key(path, build, cpu_flags())
    store = verdict_file()
    if not reprobe and (cached := _cached(store, key)) is not None:
        return cached
    with _file_lock(store):
        if not reprobe and (cached := _cached(store, key)) is not None:
            return cached  # another process probed while we waited
        return _probe_and_record(path, build, store, key)


def _cached(store: Path, key: str) -> Verdict | None:
    record = _read_verdicts(store).get(key)
    if not isinstance(record, dict) or record.get("settings") not in _BY_NAME:
        return None
    return Verdict(_BY_NAME[record["settings"]], str(record.get("reason", "")), "cached", key)


def _probe_and_record(path: Path, build: BuildInfo, store: Path, key: str) -> Verdict:
    first = probe(path, DEFAULT)
    if first.ok:
        return _record(store, key, DEFAULT, f"probe passed ({first.detail})", first.seconds)
    if not first.crashed:
        # Not a native crash (a broken file, say): the in-process load reports it
        # properly. Nothing is cached, so a fixed file is probed again.
        return Verdict(DEFAULT, f"probe inconclusive: {first.detail}", "probed", key)
    amx = build.feature("AMX_INT8")
    second = probe(path, SAFE)
    seconds = first.seconds + second.seconds
    if second.ok:
        why = (
            f"default settings {first.detail} in a batched decode"
            + (" (the build uses AMX)" if amx else "")
            + "; extra weight buffer types turned off"
        )
        return _record(store, key, SAFE, why, seconds)
    raise ModelNotAvailableError(
        f"the embedded model crashes llama.cpp on this machine: with default settings the "
        f"probe {first.detail}, with extra buffer types off it {second.detail} "
        f"(llama-cpp-python {build.version}, CPU {cpu_name()}"
        + (", AMX reported by the build" if amx else "")
        + ")",
        hint=REBUILD_HINT + ", or use an OpenAI-compatible endpoint (--base-url)",
    )


def _record(
    store: Path, key: str, settings: RuntimeSettings, reason: str, seconds: float
) -> Verdict:
    _write_verdict(
        store,
        key,
        {"settings": settings.name, "reason": reason, "probed_at": time.time()},
    )
    return Verdict(settings, reason, "probed", key, seconds)


# --- loading with the chosen settings -------------------------------------------------

_LOAD_LOCK = threading.Lock()


def safe_default_params() -> Callable[[], None]:
    """Make ``llama_model_default_params()`` return the safe settings
    (``use_extra_bufts = False``) for every model loaded from now on; returns the undo.

    ``Llama`` (and ``llama_cpp.server``) build their model params from that function
    and expose no ``use_extra_bufts`` argument, so it is wrapped."""
    import llama_cpp.llama_cpp as capi

    original = capi.llama_model_default_params

    def _safe_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    capi.llama_model_default_params = _safe_params

    def undo() -> None:
        capi.llama_model_default_params = original

    return undo


def load_llama(model_path: str, settings: RuntimeSettings, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path, **kwargs)`` loaded with ``settings``' model params
    (for the safe settings, :func:`safe_default_params` for the constructor, under a lock)."""
    import llama_cpp

    if settings.use_extra_bufts:
        return llama_cpp.Llama(model_path=model_path, **kwargs)
    with _LOAD_LOCK:
        undo = safe_default_params()
        try:
            return llama_cpp.Llama(model_path=model_path, **kwargs)
        finally:
            undo()


__all__ = [
    "DEFAULT",
    "REBUILD_HINT",
    "SAFE",
    "BuildInfo",
    "ProbeResult",
    "RuntimeSettings",
    "Verdict",
    "build_info",
    "choose_settings",
    "cpu_flags",
    "cpu_name",
    "load_llama",
    "safe_default_params",
    "probe",
    "verdict_file",
]
