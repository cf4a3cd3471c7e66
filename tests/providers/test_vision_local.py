"""The embedded image classifier on real shipped photos (eval/data/images), real weights, real
onnxruntime; and its torch-free weights reader and WordNet label mapping."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from autolabel.errors import InputError, ModelNotAvailableError
from autolabel.providers.vision.imagenet import label_class_matrix, load_hierarchy
from autolabel.providers.vision.torch_pickle import read_state_dict
from autolabel.providers.vision_local import EmbeddedImageClassifier, default_weights

IMAGES = Path(__file__).resolve().parents[2] / "eval" / "data" / "images"
LABELS = [
    ("fish", "a fish"),
    ("hammer", "a hammer"),
    ("screwdriver", "a screwdriver"),
    ("dam", "a dam across a river"),
    ("pliers", "a pair of pliers"),
]


@pytest.fixture(scope="session")
def classifier() -> EmbeddedImageClassifier:
    return EmbeddedImageClassifier(threads=2)


def _read(*names: str) -> list[bytes]:
    return [(IMAGES / name).read_bytes() for name in names]


def test_label_probs_pick_the_gold_class_on_real_photos(classifier: EmbeddedImageClassifier):
    names = ["fish/fish1.jpg", "hammer/hammer1.jpg", "screwdriver/screwdriver.jpg", "dam/dam1.jpg"]
    probs = classifier.label_probs(_read(*names), LABELS)
    assert [max(p, key=p.get) for p in probs] == ["fish", "hammer", "screwdriver", "dam"]
    for p in probs:
        assert set(p) == {name for name, _ in LABELS}
        assert all(0.0 <= v <= 1.0 for v in p.values())
        assert sum(p.values()) <= 1.0 + 1e-9  # disjoint labels share one softmax
        assert p["pliers"] == 0.0  # no ImageNet counterpart: never confident


def test_label_without_imagenet_counterpart_is_reported_and_scores_low(
    classifier: EmbeddedImageClassifier,
):
    assert classifier.unmatched(LABELS) == ["pliers"]
    (probs,) = classifier.label_probs(_read("pliers/plier1.jpg"), LABELS)
    assert max(probs.values()) < 0.2  # whatever wins, it routes to review


def test_aliases_give_an_unmatched_label_classes(classifier: EmbeddedImageClassifier):
    labels = [("solar_panel", "solar panels"), ("fish", "")]
    assert classifier.unmatched(labels) == ["solar_panel"]
    with_alias = EmbeddedImageClassifier(threads=2, aliases={"solar_panel": ["solar dish"]})
    assert with_alias.unmatched(labels) == []


def test_provenance_names_the_weights(classifier: EmbeddedImageClassifier):
    assert classifier.model_id.startswith("efficientnet-lite0-imagenet1k@")
    assert classifier.weights_sha256.startswith(classifier.model_id.split("@")[1])
    assert classifier.onnx_path.exists()


def test_onnx_export_is_built_once_and_reused(tmp_path: Path):
    first = EmbeddedImageClassifier(threads=1, cache_dir=tmp_path)
    stamp = first.onnx_path.stat().st_mtime_ns
    second = EmbeddedImageClassifier(threads=1, cache_dir=tmp_path)
    assert second.onnx_path == first.onnx_path
    assert second.onnx_path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.onnx_path.name]  # no temp files left


def test_top_classes_reads_imagenet_names(classifier: EmbeddedImageClassifier):
    top = classifier.top_classes((IMAGES / "dam/dam1.jpg").read_bytes(), k=3)
    assert top[0][0] == "dam"
    assert top[0][1] >= top[1][1] >= top[2][1]


def test_unreadable_image_is_an_input_error(classifier: EmbeddedImageClassifier):
    with pytest.raises(InputError, match="not a readable image"):
        classifier.label_probs([b"not an image"], LABELS)


def test_missing_or_foreign_weights_say_how_to_fix(tmp_path: Path):
    with pytest.raises(ModelNotAvailableError, match="not found"):
        EmbeddedImageClassifier(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelNotAvailableError, match="cannot read"):
        EmbeddedImageClassifier(junk, cache_dir=tmp_path)


def test_weights_reader_refuses_code_in_the_pickle(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {}, Evil()):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(ModelNotAvailableError, match="refusing to load"):
        read_state_dict(path)


def test_weights_reader_matches_the_architecture():
    weights = read_state_dict(default_weights())
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert len([k for k in weights if k.endswith("_depthwise_conv.weight")]) == 16


def test_wordnet_mapping_collects_classes_below_a_label():
    names = load_hierarchy().short_names
    (dog, fish, hammers, none), missing = label_class_matrix(
        ["dog", "fish", "hammers", "solar panel"]
    )
    assert len(dog) == 118  # ImageNet-1k's dog breeds
    assert "goldfish" in [names[i] for i in fish] and "hammer" not in [names[i] for i in fish]
    assert [names[i] for i in hammers] == ["hammer"]  # plural read as the lemma
    assert none == [] and missing == ["solar panel"]
    (by_wnid,), _ = label_class_matrix(["x"], {"x": ["n03481172"]})
    assert [names[i] for i in by_wnid] == ["hammer"]


def test_importing_the_classifier_loads_no_runtime() -> None:
    """onnx/onnxruntime load when a classifier is built, not when autolabel is imported."""
    import subprocess
    import sys

    code = (
        "import sys, autolabel.providers.vision_local\n"
        "print(','.join(m for m in ('onnx', 'onnxruntime', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
