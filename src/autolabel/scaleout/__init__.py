"""Scale-out engine: the same ``LabelJob`` on a Ray cluster (``pip install 'autolabel[ray]'``).

The only package that imports ``ray``. Everything per item is the local engine's code
(row validation, item upsert, :class:`~autolabel.engine.labeler.Labeler`, prediction
rows); this package only moves it onto Ray Data stages::

    JobSource (read + validate, one task per file)
      → map_batches(prepare_batch)           upsert items, drop done ones   (tasks)
      → map_batches(LabelBatch, actor pool)  label, commit one batch at once (actors)
      → driver                               counts, lease heartbeat, run record
"""

from __future__ import annotations

from autolabel.errors import ConfigError

RAY_HINT = "install the Ray extra: pip install 'autolabel[ray]'"


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> None:
    if not ray_available():
        raise ConfigError("--engine ray needs Ray Data, which is not installed", hint=RAY_HINT)


__all__ = ["RAY_HINT", "ray_available", "require_ray"]
