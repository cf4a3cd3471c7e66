"""Dataset identity: which dataset a data file's items belong to.

Items are identified by their id *within a dataset*, so two datasets must not merge
by accident. A file is the dataset named after it (``data.csv`` → ``data``) only if
that dataset came from the same file (its resolved path); another file with the
same name becomes ``data-2``, with a note. Naming a dataset with ``--dataset`` joins
it on purpose, also with a note when the file differs from the dataset's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select

from autolabel.store.database import Database
from autolabel.store.tables import Dataset


@dataclass(frozen=True)
class DatasetRef:
    id: int | None  # None: not created yet (plan never creates)
    name: str
    note: str | None = None


def _same_source(stored: str | None, source: Path) -> bool:
    # Datasets made by gold imports or by hand may have no source: identity by name.
    if not stored:
        return True
    try:
        return Path(stored).resolve() == source
    except OSError:
        return False


def dataset_for(db: Database, data: Path, explicit: str | None, *, create: bool) -> DatasetRef:
    source = data.resolve()
    for _ in range(5):  # a concurrent invocation may create the same name under us
        ref = _resolve(db, source, data, explicit)
        if ref.id is not None or not create:
            return ref
        try:
            with db.session() as s:
                ds = Dataset(name=ref.name, source=str(source))
                s.add(ds)
                s.commit()
                return DatasetRef(int(ds.id), ref.name, ref.note)  # type: ignore[arg-type]
        except IntegrityError:
            continue
    raise RuntimeError("dataset name kept being taken")  # pragma: no cover


def _resolve(db: Database, source: Path, data: Path, explicit: str | None) -> DatasetRef:
    with db.session() as s:
        if explicit:
            ds = s.exec(select(Dataset).where(Dataset.name == explicit)).first()
            if ds is None:
                return DatasetRef(None, explicit)
            note = None
            if not _same_source(ds.source, source):
                note = (
                    f"dataset '{explicit}' already holds items from {ds.source}; {data} joins "
                    "it as you asked with --dataset: rows with the same id are the same item, "
                    "and an item whose content changed is labeled again"
                )
            return DatasetRef(int(ds.id), explicit, note)  # type: ignore[arg-type]
        stem = data.stem
        pattern = re.compile(rf"^{re.escape(stem)}(-\d+)?$")
        candidates = [
            ds
            for ds in s.exec(
                select(Dataset)
                .where(or_(Dataset.name == stem, col(Dataset.name).startswith(f"{stem}-")))
                .order_by(col(Dataset.id))
            )
            if pattern.match(ds.name)
        ]
    for ds in candidates:
        if _same_source(ds.source, source):
            return DatasetRef(int(ds.id), ds.name)  # type: ignore[arg-type]
    if not candidates:
        return DatasetRef(None, stem)
    taken = {ds.name for ds in candidates}
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    first = candidates[0]
    return DatasetRef(
        None,
        f"{stem}-{n}",
        f"another file named {data.name} is dataset '{first.name}' ({first.source}); "
        f"this one ({source}) is dataset '{stem}-{n}'. To label them as one dataset, "
        f"pass --dataset {first.name}",
    )
