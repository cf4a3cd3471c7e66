"""Versioned dataset snapshots: the labels of one or more runs plus a manifest.

``autolabel export RUN --snapshot DIR`` writes ``DIR/data.jsonl`` (one row per labeled
item: id, inputs, label, confidence, provenance) and ``DIR/manifest.json``: the
ontology (name, version, hash, stored version id), the runs (model, prompt hash,
times), counts, per-label provenance and the SHA-256 of ``data.jsonl``, so a training
set can be traced back and checked byte for byte.

Provenance of a row: ``human`` / ``consensus`` / ``adjudicator`` (a reviewed item's
final label), ``model_above_threshold`` (auto-accepted: the model's confidence reaches
the ontology's review threshold for that label) or ``model_below_threshold``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autolabel import __version__
from autolabel.errors import ConfigError
from autolabel.interop.records import Record, label_names_in, run_ontology, run_records
from autolabel.ontology.schema import Ontology
from autolabel.review.routing import threshold_for
from autolabel.store.database import Database
from autolabel.store.ontology_versions import ontology_hash, store_version
from autolabel.store.tables import Run

DATA_FILE = "data.jsonl"
MANIFEST = "manifest.json"


def provenance(ontology: Ontology, rec: Record) -> str:
    if rec.source != "model":
        return rec.source
    threshold = threshold_for(ontology.review, ontology.task, rec.label)
    above = rec.confidence is not None and rec.confidence >= threshold
    return "model_above_threshold" if above else "model_below_threshold"


def write_snapshot(db: Database, runs: list[Run], out: Path) -> dict[str, Any]:
    """Write data + manifest for ``runs`` (same ontology); later runs win per item."""
    if not runs:
        raise ConfigError("a snapshot needs at least one run")
    ontology = run_ontology(runs[-1])
    names = {r.ontology_name for r in runs}
    if len(names) > 1:
        raise ConfigError(f"runs use different ontologies ({', '.join(sorted(names))})")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty", hint="snapshots are immutable: pick a new DIR")
    by_item: dict[str, Record] = {}
    for run in runs:
        for rec in run_records(db, run, labels="final"):
            by_item[rec.external_id] = rec
    out.mkdir(parents=True, exist_ok=True)
    per_label: dict[str, Counter[str]] = defaultdict(Counter)
    sources: Counter[str] = Counter()
    data_path = out / DATA_FILE
    digest = hashlib.sha256()
    with data_path.open("w", encoding="utf-8") as fh:
        for ext_id in sorted(by_item):
            rec = by_item[ext_id]
            prov = provenance(ontology, rec)
            sources[prov] += 1
            for name in label_names_in(ontology.task, rec.label) or ["<fields>"]:
                per_label[name][prov] += 1
            line = json.dumps(
                {
                    "id": ext_id,
                    **rec.inputs,
                    "label": rec.label,
                    "confidence": rec.confidence,
                    "provenance": prov,
                    "model_version": rec.model_version,
                },
                ensure_ascii=False,
                sort_keys=True,
            )
            data = (line + "\n").encode("utf-8")
            digest.update(data)
            fh.write(line + "\n")
    with db.session() as s:
        version = store_version(s, ontology, source="snapshot")
        s.commit()
        version_id = version.id
    manifest = {
        "format": "autolabel-snapshot/1",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "autolabel_version": __version__,
        "ontology": {
            "name": ontology.name,
            "version": ontology.version,
            "hash": ontology_hash(ontology),
            "stored_version_id": version_id,
            "made_under": sorted({r.ontology_hash for r in runs}),
        },
        "runs": [
            {
                "id": r.id,
                "name": r.name,
                "provider": r.provider,
                "model": r.model,
                "prompt_hash": r.prompt_hash,
                "template": r.template,
                "status": r.status,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }
            for r in runs
        ],
        "counts": {"items": len(by_item), "by_provenance": dict(sorted(sources.items()))},
        "per_label": {k: dict(sorted(v.items())) for k, v in sorted(per_label.items())},
        "review_threshold": ontology.review.threshold,
        "files": {DATA_FILE: {"sha256": digest.hexdigest(), "rows": len(by_item)}},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def verify_snapshot(out: Path) -> bool:
    """True when ``data.jsonl`` still has the hash its manifest recorded."""
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    want = manifest["files"][DATA_FILE]["sha256"]
    return hashlib.sha256((out / DATA_FILE).read_bytes()).hexdigest() == want
