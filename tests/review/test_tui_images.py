"""Image items in the review TUI under the Pilot: the picture beside the suggestion, and box
review (accept, delete, relabel from the keyboard), asserting on what the queue STORED.

Items are written straight into the store with the engine's contract: ``payload["__image__"]
= {path, sha256, width, height}``; a boxes suggestion / decision is ``{"objects": [{label,
box: [x, y, w, h] px, confidence}]}``. Pictures are real shipped photos (eval/data/images).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual_image.widget import HalfcellImage, SixelImage, TGPImage, UnicodeImage

from autolabel.errors import ConfigError
from autolabel.ontology.schema import TaskType
from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.tui import ReviewApp
from autolabel.tui.image_view import ImageView, renderer
from autolabel.tui.images import BoxState, draw_boxes, load_picture
from tests.review.factories import FakeClock, make_dataset, make_run, make_tasks, ontology
from tests.review.test_tui import REVIEWER, SIZE, Tick, _text, build_classify, live

IMAGES = Path(__file__).resolve().parents[2] / "eval" / "data" / "images"
FISH = IMAGES / "fish" / "fish1.jpg"  # 320 x 213
TOOLS = IMAGES / "hammer" / "hammer1.jpg"  # 320 x 213

PHOTOS = {
    "name": "photos",
    "task": "classify",
    "input": {"fields": ["caption"]},
    "guidelines": "What is the main object of the photo?",
    "labels": [{"name": "fish"}, {"name": "hammer"}, {"name": "dam"}],
}
OBJECTS = {
    "name": "objects",
    "task": "boxes",
    "input": {"image": "image"},
    "guidelines": "Box every object.",
    "labels": [{"name": "fish"}, {"name": "hammer"}, {"name": "dog"}],
}
SUGGESTED = {
    "objects": [
        {"label": "fish", "box": [20.0, 30.0, 150.0, 90.0], "confidence": 0.91},
        {"label": "hammer", "box": [180.0, 100.0, 120.0, 80.0], "confidence": 0.42},
    ]
}
# The queue hands the TUI an item's image, and validates boxes decisions, from the images
# work of the engine side (autolabel.images, the boxes task); before it these tests skip.
needs_images = pytest.mark.skipif(
    importlib.util.find_spec("autolabel.images") is None,
    reason="the queue carries __image__ with autolabel.images (feat/img-core)",
)
needs_boxes = pytest.mark.skipif(
    "boxes" not in {t.value for t in TaskType}
    or importlib.util.find_spec("autolabel.images") is None,
    reason="the boxes task comes with the images ontology (feat/img-core)",
)


def image_ref(path: Path) -> dict[str, Any]:
    with Image.open(path) as im:
        width, height = im.size
    return {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "width": width,
        "height": height,
    }


def build_photo(url: str, clock: FakeClock) -> tuple[Database, ReviewQueue]:
    """One classify item with a photo and a caption, suggested 'fish' at 0.64."""
    db = Database(url)
    ids = make_dataset(
        db, ["unused"], name="photos", caption=["from the aquarium"], __image__=[image_ref(FISH)]
    )
    run_id = make_run(db, ids, ["fish"], [0.64], ont=ontology(PHOTOS))
    make_tasks(db, run_id, reasons=["low_confidence"])
    return db, ReviewQueue(db, clock=clock)


def build_boxes(url: str, clock: FakeClock, suggestion: Any = None) -> tuple[Database, ReviewQueue]:
    """One boxes item: two suggested boxes on a real photo."""
    db = Database(url)
    ids = make_dataset(db, ["unused"], name="objects", __image__=[image_ref(TOOLS)])
    run_id = make_run(db, ids, [suggestion or SUGGESTED], [0.42], ont=ontology(OBJECTS))
    make_tasks(db, run_id, reasons=["low_confidence"])
    return db, ReviewQueue(db, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the picture ---------------------------------------------------------------------------


@needs_images
async def test_image_item_shows_the_picture_beside_the_suggestion(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_photo(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.review.query_one("#item-image", ImageView)
        picture = view.query_one("#picture", HalfcellImage)
        assert view.display and picture.image is not None
        assert picture.image.size == (320, 213)  # the stored pixels, not a thumbnail
        caption = _text(view.query_one("#image-caption"))
        assert "fish1.jpg" in caption and "320×213" in caption
        body = _text(app.review.query_one("#item-body"))
        assert "from the aquarium" in body and "__image__" not in body and "sha256" not in body
        await pilot.press("enter")
        await pilot.pause()
    assert [d.label for d in live(db)] == ["fish"]


async def test_text_item_has_no_picture(sqlite_url: str, clock: FakeClock) -> None:
    _db, queue = build_classify(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.review.query_one("#item-image", ImageView).display
        # The box key is hidden from the footer outside box tasks.
        assert app.review.check_action("delete_box", ()) is False


@needs_images
async def test_missing_image_file_is_said_not_crashed(sqlite_url: str, clock: FakeClock) -> None:
    db = Database(sqlite_url)
    ref = {**image_ref(FISH), "path": "/nonexistent/fish1.jpg"}
    ids = make_dataset(db, ["x"], name="gone", caption=["c"], __image__=[ref])
    make_tasks(db, make_run(db, ids, ["fish"], [0.5], ont=ontology(PHOTOS)))
    app = ReviewApp(ReviewQueue(db, clock=clock), REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        caption = _text(app.review.query_one("#image-caption"))
        assert "cannot show the image /nonexistent/fish1.jpg" in caption
        await pilot.press(app.review.keys["hammer"])  # still reviewable
        await pilot.pause()
    assert [d.label for d in live(db)] == ["hammer"]


@pytest.mark.parametrize(
    ("mode", "widget"),
    [("tgp", TGPImage), ("sixel", SixelImage), ("unicode", UnicodeImage)],
)
async def test_graphics_protocol_is_chosen_by_mode(
    sqlite_url: str, clock: FakeClock, mode: str, widget: type
) -> None:
    """Kitty (TGP) and Sixel cannot be seen in an SVG snapshot: check the app mounts the
    chosen renderer and gives it the picture, and that rendering it does not fail."""
    db, queue = build_photo(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode=mode)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        picture = app.review.query_one("#picture")
        assert isinstance(picture, widget)
        if importlib.util.find_spec("autolabel.images") is not None:
            assert picture.image is not None
        await pilot.press("enter")
        await pilot.pause()
    assert [d.label for d in live(db)] == ["fish"]


def test_unknown_rendering_mode_says_how_to_fix() -> None:
    assert renderer("halfcell") is HalfcellImage
    with pytest.raises(ConfigError, match="not a rendering mode"):
        renderer("kitty-ish")


# -- boxes (pure) --------------------------------------------------------------------------


def test_box_state_accept_delete_relabel() -> None:
    state = BoxState.from_suggestion(SUGGESTED)
    assert state.decision() == SUGGESTED  # untouched: exactly the suggestion
    state.delete()  # box 1 (fish) deleted...
    state.delete()  # ...and restored
    state.accept()  # accepted as is, selection moves to box 2
    assert state.selected == 1
    state.relabel("dog")
    assert state.decision()["objects"] == [
        SUGGESTED["objects"][0],
        {"label": "dog", "box": [180.0, 100.0, 120.0, 80.0], "confidence": 1.0},
    ]
    state.delete()
    state.delete()  # restoring a relabelled box keeps its new label
    assert state.decision()["objects"][1]["label"] == "dog"
    state.move(1)  # wraps to box 1
    state.delete()
    assert [o["label"] for o in state.decision()["objects"]] == ["dog"]


def test_boxes_are_drawn_in_label_colours_scaled_to_the_picture() -> None:
    picture = load_picture(image_ref(TOOLS))
    state = BoxState.from_suggestion(SUGGESTED)
    drawn = draw_boxes(picture, state, ["fish", "hammer", "dog"])
    scale = drawn.width / picture.width
    assert drawn.width == 640
    # The unselected hammer box's bottom edge, in the hammer colour (#61afef).
    x, y = (180 + 60) * scale, (100 + 80) * scale - 1
    assert drawn.getpixel((round(x), round(y))) == (0x61, 0xAF, 0xEF)
    # The selected box (fish) is drawn in white.
    assert drawn.getpixel((round(100 * scale), round((30 + 90) * scale) - 1)) == (255, 255, 255)
    state.delete()  # a deleted box is not drawn
    redrawn = draw_boxes(picture, state, ["fish", "hammer", "dog"])
    assert redrawn.getpixel((round(100 * scale), round(120 * scale) - 1)) != (255, 255, 255)


def test_large_photo_is_shown_smaller_and_boxes_still_land(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 1500), (0, 0, 0)).save(big)
    ref = image_ref(big)
    picture = load_picture(ref)
    assert picture.size == (1280, 640)  # decoded for the screen, not at 4.5 MP
    state = BoxState.from_suggestion(
        {"objects": [{"label": "dog", "box": [1500.0, 750.0, 600.0, 300.0], "confidence": 0.5}]}
    )
    state.move(1)  # nothing selected-looking: one box, still box 1
    drawn = draw_boxes(picture, state, ["fish", "hammer", "dog"], (3000, 1500))
    assert drawn.size == (640, 320)
    # Box [1500, 750, 600, 300] of the 3000-px original is [320, 160, 128, 64] on the canvas:
    # its bottom edge runs at y = 223 (white: the selected box).
    assert drawn.getpixel((384, 222)) == (255, 255, 255)
    assert drawn.getpixel((384, 200)) == (0, 0, 0)  # inside the box: the photo


# -- boxes (Pilot) -------------------------------------------------------------------------


@needs_boxes
async def test_enter_on_untouched_boxes_stores_the_suggestion(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_boxes(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.review.check_action("delete_box", ()) is True
        await pilot.press("enter")
        await pilot.pause()
    (decision,) = live(db)
    assert decision.label == SUGGESTED


@needs_boxes
async def test_box_keys_delete_and_relabel_then_enter_stores_the_edit(
    sqlite_url: str, clock: FakeClock
) -> None:
    db, queue = build_boxes(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = app.review.keys
        await pilot.press("space")  # accept box 1 (fish); selection moves to box 2
        await pilot.press(keys["dog"])  # relabel box 2: hammer -> dog
        await pilot.press("up", "delete")  # select box 1, delete it
        await pilot.pause()
        listing = _text(app.review.query_one("#box-list"))
        assert "✗" in listing and "✎" in listing
        assert live(db) == []  # nothing stored before Enter
        await pilot.press("down", "backspace", "backspace")  # delete + restore box 2
        await pilot.press("enter")
        await pilot.pause()
    (decision,) = live(db)
    assert decision.label == {
        "objects": [{"label": "dog", "box": [180.0, 100.0, 120.0, 80.0], "confidence": 1.0}]
    }


@needs_boxes
async def test_deleting_every_box_stores_no_objects(sqlite_url: str, clock: FakeClock) -> None:
    db, queue = build_boxes(sqlite_url, clock)
    app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("delete", "down", "delete", "enter")
        await pilot.pause()
    assert [d.label for d in live(db)] == [{"objects": []}]


async def _save_screenshots(folder: Path) -> None:
    """docs/review-tui-image.svg and docs/review-tui-boxes.svg, from the tests' data."""
    import tempfile

    for name, builder, keys in (
        ("review-tui-image.svg", build_photo, []),
        ("review-tui-boxes.svg", build_boxes, ["space", "3", "up"]),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            _db, queue = builder(f"sqlite:///{Path(tmp) / 'shot.db'}", FakeClock())
            app = ReviewApp(queue, REVIEWER, clock=Tick(), image_mode="halfcell")
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                await pilot.press(*keys)
                await pilot.pause()
                app.save_screenshot(filename=name, path=str(folder))
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    # Needs the images engine work (the queue hands the TUI __image__).
    import asyncio
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(_save_screenshots(target))
