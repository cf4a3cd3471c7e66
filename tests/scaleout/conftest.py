"""A local Ray runtime for the scale-out tests: started once per session, by the tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

SKIP_REASON = "Ray engine tests skipped: ray is not installed (pip install 'autolabel[ray]')"


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """Start Ray on 2 CPUs; yield its address, so a driver in a subprocess can join it."""
    ray = pytest.importorskip("ray", reason=SKIP_REASON)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
