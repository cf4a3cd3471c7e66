"""Stored ontology versions, keyed by the hash runs already record (``Run.ontology_hash``).

Kept in the store (not in ``interop``) because the engine records the version a run is
made under, and gold imports the version their labels were checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from autolabel.hashing import stable_hash
from autolabel.ontology.schema import Ontology
from autolabel.store.tables import GoldSetOntology, OntologyVersion


def ontology_hash(ontology: Ontology) -> str:
    """The hash the engine stores as ``Run.ontology_hash``."""
    return stable_hash(ontology.model_dump(mode="json"))


def read_text(path: str | Path | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the file moved: the validated data is stored all the same


def _find(s: Session, name: str, digest: str) -> OntologyVersion | None:
    return s.exec(
        select(OntologyVersion).where(
            col(OntologyVersion.name) == name, col(OntologyVersion.hash) == digest
        )
    ).first()


def store_version(
    s: Session,
    ontology: Ontology,
    *,
    text: str | None = None,
    source: str | None = None,
    data: dict[str, Any] | None = None,
    digest: str | None = None,
) -> OntologyVersion:
    """The stored row for this version, created on first sight (its text kept when known)."""
    digest = digest or ontology_hash(ontology)
    found = _find(s, ontology.name, digest)
    if found is None:
        row = OntologyVersion(
            name=ontology.name,
            version=ontology.version,
            hash=digest,
            text=text,
            data=data if data is not None else ontology.model_dump(mode="json"),
            source=source,
        )
        try:
            # A savepoint: a concurrent writer storing the same version is not an error.
            with s.begin_nested():
                s.add(row)
            return row
        except IntegrityError:
            found = _find(s, ontology.name, digest)
            assert found is not None
    if found.text is None and text is not None:
        found.text = text
        s.add(found)
    return found


def link_gold_set(s: Session, gold_set_id: int, version: OntologyVersion) -> None:
    """Tie a gold set to the ontology version its labels were made under."""
    s.add(GoldSetOntology(gold_set_id=gold_set_id, ontology_version_id=int(version.id)))  # type: ignore[arg-type]
