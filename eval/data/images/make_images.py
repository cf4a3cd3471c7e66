"""Build eval/data/images/<class>/<file>.jpg from GCompris's photos (Debian ``gcompris-qt-data``).

GCompris (an educational suite) ships, inside ``/usr/share/gcompris-qt/rcc/categorization.rcc``,
photos sorted into categories, each folder with a README naming author, source and licence per
file. We keep only CC0-1.0 / Public Domain files, convert them to JPEG (quality 90, same size,
~320 px on the long side) and write README.md with every file's attribution.

Run: ``apt-get download gcompris-qt-data && dpkg-deb -x gcompris-qt-data_*.deb x &&
python eval/data/images/make_images.py x/usr/share/gcompris-qt/rcc/categorization.rcc``
"""

from __future__ import annotations

import io
import re
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent
PREFIX = "gcompris/src/activities/categorization/resource/images/"
# class -> (GCompris folder, file names). Classes chosen so that some have an ImageNet-1k
# counterpart (fish, hammer, screwdriver, windmill, dam) and some only a weak or none
# (pliers, scissors, solar_panel): the embedded model must route those to review.
CLASSES: dict[str, tuple[str, list[str]]] = {
    "fish": ("fishes", [f"fish{i}" for i in range(1, 11)]),
    "hammer": ("tools", [f"hammer{i}" for i in range(1, 9)]),
    "screwdriver": ("tools", ["screwDriver", "screwDriver1", "screwDriver2", "screwDriver3"]),
    "pliers": ("tools", ["plier1", "plier2", "plier3", "plier4"]),
    "scissors": ("tools", ["scissors1", "scissors2", "scissors3", "scissors4"]),
    "windmill": ("renewable", ["windmill", *[f"windmill{i}" for i in range(1, 8)]]),
    "dam": ("renewable", [f"dam{i}" for i in range(1, 6)]),
    "solar_panel": ("renewable", [f"solar{i}" for i in range(1, 9)]),
}
FREE = {"CC0-1.0", "Public Domain"}
# GCompris's tools/README misspells one file name.
README_TYPOS = {"screwDriver.webp": "screDriver.webp"}


def read_rcc(path: Path) -> dict[str, bytes]:
    """Files of a Qt resource bundle (format v1-v3, zlib or uncompressed entries)."""
    b = path.read_bytes()
    assert b[:4] == b"qres", "not a Qt .rcc file"
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node_size = 14 if version == 1 else 22
    out: dict[str, bytes] = {}

    def name(offset: int) -> str:
        length = struct.unpack(">H", b[names + offset : names + offset + 2])[0]
        return b[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        o = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", b[o : o + 6])
        here = prefix + name(name_offset) + "/" if index else prefix
        if flags & 2:  # directory
            count, first = struct.unpack(">II", b[o + 6 : o + 14])
            for child in range(first, first + count):
                walk(child, here)
            return
        offset = data + struct.unpack(">I", b[o + 10 : o + 14])[0]
        size = struct.unpack(">I", b[offset : offset + 4])[0]
        blob = b[offset + 4 : offset + 4 + size]
        out[here.rstrip("/")] = zlib.decompress(blob[4:]) if flags & 1 else blob

    walk(0, "")
    return out


def attributions(readme: str) -> dict[str, dict[str, str]]:
    """file name -> {Copyright, Source, License} from a GCompris image README."""
    result: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", readme):
        meta = dict(re.findall(r"^(Copyright|Source|License): *(.*)$", block, re.M))
        files = block.split("Files:", 1)[1].split() if "Files:" in block else []
        for file in files:
            result[file] = meta
    return result


def main(rcc: Path) -> None:
    files = read_rcc(rcc)
    rows = []
    for label, (folder, stems) in CLASSES.items():
        credits = attributions(files[f"{PREFIX}{folder}/README"].decode())
        (HERE / label).mkdir(exist_ok=True)
        for stem in stems:
            meta = credits[README_TYPOS.get(f"{stem}.webp", f"{stem}.webp")]
            if meta.get("License") not in FREE:
                continue
            image = Image.open(io.BytesIO(files[f"{PREFIX}{folder}/{stem}.webp"])).convert("RGB")
            target = HERE / label / f"{stem.lower()}.jpg"
            image.save(target, "JPEG", quality=90)
            rows.append(
                f"| `{label}/{target.name}` | {meta['Copyright']} | {meta['Source']} "
                f"| {meta['License']} |"
            )
    table = "\n".join(rows)
    (HERE / "README.md").write_text(README.format(count=len(rows), table=table))
    print(f"{len(rows)} images")


README = """# Images: a small real labelled photo set

{count} photos in 8 classes, one folder per class (`<class>/<file>.jpg`, the folder name is the
gold label). Used by the embedded image classifier's tests, `bench/vision.py` and the README's
Images section.

**Source**: the photos GCompris (an educational suite, https://gcompris.net) ships in its
`categorization` activity, read from the Debian package `gcompris-qt-data` (3.1-2,
`usr/share/gcompris-qt/rcc/categorization.rcc`). GCompris's code is GPL-3.0-or-later; each photo
carries its own licence, listed in GCompris's per-folder README and repeated below. Only files
under **CC0-1.0** or in the **Public Domain** were taken, so these images can be used for any
purpose; credits are kept as a courtesy. Converted from WebP to JPEG (quality 90), same pixels
size. Rebuild with `make_images.py` (see its docstring).

Classes: `fish`, `hammer`, `screwdriver`, `windmill`, `dam` have an ImageNet-1k counterpart;
`pliers`, `scissors` and `solar_panel` have none (ImageNet-1k has no pliers or scissors class;
the nearest to a solar panel is "solar dish"), so an ImageNet model should route them to review.

| file | author | source | licence |
|---|---|---|---|
{table}
"""

if __name__ == "__main__":
    main(Path(sys.argv[1]))
