"""Reading a labelled file (input fields + a label column) into records for learning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autolabel.engine.inputs import read_rows, validator_for
from autolabel.errors import BadRowError, ConfigError
from autolabel.evaluation.gold import canonical_gold_label
from autolabel.learning.demonstrations import demo_text
from autolabel.learning.simulate import SimItem
from autolabel.ontology.schema import Ontology


def read_labelled(
    path: Path,
    ontology: Ontology,
    label_column: str,
    *,
    id_column: str | None = None,
    limit: int | None = None,
) -> list[SimItem]:
    """Rows with a valid label in ``label_column``; a bad row or label is a user error."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist", hint="pass a .csv, .tsv, .jsonl or .parquet")
    validator = validator_for(ontology, path, id_column)
    out: list[SimItem] = []
    seen: set[str] = set()
    for row_number, row in read_rows(path, ontology.input.image):
        if limit is not None and len(out) >= limit:
            break
        try:
            item = validator.validate(row_number, row)
        except BadRowError as exc:
            raise ConfigError(f"{path}: {exc.message}", hint="fix or remove the row") from exc
        if label_column not in row:
            raise ConfigError(
                f"{path}: no column '{label_column}' (columns: {', '.join(map(str, row))})",
                hint="name the label column with --gold-column / --label-column",
            )
        try:
            gold: Any = canonical_gold_label(ontology, row[label_column])
        except ValueError as exc:
            raise ConfigError(f"{path} row {row_number}: {exc}") from exc
        if item.external_id in seen:
            continue
        seen.add(item.external_id)
        shown = {f: item.payload.get(f, "") for f in ontology.input.fields}
        out.append(SimItem(item.external_id, shown, demo_text(ontology.input.fields, shown), gold))
    if not out:
        raise ConfigError(f"{path} has no labelled rows")
    return out
