"""Ontology diff and label migrations on SQLite and PostgreSQL: nothing lost, all audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from autolabel.errors import ConfigError, OntologyError, StoreError
from autolabel.interop.migrate import MIGRATION_REVIEWER, migrate_labels
from autolabel.interop.versions import diff_ontologies, label_impact, load_with_text
from autolabel.review.queue import ReviewQueue
from autolabel.review.resolution import resolve_final_labels
from autolabel.store.database import Database
from autolabel.store.tables import (
    Decision,
    GoldLabel,
    GoldSet,
    LabelChange,
    LabelMigration,
    OntologyVersion,
    Prediction,
    ReviewTask,
    Run,
)
from tests.review.factories import make_dataset, make_gold, make_run, make_tasks

V1 = """\
name: sentiment
version: 1
task: classify
guidelines: Judge the writer's attitude.
labels:
  - {name: pos, description: likes it}
  - {name: neg}
  - {name: angry}
  - {name: neutral}
"""

V2 = """\
name: sentiment
version: 2
task: classify
guidelines: Judge the writer's attitude. Mixed feelings are 'mixed'.
labels:
  - {name: positive, description: likes it}
  - {name: negative, description: dislikes it}
  - {name: neutral}
  - {name: mixed}
migrate:
  rename: {pos: positive}
  merge: {negative: [neg, angry]}
  split: {neutral: [neutral, mixed]}
