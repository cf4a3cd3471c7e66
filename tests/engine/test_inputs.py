"""Input reading and row validation: every bad row is named by number and field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autolabel.engine.inputs import RowValidator, count_rows, read_rows
from autolabel.errors import BadRowError, InputError
from autolabel.ontology import parse_ontology

ONT = parse_ontology(
    "name: t\ntask: classify\nlabels: [{name: a}, {name: b}]\ninput: {fields: [title, body]}\n"
)


def _validate_all(path: Path) -> tuple[list, list[BadRowError]]:
    v = RowValidator(ONT)
    good, bad = [], []
    for n, row in read_rows(path):
        try:
            good.append(v.validate(n, row))
        except BadRowError as exc:
            bad.append(exc)
    return good, bad


def test_csv_bad_rows_are_reported_with_row_and_field(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text('title,body\nok,fine\n,empty title\nonly-title\n"a, b",c\n', encoding="utf-8")
    good, bad = _validate_all(p)
    assert [g.row for g in good] == [1, 4]
    assert [(b.row, b.field) for b in bad] == [(2, "title"), (3, "body")]
    assert str(bad[0]) == "row 2, field 'title': empty text"
    assert count_rows(p) == 4


def test_jsonl_wrong_types_and_broken_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    lines = [
        json.dumps({"title": "t", "body": "b"}),
        json.dumps({"title": ["list"], "body": "b"}),
        "{not json",
        json.dumps(["not", "an", "object"]),
        json.dumps({"title": 3, "body": 4.5}),
    ]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    good, bad = _validate_all(p)
    assert [g.row for g in good] == [1, 5]
    assert good[1].payload == {"title": 3, "body": 4.5}
    assert [b.row for b in bad] == [2, 3, 4]
    assert "expected text, got list" in str(bad[0]) and bad[0].field == "title"
    assert "invalid JSON" in str(bad[1])


def test_parquet_rows_and_ids(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["r1", "r2"], "title": ["x", "y"], "body": ["p", None]}), str(p))
    good, bad = _validate_all(p)
    assert [g.external_id for g in good] == ["r1"]
    assert bad[0].row == 2 and bad[0].field == "body"
    assert count_rows(p) == 2


def test_ids_default_to_id_column_else_content_hash(tmp_path: Path) -> None:
    no_id = tmp_path / "a.csv"
    no_id.write_text("title,body\nx,y\nx,y\n", encoding="utf-8")
    good, _ = _validate_all(no_id)
    # Same content, same id: the item is labeled once.
    assert good[0].external_id == good[1].external_id and len(good[0].external_id) == 16
    chosen = RowValidator(ONT, id_column="body").validate(1, {"title": "x", "body": "y"})
    assert chosen.external_id == "y"


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown input format '.xlsx'"):
        list(read_rows(_touch(tmp_path / "x.xlsx")))
    with pytest.raises(InputError, match="not found"):
        list(read_rows(tmp_path / "missing.csv"))


def _touch(p: Path) -> Path:
    p.write_text("", encoding="utf-8")
    return p
