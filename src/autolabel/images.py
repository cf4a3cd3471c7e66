"""Images as item input: find, validate, hash, resize and encode. The one place Pillow is used
outside the review TUI.

An item with an image stores ``payload["__image__"] = {"path", "sha256", "width",
"height"}`` (:class:`ImageRef`): the absolute path the TUI and the embedded model read,
the content hash that is part of the item's identity and of every cache key, and the
original size that box coordinates refer to.

Why Pillow is a core dependency: matplotlib (core, for reports) already requires it, so
naming it costs nothing to install, and reading images is a core input format now.
EXIF orientation is not applied: sizes and boxes are those of the stored pixels, as in
COCO, and every consumer (model, TUI, export) reads the same pixels.
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from autolabel.errors import ImageError

IMAGE_KEY = "__image__"  # the payload key of an item's image (a contract with the TUI)
# What a folder of images is read as; other files (README, LICENSE) are skipped.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
FOLDER_GOLD_COLUMN = "label"  # a folder's class sub-folder, as optional gold


@dataclass(frozen=True)
class ImageRef:
    path: str  # absolute
    sha256: str
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ImageRef:
        if not isinstance(data, dict):
            raise ImageError(f"not an image reference: {data!r}")
        return cls(str(data["path"]), str(data["sha256"]), int(data["width"]), int(data["height"]))


def inspect_image(path: Path, *, max_pixels: int, max_bytes: int) -> ImageRef:
    """Check that ``path`` is a whole, decodable image within the limits; hash it.

    Decoding the pixels (not only the header) is what catches a truncated file, here
    rather than in the middle of a run or in front of a reviewer.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError(f"{path}: {size:,} bytes is larger than the limit of {max_bytes:,}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with _open(data, path) as img:
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"{path}: {width}x{height} pixels is more than the limit of {max_pixels:,}"
            )
        if img.format == "JPEG":
            # Decode at 1/8 scale: the whole stream is still read (a cut file still fails)
            # but the inverse DCT runs on 1/64 of the pixels (a 12 MP photo: ~8x faster).
            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{path}: damaged image: {exc}") from exc
    return ImageRef(str(path), hashlib.sha256(data).hexdigest(), width, height)


class _open:
    """``Image.open`` over bytes with every way of failing mapped to :class:`ImageError`."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path = data, path

    def __enter__(self) -> Image.Image:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's bomb check must not warn (tests run
            # with warnings as errors) nor raise a non-autolabel error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                self.img = Image.open(io.BytesIO(self.data))
            except UnidentifiedImageError as exc:
                raise ImageError(
                    f"{self.path}: not an image (or a format Pillow cannot read)"
                ) from exc
            except Image.DecompressionBombError as exc:
                raise ImageError(f"{self.path}: too many pixels: {exc}") from exc
            except (OSError, ValueError, SyntaxError) as exc:
                raise ImageError(f"{self.path}: unreadable image: {exc}") from exc
        return self.img

    def __exit__(self, *exc: object) -> None:
        self.img.close()


def sent_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size an image is sent to a model with: longest side at most ``max_side``."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_image(ref: ImageRef, max_side: int) -> tuple[str, str]:
    """(MIME type, base64) of the image resized to ``max_side``.

    The file must still hold the content the item was hashed with: a changed file would
    give an answer that the cache and the store attribute to the old picture.
    """
    path = Path(ref.path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ImageError(
            f"{path} changed since it was read (content hash differs)",
            hint="label the data again so the item carries the new image",
        )
    with _open(data, path) as img:
        target = sent_size(ref.width, ref.height, max_side)
        alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
        out = img.convert("RGBA" if alpha else "RGB")
        if target != out.size:
            out = out.resize(target, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        # JPEG is 5-10x smaller than PNG for photos; PNG only where transparency matters.
        if alpha:
            out.save(buf, format="PNG", optimize=False)
            mime = "image/png"
        else:
            out.save(buf, format="JPEG", quality=90)
            mime = "image/jpeg"
    return mime, base64.b64encode(buf.getvalue()).decode("ascii")


def data_url(ref: ImageRef, max_side: int) -> str:
    mime, b64 = encode_image(ref, max_side)
    return f"data:{mime};base64,{b64}"


def is_image_folder(path: Path) -> bool:
    """A directory holding image files (directly or one class folder down)."""
    if not path.is_dir():
        return False
    return any(_image_files(path))


def _image_files(root: Path) -> Iterator[Path]:
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            yield entry
        elif entry.is_dir() and not entry.name.startswith("."):
            for sub in sorted(entry.iterdir()):
                if sub.is_file() and sub.suffix.lower() in IMAGE_SUFFIXES:
                    yield sub


def read_folder_rows(root: Path, image_column: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of an image folder: the path relative to ``root``, and the class sub-folder's
    name (files directly in ``root`` have none) under ``label`` as optional gold."""
    for i, path in enumerate(_image_files(root), start=1):
        rel = path.relative_to(root)
        row: dict[str, Any] = {image_column: rel.as_posix()}
        if len(rel.parts) > 1:
            row[FOLDER_GOLD_COLUMN] = rel.parts[0]
        yield i, row
