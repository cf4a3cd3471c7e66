"""Images in the review TUI, without textual: where an item's picture is, the boxes the
reviewer is editing, and the picture with those boxes drawn on it.

Contracts with the engine (``autolabel.images``): an item with an image keeps
``fields["__image__"] = {"path", "sha256", "width", "height"}``; a boxes answer (the model's
suggestion, and the reviewer's decision) is ``{"objects": [{"label", "box": [x, y, w, h]
pixels of the stored image, "confidence"}]}``.

Box review: every box starts as the model drew it. The reviewer accepts it (space),
deletes it (delete/backspace; again restores it) or relabels it (a label key). Enter saves
the boxes not deleted: an untouched box keeps the model's confidence, so accepting everything
unchanged stores exactly the suggestion (and counts as agreeing with the model); a relabelled
box gets confidence 1.0 (a person said so). Drawing new boxes is not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from rich.text import Text

from autolabel.tui.render import IMAGE_KEY, label_color

# Boxes are drawn on a copy this large (long side): thick enough lines and legible labels
# on Kitty/Sixel terminals; half-block rendering scales it down again.
DRAW_SIDE = 640
# Shown pictures are decoded at most this large: a terminal shows far fewer pixels, and a
# 12-megapixel photo would be rescaled on every repaint.
SHOW_SIDE = 1280
SELECTED = "#ffffff"


def image_ref(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The item's image reference, or None for a text-only item."""
    ref = fields.get(IMAGE_KEY)
    return ref if isinstance(ref, dict) and ref.get("path") else None


def text_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields shown as text (the image reference is drawn, not printed)."""
    return {k: v for k, v in fields.items() if k != IMAGE_KEY}


@dataclass
class Box:
    label: str
    box: list[float]
    confidence: float | None
    state: str = "model"  # model | accepted | relabelled
    deleted: bool = False  # apart from state: restoring a box gives back its edit


@dataclass
class BoxState:
    """The boxes of one item while the reviewer edits them; pure data."""

    boxes: list[Box] = field(default_factory=list)
    selected: int = 0

    @classmethod
    def from_suggestion(cls, suggestion: Any) -> BoxState:
        objects = suggestion.get("objects") if isinstance(suggestion, dict) else None
        boxes = []
        for obj in objects or []:
            if isinstance(obj, dict) and isinstance(obj.get("box"), list | tuple):
                conf = obj.get("confidence")
                boxes.append(
                    Box(
                        str(obj.get("label", "")),
                        [float(v) for v in obj["box"]],
                        float(conf) if isinstance(conf, int | float) else None,
                    )
                )
        return cls(boxes)

    def current(self) -> Box | None:
        return self.boxes[self.selected] if self.boxes else None

    def move(self, delta: int) -> None:
        if self.boxes:
            self.selected = (self.selected + delta) % len(self.boxes)

    def accept(self) -> None:
        """Accept the selected box as it is and go to the next one."""
        box = self.current()
        if box is not None:
            box.deleted = False
            if box.state == "model":
                box.state = "accepted"
            self.move(1)

    def delete(self) -> None:
        """Delete the selected box; a deleted box is restored."""
        box = self.current()
        if box is not None:
            box.deleted = not box.deleted

    def relabel(self, label: str) -> None:
        box = self.current()
        if box is None:
            return
        box.deleted = False
        if label == box.label and box.state != "relabelled":
            box.state = "accepted"
            return
        box.label = label
        box.state = "relabelled"

    def decision(self) -> dict[str, Any]:
        """The reviewer's answer, in the boxes answer shape."""
        objects = [
            {
                "label": b.label,
                "box": b.box,
                "confidence": 1.0 if b.state == "relabelled" else b.confidence,
            }
            for b in self.boxes
            if not b.deleted
        ]
        # The order canonical boxes are stored in (top to bottom, left to right).
        objects.sort(key=lambda o: (o["box"][1], o["box"][0], o["label"]))
        return {"objects": objects}


MARK = {"model": " ", "accepted": "✓", "relabelled": "✎"}


def render_box_list(state: BoxState, labels: list[str]) -> Text:
    """One line per box: number, state mark, label (coloured), confidence, box."""
    if not state.boxes:
        return Text("(the model drew no boxes)", style="dim")
    lines = []
    for i, b in enumerate(state.boxes):
        conf = "" if b.confidence is None else f" {b.confidence:.2f}"
        if b.state == "relabelled":
            conf = " (you)"
        x, y, w, h = (round(v) for v in b.box)
        style = label_color(labels, b.label)
        line = Text.assemble(
            # "#1", not a key cap: the digit keys relabel (they are label keys), ↑/↓ select.
            (f"#{i + 1}", "bold"),
            f" {'✗' if b.deleted else MARK[b.state]} ",
            ("■ ", style),
            (b.label, f"bold {style}"),
            (conf, "dim"),
            (f"  [{x}, {y}, {w}, {h}]", "dim"),
        )
        if b.deleted:
            line.stylize("strike dim")
        if i == state.selected:
            line.stylize("bold on #3a3f4b")
            line.append("  ◀", style="bold")
        lines.append(line)
    return Text("\n").join(lines)


def load_picture(ref: dict[str, Any]) -> Image.Image:
    """The item's image as RGB, at most ``SHOW_SIDE`` on its long side; OSError/ValueError
    when it cannot be read."""
    with Image.open(Path(ref["path"])) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((SHOW_SIDE, SHOW_SIDE), Image.Resampling.BILINEAR)
    return picture


def draw_boxes(
    picture: Image.Image,
    state: BoxState,
    labels: list[str],
    original: tuple[int, int] | None = None,
) -> Image.Image:
    """A copy of ``picture`` (long side ``DRAW_SIDE``) with the kept boxes drawn on it.

    Box coordinates are pixels of the stored image (``original`` size, when ``picture`` is a
    smaller copy of it), so they are scaled to the canvas. The selected box is drawn in white
    and thicker; deleted boxes are not drawn.
    """
    view = DRAW_SIDE / max(picture.size)
    size = (max(1, round(picture.width * view)), max(1, round(picture.height * view)))
    canvas = picture.resize(size, Image.Resampling.BILINEAR)
    scale = size[0] / (original[0] if original else picture.width)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    for i, b in enumerate(state.boxes):
        if b.deleted:
            continue
        x, y, w, h = (v * scale for v in b.box)
        selected = i == state.selected
        color = SELECTED if selected else label_color(labels, b.label)
        draw.rectangle([x, y, x + w, y + h], outline=color, width=6 if selected else 4)
        tag = f"#{i + 1} {b.label}"
        left, top, right, bottom = draw.textbbox((x, y), tag, font=font)
        ty = max(0, y - (bottom - top) - 6)
        draw.rectangle([x, ty, x + (right - left) + 8, ty + (bottom - top) + 6], fill=color)
        draw.text((x + 4, ty + 1), tag, fill="#000000", font=font)
    return canvas
