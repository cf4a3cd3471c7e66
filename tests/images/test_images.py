"""autolabel.images: checking, hashing, resizing and folders, on tiny Pillow pictures."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from autolabel.engine.inputs import read_rows, validator_for
from autolabel.errors import BadRowError, ImageError, InputError
from autolabel.images import (
    IMAGE_KEY,
    data_url,
    encode_image,
    inspect_image,
    read_folder_rows,
    sent_size,
)
from autolabel.ontology.schema import Ontology
from tests.images.pictures import solid

LIMITS = {"max_pixels": 10_000, "max_bytes": 100_000}
ONT = Ontology.model_validate(
    {
        "name": "colours",
        "task": "classify",
        "input": {"image": "image", "max_pixels": 10_000},
        "labels": [{"name": "red"}, {"name": "green"}],
    }
)


def test_inspect_hashes_the_file_and_reads_its_size(tmp_path: Path) -> None:
    path = solid(tmp_path / "a.png", "red", (40, 30))
    ref = inspect_image(path, **LIMITS)
    assert (ref.width, ref.height) == (40, 30)
    assert ref.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert Path(ref.path).is_absolute()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: None, "image not found"),
        (lambda p: p.write_text("hello"), "not an image"),
        (lambda p: solid(p, "red", (200, 100)), "more than the limit of 10,000"),
        (lambda p: p.write_bytes(b"\x89PNG" + b"\0" * 200_000), "larger than the limit"),
    ],
    ids=["missing", "not-an-image", "too-many-pixels", "too-many-bytes"],
)
def test_bad_images_are_image_errors(tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImageError, match=words):
        inspect_image(path, **LIMITS)


def test_a_truncated_image_is_caught_before_labeling(tmp_path: Path) -> None:
    whole = Image.effect_noise((64, 64), 50).convert("RGB")
    buf = io.BytesIO()
    whole.save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="damaged|unreadable|truncated"):
        inspect_image(path, **LIMITS)


def test_sent_size_keeps_the_aspect_and_never_enlarges() -> None:
    assert sent_size(4000, 3000, 1024) == (1024, 768)
    assert sent_size(300, 1200, 600) == (150, 600)
    assert sent_size(20, 10, 1024) == (20, 10)


def test_encoding_resizes_and_refuses_a_changed_file(tmp_path: Path) -> None:
    path = solid(tmp_path / "a.png", "green", (200, 100))
    ref = inspect_image(path, max_pixels=10**6, max_bytes=10**6)
    mime, b64 = encode_image(ref, 50)
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        assert (mime, img.size, img.format) == ("image/jpeg", (50, 25), "JPEG")
    assert data_url(ref, 50).startswith("data:image/jpeg;base64,")
    solid(path, "red", (200, 100))  # same name, other content
    with pytest.raises(ImageError, match="changed since it was read"):
        encode_image(ref, 50)


def test_folder_rows_carry_the_class_folder_as_gold(tmp_path: Path) -> None:
    solid(tmp_path / "red" / "r1.png", "red")
    solid(tmp_path / "green" / "g1.jpg", "green")
    solid(tmp_path / "loose.png", "red")
    (tmp_path / "README.md").write_text("not a picture, skipped")
    rows = [r for _, r in read_folder_rows(tmp_path, "picture")]
    assert rows == [
        {"picture": "green/g1.jpg", "label": "green"},
        {"picture": "loose.png"},
        {"picture": "red/r1.png", "label": "red"},
    ]
    assert [r for _, r in read_rows(tmp_path, "picture")] == rows


def test_rows_with_bad_images_are_bad_rows_naming_row_and_path(tmp_path: Path) -> None:
    good = solid(tmp_path / "pics" / "ok.png", "red")
    (tmp_path / "pics" / "text.png").write_text("nope")
    validator = validator_for(ONT, tmp_path / "data.csv")
    item = validator.validate(1, {"image": "pics/ok.png"})
    assert item.payload[IMAGE_KEY]["path"] == str(good.resolve())
    assert item.payload[IMAGE_KEY]["width"] == 40
    problems = {
        2: {"image": "pics/gone.png"},
        3: {"image": "pics/text.png"},
        4: {"image": ""},
        5: {"other": "x"},
    }
    for row, raw in problems.items():
        with pytest.raises(BadRowError) as err:
            validator.validate(row, raw)
        assert err.value.row == row and err.value.field == "image"
    with pytest.raises(BadRowError, match=r"row 2, field 'image': image not found: .*gone\.png"):
        validator.validate(2, problems[2])


def test_image_content_is_part_of_the_item_identity(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", "red")
    solid(tmp_path / "b.png", "green")
    solid(tmp_path / "c.png", "red")  # the same bytes as a.png under another name
    validator = validator_for(ONT, tmp_path / "data.csv")
    a, b, c = (validator.validate(i, {"image": f"{n}.png"}) for i, n in enumerate("abc", 1))
    assert a.content_hash != b.content_hash and a.external_id != b.external_id
    assert a.content_hash == c.content_hash  # identity is the content, not the file name


def test_a_folder_of_images_needs_an_image_ontology(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", "red")
    with pytest.raises(InputError, match="folder of images, but the ontology reads text"):
        list(read_rows(tmp_path))
