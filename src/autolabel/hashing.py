"""Canonical JSON and stable hashes.

Format (documented because cache keys and prompt hashes depend on it): JSON with
sorted keys, separators ``(",", ":")``, ``ensure_ascii=False``, UTF-8 encoded,
hashed with blake2b (32-byte digest) and written as hex.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(value: Any, *, digest_size: int = 32) -> str:
    """blake2b of the canonical JSON of ``value``."""
    data = value if isinstance(value, bytes) else canonical_json(value).encode("utf-8")
    return hashlib.blake2b(data, digest_size=digest_size).hexdigest()


def short_hash(value: Any) -> str:
    """A 12-hex-digit hash for display and ids."""
    return stable_hash(value)[:12]