"""

LABELS = ["pos", "neg", "angry", "neutral", "neutral", "pos", "pos"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _seed(db: Database, tmp_path: Path) -> tuple[list[int], int]:
    old = load_with_text(_write(tmp_path, "v1.yaml", V1)).ontology
    ids = make_dataset(db, [f"text {i}" for i in range(len(LABELS))])
    run_id = make_run(db, ids, LABELS, [0.9, 0.4, 0.5, 0.3, 0.95, 0.5, 0.6], ont=old)
    make_tasks(db, run_id)  # one open task per prediction ...
    with db.session() as s:  # ... but items 0 and 4 were auto-accepted (no task)
        for task in s.exec(select(ReviewTask)):
            if task.item_id in (ids[0], ids[4]):
                s.delete(task)
        s.commit()
    q = ReviewQueue(db)
    with db.session() as s:
        t = {task.item_id: task.id for task in s.exec(select(ReviewTask))}
    q.decide(t[ids[1]], "ann", "neg")
    q.decide(t[ids[2]], "ann", "angry")
    q.decide(t[ids[5]], "ann", "neutral")
    gold = make_gold(db, [ids[0], ids[1], ids[2], ids[4]], ["pos", "neg", "angry", "neutral"])
    with db.session() as s:
        gs = s.get(GoldSet, gold)
        assert gs is not None
        gs.name = "sent-gold"
        s.add(gs)
        s.commit()
    return ids, run_id


def test_diff_explains_changes_and_database_impact(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    _seed(db, tmp_path)
    old = load_with_text(tmp_path / "v1.yaml")
    new = load_with_text(_write(tmp_path, "v2.yaml", V2))
    d = diff_ontologies(old.ontology, new.ontology)
    assert d.renamed == {"pos": "positive"}
    assert d.merged == {"negative": ["neg", "angry"]}
    assert d.split == {"neutral": ["neutral", "mixed"]}
    assert d.added == [] and d.removed == []
    assert d.guidelines_changed
    with db.session() as s:
        impact = label_impact(s, old.ontology)
    assert impact.predictions == {"pos": 3, "neg": 1, "angry": 1, "neutral": 2}
    assert impact.decisions == {"neg": 1, "angry": 1, "neutral": 1}
    assert impact.gold == {"pos": 1, "neg": 1, "angry": 1, "neutral": 1}
    assert impact.open_tasks == {"neutral": 1, "pos": 1}  # items 3 and 6 are still open


def test_rename_merge_split_migration(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    ids, run_id = _seed(db, tmp_path)
    old = load_with_text(tmp_path / "v1.yaml")
    new = load_with_text(_write(tmp_path, "v2.yaml", V2))
    result = migrate_labels(db, old, new)
    assert result.counts["predictions_mapped"] == 5  # 3 pos, neg, angry
    assert result.counts["decisions_carried"] == 2
    assert result.counts["decisions_reopened"] == 1
    assert result.counts["gold_mapped"] == 3 and result.counts["gold_left_out"] == 1
    assert result.queued_items == [ids[3], ids[4], ids[5]]
    with db.session() as s:
        preds = {p.item_id: p for p in s.exec(select(Prediction))}
        assert [preds[i].label for i in ids] == [
            "positive", "negative", "negative", "neutral", "neutral", "positive", "positive"
        ]  # fmt: skip
        # A merged choice's probability is the sum of its parts.
        assert sum(preds[ids[2]].distribution.values()) == pytest.approx(1.0)
        assert set(preds[ids[2]].distribution) == {"positive", "negative", "neutral"}
        run = s.get(Run, run_id)
        assert run is not None
        assert [lab["name"] for lab in run.ontology["labels"]] == [
            "positive", "negative", "neutral", "mixed"
        ]  # fmt: skip
        # The run stays tied to the version it was made under, which is stored.
        made_under = s.exec(
            select(OntologyVersion).where(OntologyVersion.hash == run.ontology_hash)
        ).one()
        assert made_under.version == "1"
        assert s.exec(select(OntologyVersion).where(OntologyVersion.version == "2")).one().text
        # Decisions: nothing deleted; originals kept (undone), successors carry the label.
        decisions = s.exec(select(Decision).order_by(col(Decision.id))).all()
        assert len(decisions) == 6
        originals = [d for d in decisions if d.reviewer == "ann" and d.undone]
        assert sorted(d.label for d in originals) == ["angry", "neg", "neutral"]
        live = [d for d in decisions if not d.undone]
        assert sorted((d.reviewer, d.action, str(d.label)) for d in live) == [
            ("ann", "decide", "negative"),
            ("ann", "decide", "negative"),
            (MIGRATION_REVIEWER, "migrate", "None"),
        ]
        assert all(d.undoes_id in {o.id for o in originals} for d in live)
        tasks = {t.item_id: t for t in s.exec(select(ReviewTask))}
        assert (tasks[ids[1]].status, tasks[ids[1]].final_label) == ("decided", "negative")
        assert (tasks[ids[2]].status, tasks[ids[2]].final_label) == ("decided", "negative")
        assert tasks[ids[6]].suggestion == "positive"
        for i in (ids[3], ids[4], ids[5]):
            assert tasks[i].status == "pending" and "label_split" in tasks[i].reasons
            assert tasks[i].final_label is None
        # A suggestion that still means something under v2 stays; a split one is cleared.
        assert [tasks[i].suggestion for i in (ids[3], ids[4], ids[5])] == [None, None, "positive"]
        assert tasks[ids[4]].queue == "migration"  # it had no task before
        # Gold: a new version with mapped labels; the old version is untouched.
        sets = {g.version: g for g in s.exec(select(GoldSet).where(GoldSet.name == "sent-gold"))}
        assert set(sets) == {1, 2}

        def gold(version: int) -> dict[int, str]:
            rows = s.exec(select(GoldLabel).where(GoldLabel.gold_set_id == sets[version].id))
            return {g.item_id: g.label for g in rows}

        assert gold(1) == {ids[0]: "pos", ids[1]: "neg", ids[2]: "angry", ids[4]: "neutral"}
        assert gold(2) == {ids[0]: "positive", ids[1]: "negative", ids[2]: "negative"}
        # Every change is audited with its label before and after.
        changes = s.exec(select(LabelChange)).all()
        kinds = sorted({c.kind for c in changes})
        assert kinds == ["decision", "gold", "prediction", "run", "task"]
        gold_split = [c for c in changes if c.kind == "gold" and c.action == "label_split"]
        assert [(c.item_id, c.before, c.after) for c in gold_split] == [(ids[4], "neutral", None)]
        migration = s.exec(select(LabelMigration)).one()
        assert migration.counts == result.counts
    finals = resolve_final_labels(db, run_id)
    assert (finals[ids[1]].label, finals[ids[1]].source) == ("negative", "human")
    # The queue now reviews under the new version: a split item takes a new label.
    q = ReviewQueue(db, "migration")
    view = q.claim("bob")
    assert view is not None
    q.decide(view.task_id, "bob", "mixed")  # a label only v2 has
    ReviewQueue(db).decide(tasks[ids[3]].id, "bob", "neutral")  # type: ignore[arg-type]
    finals = resolve_final_labels(db, run_id)
    assert (finals[ids[4]].label, finals[ids[3]].label) == ("mixed", "neutral")
    # Applying it again is refused: decisions made under v2 are never re-split.
    with pytest.raises(ConfigError, match="was applied already"):
        migrate_labels(db, old, new)
    assert resolve_final_labels(db, run_id)[ids[3]].label == "neutral"
    with db.session() as s:
        assert len(s.exec(select(LabelMigration)).all()) == 1


def test_migration_naming_a_missing_label_writes_nothing(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    _seed(db, tmp_path)
    old = load_with_text(tmp_path / "v1.yaml")
    bad = V2.replace("rename: {pos: positive}", "rename: {happy: positive}")
    new = load_with_text(_write(tmp_path, "v2bad.yaml", bad))
    with pytest.raises(OntologyError) as info:
        migrate_labels(db, old, new)
    text = str(info.value)
    assert "v2bad.yaml migrate.rename.happy: 'happy' is not a label" in text
    assert "nothing was changed" in text
    with db.session() as s:
        assert s.exec(select(LabelMigration)).all() == []
        assert s.exec(select(OntologyVersion)).all() == []
        assert {p.label for p in s.exec(select(Prediction))} == {"pos", "neg", "angry", "neutral"}


def test_target_not_in_new_version_is_located(tmp_path: Path) -> None:
    bad = V2.replace("rename: {pos: positive}", "rename: {pos: happy}")
    with pytest.raises(OntologyError, match=r"v2.yaml:\d+ migrate.rename.pos: 'happy' is not"):
        load_with_text(_write(tmp_path, "v2.yaml", bad))


def test_removal_refused_while_used_unless_told(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    ids, _ = _seed(db, tmp_path)
    old = load_with_text(tmp_path / "v1.yaml")
    dropped = V1.replace("version: 1", "version: 3").replace("  - {name: angry}\n", "")
    new = load_with_text(_write(tmp_path, "v3.yaml", dropped))
    with pytest.raises(ConfigError, match="angry were removed but data uses them"):
        migrate_labels(db, old, new)
    with db.session() as s:
        assert s.exec(select(LabelChange)).all() == []
    result = migrate_labels(db, old, new, removed="review")
    assert result.queued_items == [ids[2]]
    with db.session() as s:
        task = s.exec(select(ReviewTask).where(ReviewTask.item_id == ids[2])).one()
        assert task.status == "pending" and "label_removed" in task.reasons


def test_label_plan_maps_every_task_type() -> None:
    from autolabel.interop.migrate import LabelPlan
    from autolabel.ontology.schema import TaskType

    mapping = {"neg": "negative", "angry": "negative", "pos": "positive"}
    actions = {"neg": "merge", "angry": "merge", "pos": "rename"}
    multi = LabelPlan(
        TaskType.MULTI_LABEL,
        ["positive", "negative", "x"],
        mapping,
        actions,
        {"old": "label_split"},
    )
    assert multi.map(["angry", "neg", "x"]) == (["negative", "x"], "merge", None)
    assert multi.map(["x"]) == (["x"], None, None)
    assert multi.map(["pos", "old"]) == (["pos", "old"], None, "label_split")
    # P(any of the merged labels applies) is at least the largest of them.
    assert multi.map_distribution({"neg": 0.2, "angry": 0.7, "x": 0.1}) == {
        "negative": 0.7,
        "x": 0.1,
    }
    spans = LabelPlan(TaskType.SPANS, ["positive", "negative"], mapping, actions, {})
    span = {"start": 0, "end": 3, "text": "abc", "label": "pos"}
    assert spans.map([span]) == ([{**span, "label": "positive"}], "rename", None)
    keep = LabelPlan(TaskType.CLASSIFY, ["neg", "x"], {"neg": "neg"}, {"neg": "merge"}, {})
    assert keep.map("neg") == ("neg", None, None)  # merged into itself: unchanged


def test_failure_midway_rolls_everything_back(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    ids, run_id = _seed(db, tmp_path)
    # A second, later run whose stored ontology is broken: the migration fails after it
    # has already rewritten the first run's predictions, decisions and tasks.
    broken = make_run(
        db, ids[:2], ["pos", "neg"], [0.9, 0.9], ont=load_with_text(tmp_path / "v1.yaml").ontology
    )
    with db.session() as s:
        run = s.get(Run, broken)
        assert run is not None
        run.ontology = {**run.ontology, "labels": []}
        s.add(run)
        s.commit()
    old = load_with_text(tmp_path / "v1.yaml")
    new = load_with_text(_write(tmp_path, "v2.yaml", V2))
    with pytest.raises(StoreError, match=f"run {broken} holds an invalid ontology"):
        migrate_labels(db, old, new)
    with db.session() as s:
        assert {p.label for p in s.exec(select(Prediction))} == {"pos", "neg", "angry", "neutral"}
        assert all(not d.undone for d in s.exec(select(Decision)))
        assert len(s.exec(select(Decision)).all()) == 3
        assert s.exec(select(LabelChange)).all() == []
        assert s.exec(select(LabelMigration)).all() == []
        assert s.exec(select(OntologyVersion)).all() == []
        assert len(s.exec(select(GoldSet)).all()) == 1
        assert "label_split" not in str([t.reasons for t in s.exec(select(ReviewTask))])
