"""SVG snapshots of the review screens (pytest-textual-snapshot).

Deterministic on purpose: fixed terminal size, fixed data, the queue on a fake clock
(no pace or time text that changes between runs). After an intended change to the
look, regenerate with ``pytest tests/review/test_tui_snapshots.py --snapshot-update``
and review the SVGs under ``__snapshots__/``.

``python -m tests.review.test_tui_snapshots`` rewrites the README screenshot
``docs/review-tui.svg`` from the same data.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from autolabel.tui import ReviewApp
from tests.review.factories import FakeClock
from tests.review.test_tui import REVIEWER, SIZE, Tick, build_classify, build_multi, build_spans
from tests.review.test_tui_images import build_boxes, build_photo, needs_boxes, needs_images

SnapCompare = Callable[..., bool]


def _app(builder: Callable[..., object], tmp_path: Path) -> ReviewApp:
    _db, queue = builder(f"sqlite:///{tmp_path / 'snap.db'}", FakeClock())  # type: ignore[misc]
    # Images as coloured half blocks: the one rendering an SVG snapshot can show, and the
    # same on every terminal (auto would pick by the terminal the tests run in).
    return ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")


def test_classify_item(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(_app(build_classify, tmp_path), terminal_size=SIZE)


def test_classify_item_with_guidelines(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(_app(build_classify, tmp_path), press=["g"], terminal_size=SIZE)


def test_multi_label_item_after_toggles(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def toggle(pilot: Pilot) -> None:
        await pilot.pause()
        keys = pilot.app.review.keys  # type: ignore[attr-defined]
        await pilot.press(keys["fear"], "down")

    assert snap_compare(_app(build_multi, tmp_path), terminal_size=SIZE, run_before=toggle)


def test_spans_item(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(_app(build_spans, tmp_path), terminal_size=SIZE)


def test_span_editor(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(_app(build_spans, tmp_path), press=["e", "tab"], terminal_size=SIZE)


@needs_images
def test_image_item(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(_app(build_photo, tmp_path), terminal_size=SIZE)


@needs_boxes
def test_boxes_item_after_edits(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def edit(pilot: Pilot) -> None:
        await pilot.pause()
        keys = pilot.app.review.keys  # type: ignore[attr-defined]
        await pilot.press("space", keys["dog"], "up")  # accept 1, relabel 2, select 1

    assert snap_compare(_app(build_boxes, tmp_path), terminal_size=SIZE, run_before=edit)


async def _save_readme_screenshot(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = _app(build_classify, Path(tmp))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.save_screenshot(filename=target.name, path=str(target.parent))


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/review-tui.svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_save_readme_screenshot(out))
    print(f"wrote {out}")
