"""The picture of an image item in the review screen (``textual-image``), with its boxes.

Rendering: ``auto`` asks the terminal once, before Textual starts (textual-image does that at
import): Sixel or the Kitty graphics protocol where supported, coloured half blocks on any
other terminal, plain Unicode blocks when not a terminal. ``AUTOLABEL_TUI_IMAGES`` (auto,
tgp, sixel, halfcell, unicode) forces one, e.g. ``halfcell`` over ssh into tmux, where
graphics are lost; tests force ``halfcell`` so snapshots do not depend on the terminal.
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

# Imported with the TUI, i.e. before the app starts: textual-image asks the terminal what it
# supports (and its cell size) at import, which cannot work once Textual owns the terminal.
from textual_image import widget as image_widgets

from autolabel.tui.images import BoxState, draw_boxes, load_picture, render_box_list

MODES = ("auto", "tgp", "sixel", "halfcell", "unicode")


def renderer(mode: str | None = None) -> type[Any]:
    """The textual-image widget class for ``mode`` (default: ``AUTOLABEL_TUI_IMAGES``/auto)."""
    mode = (mode or os.environ.get("AUTOLABEL_TUI_IMAGES") or "auto").lower()
    classes = {
        "auto": image_widgets.Image,
        "tgp": image_widgets.TGPImage,
        "sixel": image_widgets.SixelImage,
        "halfcell": image_widgets.HalfcellImage,
        "unicode": image_widgets.UnicodeImage,
    }
    if mode not in classes:
        from autolabel.errors import ConfigError

        raise ConfigError(
            f"AUTOLABEL_TUI_IMAGES={mode!r} is not a rendering mode",
            hint=f"use one of: {', '.join(MODES)}",
        )
    return classes[mode]


class ImageView(Vertical):
    """The item's image (boxes drawn on it for box tasks) and, for boxes, the box list."""

    DEFAULT_CSS = """
    ImageView { height: auto; margin-top: 1; }
    ImageView .picture { width: auto; height: 18; }
    ImageView #image-caption { height: auto; color: $text-muted; }
    ImageView #box-list { height: auto; margin-top: 1; }
    """

    def __init__(self, mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.widget_class = renderer(mode)
        self._picture: Any = None  # the decoded image of the shown item
        self._ref: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield self.widget_class(None, id="picture", classes="picture")
        yield Static(id="image-caption")
        yield Static(id="box-list")

    def show(
        self, ref: dict[str, Any] | None, boxes: BoxState | None = None, labels: list[str] = ()
    ) -> None:
        """Show the image of ``ref`` (None hides the view); with ``boxes``, draw them."""
        self.display = ref is not None
        caption = self.query_one("#image-caption", Static)
        picture = self.query_one("#picture")
        box_list = self.query_one("#box-list", Static)
        box_list.display = boxes is not None
        if ref is None:
            picture.image = None  # type: ignore[attr-defined]
            self._ref, self._picture = None, None
            return
        if ref is not self._ref:
            self._ref = ref
            try:
                self._picture = load_picture(ref)
            except (OSError, ValueError) as exc:
                self._picture = None
                caption.update(Text(f"cannot show the image {ref.get('path')}: {exc}", "red"))
        if self._picture is None:
            picture.image = None  # type: ignore[attr-defined]
            return
        size = f"{ref.get('width', self._picture.width)}×{ref.get('height', self._picture.height)}"
        caption.update(f"{os.path.basename(str(ref['path']))} · {size} px")
        if boxes is None:
            picture.image = self._picture  # type: ignore[attr-defined]
        else:
            original = (int(ref.get("width") or 0), int(ref.get("height") or 0))
            drawn = draw_boxes(
                self._picture, boxes, list(labels), original if all(original) else None
            )
            picture.image = drawn  # type: ignore[attr-defined]
            box_list.update(render_box_list(boxes, list(labels)))
