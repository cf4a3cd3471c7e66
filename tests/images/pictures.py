"""Tiny pictures drawn with Pillow for the image tests (milliseconds to make, no files)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220)}


def solid(path: Path, colour: str, size: tuple[int, int] = (40, 30)) -> Path:
    """A picture of one colour (what the loopback server's responder classifies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[colour]).save(path)
    return path


def shapes(
    path: Path, boxes: dict[str, tuple[int, int, int, int]], size: tuple[int, int] = (200, 100)
) -> Path:
    """White picture with a filled rectangle per colour at [x, y, w, h]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for colour, (x, y, w, h) in boxes.items():
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=COLOURS[colour])
    img.save(path)  # PNG: exact pixels, so boxes come back exact
    return path
