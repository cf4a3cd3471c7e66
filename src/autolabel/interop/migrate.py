"""Label migrations between ontology versions: ``autolabel ontology migrate OLD NEW``.

The new version's ``migrate:`` section says how old labels map to new ones:

- ``rename: {a: b}`` and ``merge: {c: [a, b]}`` carry data over: predictions and the
  run's ontology are rewritten, human decisions are *superseded* by a copy with the new
  label (same reviewer and action; the original is kept, marked undone), gold sets get a
  new version with the mapped labels (the old version stays);
- ``split: {a: [a1, a2]}`` and ``remove: [a]`` cannot be mapped: decisions with the label
  are superseded by a ``migrate`` action, gold labels are left out of the new gold
  version, and every affected item is (re)queued for review with reason ``label_split``
  (``label_removed``);
- labels that vanish without an instruction are refused while data uses them, unless
  the caller says ``removed="review"`` (treated like ``remove``).

Every changed row is written to ``label_changes`` with its label before and after, and
the whole migration is one transaction: a bad spec or a failure writes nothing. Runs keep
``ontology_hash``/``ontology_version`` of the version they were made under (stored in
``ontology_versions``); ``Run.ontology`` becomes the version now in force for review.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlmodel import Session, col, select

from autolabel.errors import ConfigError, OntologyError, StoreError
from autolabel.interop.records import label_names_in
from autolabel.interop.versions import (
    LoadedOntology,
    diff_ontologies,
    label_impact,
    latest_gold_sets,
    runs_of,
)
from autolabel.ontology.schema import Ontology, TaskType
from autolabel.review.consensus import HUMAN_ACTIONS, LiveAction, derive_state
from autolabel.review.transactions import write_session
from autolabel.store.database import Database
from autolabel.store.ontology_versions import link_gold_set, ontology_hash, store_version
from autolabel.store.tables import (
    Decision,
    GoldLabel,
    GoldSet,
    GoldSetOntology,
    LabelChange,
    LabelMigration,
    OntologyVersion,
    Prediction,
    ReviewClaim,
    ReviewTask,
    Run,
    utcnow,
)

MIGRATION_REVIEWER = "autolabel:migrate"
Removed = Literal["refuse", "review"]


@dataclass(frozen=True)
class LabelPlan:
    """Old label → what happens to it."""

    task: TaskType
    new_labels: list[str]
    mapping: dict[str, str]  # rename/merge: old -> new
    actions: dict[str, str]  # old -> rename | merge
    reopen: dict[str, str]  # old -> label_split | label_removed

    def map(self, label: Any) -> tuple[Any, str | None, str | None]:
        """(mapped label, action when it changed, review reason when it cannot be mapped)."""
        names = label_names_in(self.task, label)
        reasons = [self.reopen[n] for n in names if n in self.reopen]
        if reasons:
            return label, None, reasons[0]
        hits = [n for n in names if n in self.mapping]
        if not hits:
            return label, None, None
        action = self.actions[hits[0]]
        if self.task == TaskType.CLASSIFY:
            mapped: Any = self.mapping[label]
        elif self.task == TaskType.MULTI_LABEL:
            chosen = {self.mapping.get(n, n) for n in label}
            mapped = [n for n in self.new_labels if n in chosen]
        else:
            mapped = [{**s, "label": self.mapping.get(s["label"], s["label"])} for s in label]
        # A merge may keep a source's name (merge: {neg: [neg, angry]}): no change then.
        return (label, None, None) if mapped == label else (mapped, action, None)

    def map_distribution(self, dist: Any) -> Any:
        if not isinstance(dist, dict):
            return dist  # spans: per-span confidences, unchanged
        out: dict[str, float] = {}
        for name, p in dist.items():
            target = self.mapping.get(name, name)
            if self.task == TaskType.CLASSIFY:
                out[target] = out.get(target, 0.0) + float(p)  # merged choices add up
            else:
                out[target] = max(out.get(target, 0.0), float(p))  # P(any of them applies) ≥ max
        return out


def plan_labels(old: LoadedOntology, new: LoadedOntology, *, removed: Removed) -> LabelPlan:
    """Check the ``migrate:`` section against the old version; errors name file and key."""
    o, n = old.ontology, new.ontology
    if o.name != n.name:
        raise ConfigError(
            f"{new.path}: ontology '{n.name}' is not a version of '{o.name}'",
            hint="diff and migrate two versions of the same ontology (same name:)",
        )
    if o.task != n.task:
        raise ConfigError(
            f"{new.path}: the task changed ({o.task.value} → {n.task.value}); "
            "a label migration cannot convert labels between task types",
            hint="label the data again with the new ontology",
        )
    spec = n.migrate
    old_labels = set(o.label_names)
    problems: list[str] = []
    if spec is not None:
        sources = [(f"migrate.rename.{a}", a) for a in spec.rename]
        sources += [(f"migrate.merge.{b}", a) for b, olds in spec.merge.items() for a in olds]
        sources += [(f"migrate.split.{a}", a) for a in spec.split]
        sources += [("migrate.remove", a) for a in spec.remove]
        for where, label in sources:
            if label not in old_labels:
                problems.append(
                    f"{new.path} {where}: '{label}' is not a label of the previous version "
                    f"({old.path}, labels: {', '.join(o.label_names)})"
                )
    if problems:
        raise OntologyError(
            f"{new.path}: the migrate section names {len(problems)} unknown label(s); "
            "nothing was changed",
            problems=problems,
            hint="migrate sources must be labels of OLD, targets labels of NEW",
        )
    d = diff_ontologies(o, n)
    mapping = dict(d.renamed)
    actions = {a: "rename" for a in d.renamed}
    for b, olds in d.merged.items():
        for a in olds:
            mapping[a] = b
            actions[a] = "merge"
    reopen = {a: "label_split" for a in d.split}
    reopen.update({a: "label_removed" for a in d.dropped})
    if removed == "review":
        reopen.update({a: "label_removed" for a in d.removed})
    return LabelPlan(n.task, n.label_names, mapping, actions, reopen)


@dataclass
class MigrationResult:
    migration_id: int
    counts: dict[str, int] = field(default_factory=dict)
    queued_items: list[int] = field(default_factory=list)
    unqueued_items: list[int] = field(default_factory=list)  # gold-only items with no run


def migrate_labels(
    db: Database,
    old: LoadedOntology,
    new: LoadedOntology,
    *,
    queue: str = "migration",
    removed: Removed = "refuse",
    actor: str = "autolabel",
) -> MigrationResult:
    """Apply NEW's migration to every run, task, decision and gold set of the ontology."""
    plan = plan_labels(old, new, removed=removed)
    d = diff_ontologies(old.ontology, new.ontology)
    with write_session(db) as s:
        if d.removed and removed == "refuse":
            impact = label_impact(s, old.ontology)
            used = {a: impact.total(a) for a in d.removed if impact.total(a)}
            if used:
                uses = ", ".join(f"{a}: {k} rows" for a, k in used.items())
                raise ConfigError(
                    f"{new.path}: label(s) {', '.join(used)} were removed but data uses them "
                    f"({uses}); nothing was changed",
                    hint="say where they go in a migrate: section (rename/merge/split/remove), "
                    "or pass --removed review to send their items to review",
                )
        old_row = store_version(s, old.ontology, text=old.text, source=str(old.path))
        new_row = store_version(s, new.ontology, text=new.text, source=str(new.path))
        done = s.exec(
            select(LabelMigration).where(
                col(LabelMigration.from_version_id) == old_row.id,
                col(LabelMigration.to_version_id) == new_row.id,
            )
        ).first()
        if done is not None:
            raise ConfigError(
                f"this migration ({old.path} → {new.path}) was applied already "
                f"(migration #{done.id}); nothing was changed",
                hint="see: autolabel ontology versions",
            )
        migration = LabelMigration(
            ontology_name=old.ontology.name,
            from_version_id=int(old_row.id),  # type: ignore[arg-type]
            to_version_id=int(new_row.id),  # type: ignore[arg-type]
            spec=new.ontology.migrate.model_dump() if new.ontology.migrate else {},
            actor=actor,
        )
        s.add(migration)
        s.flush()
        work = _Migration(s, plan, int(migration.id), new.ontology, queue, old_row, new_row)  # type: ignore[arg-type]
        work.run()
        migration.counts = dict(work.counts)
        s.add(migration)
        return MigrationResult(
            int(migration.id),  # type: ignore[arg-type]
            dict(work.counts),
            sorted(work.queued),
            sorted(work.unqueued),
        )


class _Migration:
    """The steps of one migration inside one session (one transaction)."""

    def __init__(
        self,
        s: Session,
        plan: LabelPlan,
        migration_id: int,
        new: Ontology,
        queue: str,
        old_version: OntologyVersion,
        new_version: OntologyVersion,
    ) -> None:
        self.s = s
        self.old_version = old_version
        self.new_version = new_version
        self.plan = plan
        self.migration_id = migration_id
        self.new = new
        self.new_hash = ontology_hash(new)
        self.queue = queue
        self.now = utcnow()
        self.counts: defaultdict[str, int] = defaultdict(int)
        # item id -> review reason, plus the newest run/prediction that has the item
        self.reopen: dict[int, str] = {}
        self.item_run: dict[int, tuple[int, int | None]] = {}
        self.queued: set[int] = set()
        self.unqueued: set[int] = set()
        self.live: defaultdict[int, list[Decision]] = defaultdict(list)  # task -> live actions
        self.claims: defaultdict[int, int] = defaultdict(int)  # task -> live claims

    def audit(
        self, kind: str, row_id: int, item_id: int | None, action: str, before: Any, after: Any
    ) -> None:
        self.s.add(
            LabelChange(
                migration_id=self.migration_id,
                kind=kind,
                row_id=row_id,
                item_id=item_id,
                action=action,
                before=before,
                after=after,
            )
        )

    def run(self) -> None:
        # Runs already under the new version (made under it, or migrated) are left alone.
        new_data = self.new.model_dump(mode="json")
        runs = [r for r in runs_of(self.s, self.new.name) if r.ontology != new_data]
        for run in runs:
            self._run(run)
        run_ids = [int(r.id) for r in runs]  # type: ignore[arg-type]
        tasks: list[ReviewTask] = []
        decisions: defaultdict[int, list[Decision]] = defaultdict(list)
        if run_ids:
            # FOR UPDATE (PostgreSQL): reviewers lock a task row before they write on it, so
            # none decides on these tasks until the migration commits. SQLite: BEGIN IMMEDIATE.
            tasks = list(
                self.s.exec(
                    select(ReviewTask).where(col(ReviewTask.run_id).in_(run_ids)).with_for_update()
                )
            )
            # One query for every live human action (a join: no IN list of task ids).
            for dec in self.s.exec(
                select(Decision)
                .join(ReviewTask, col(ReviewTask.id) == col(Decision.task_id))
                .where(
                    col(ReviewTask.run_id).in_(run_ids),
                    col(Decision.undone).is_(False),
                    col(Decision.action).in_(HUMAN_ACTIONS),
                )
                .order_by(col(Decision.id))
            ):
                self.live[dec.task_id].append(dec)
                if dec.action in ("decide", "adjudicate"):
                    decisions[dec.task_id].append(dec)
            for task_id in self.s.exec(
                select(ReviewClaim.task_id)
                .join(ReviewTask, col(ReviewTask.id) == col(ReviewClaim.task_id))
                .where(
                    col(ReviewTask.run_id).in_(run_ids),
                    col(ReviewClaim.lease_expires_at) > self.now,
                )
            ):
                self.claims[task_id] += 1
        for task in tasks:
            self._task(task, decisions.get(int(task.id), []))  # type: ignore[arg-type]
        self._gold()
        self._queue(tasks)

    # -- runs and predictions -----------------------------------------------------------

    def _run(self, run: Run) -> None:
        try:
            made_under = Ontology.model_validate(run.ontology)
        except ValidationError as exc:
            raise StoreError(
                f"run {run.id} holds an invalid ontology ({exc.error_count()} problem(s)); "
                "the migration was rolled back, nothing was changed",
                hint="delete or repair that run, then migrate again",
            ) from exc
        # The version the run was made under stays stored, whatever happens to the run now.
        store_version(self.s, made_under, data=run.ontology, digest=run.ontology_hash, source="run")
        for pred in self.s.exec(select(Prediction).where(col(Prediction.run_id) == run.id)):
            self.item_run[pred.item_id] = (int(run.id), pred.id)  # type: ignore[arg-type]
            mapped, action, reason = self.plan.map(pred.label)
            if reason:
                self.reopen.setdefault(pred.item_id, reason)
            elif action:
                self.audit("prediction", int(pred.id), pred.item_id, action, pred.label, mapped)  # type: ignore[arg-type]
                pred.label = mapped
                pred.distribution = self.plan.map_distribution(pred.distribution)
                self.s.add(pred)
                self.counts["predictions_mapped"] += 1
        if run.ontology != self.new.model_dump(mode="json"):
            self.audit(
                "run",
                int(run.id),  # type: ignore[arg-type]
                None,
                "migrate",
                {"ontology_hash": run.ontology_hash, "labels": made_under.label_names},
                {"ontology_hash": self.new_hash, "labels": self.new.label_names},
            )
            run.ontology = self.new.model_dump(mode="json")
            self.s.add(run)
            self.counts["runs_updated"] += 1

    # -- review tasks and decisions -------------------------------------------------------

    def _task(self, task: ReviewTask, decisions: list[Decision]) -> None:
        reason: str | None = None
        changed = touched = False
        before = {
            "suggestion": task.suggestion,
            "final_label": task.final_label,
            "gold_label": task.gold_label,
        }
        for attr in ("suggestion", "final_label", "gold_label"):
            mapped, action, why = self.plan.map(getattr(task, attr))
            reason = reason or why
            if action:
                setattr(task, attr, mapped)
                changed = True
        if isinstance(task.alternatives, dict):
            task.alternatives = {k: self.plan.map(v)[0] for k, v in task.alternatives.items()}
        for dec in decisions:
            mapped, action, why = self.plan.map(dec.label)
            if why:
                reason = reason or why
                self._supersede(dec, task, None, "migrate", MIGRATION_REVIEWER, why)
                self.counts["decisions_reopened"] += 1
                touched = True
            elif action:
                self._supersede(dec, task, mapped, dec.action, dec.reviewer, action)
                self.counts["decisions_carried"] += 1
                touched = True
        if reason:
            self.reopen[task.item_id] = reason
            self.item_run.setdefault(task.item_id, (int(task.run_id), task.prediction_id))  # type: ignore[arg-type]
        elif changed:
            after = {a: getattr(task, a) for a in before}
            self.audit("task", int(task.id), task.item_id, "migrate", before, after)  # type: ignore[arg-type]
            self.counts["tasks_updated"] += 1
        if changed or touched or task.alternatives is not None:
            self.s.add(task)
        if touched:  # status and final label follow from the live decisions
            self._derive(task)

    def _supersede(
        self, dec: Decision, task: ReviewTask, label: Any, action: str, reviewer: str, why: str
    ) -> None:
        """Append the decision's successor and mark the original undone (kept, audited)."""
        dec.undone = True
        self.s.add(dec)
        note = f"label migration #{self.migration_id}: {why}" + (
            f" of {dec.label!r} → {label!r}" if label is not None else "; decide again"
        )
        successor = Decision(
            task_id=int(task.id),  # type: ignore[arg-type]
            item_id=task.item_id,
            reviewer=reviewer,
            action=action,
            label=label,
            label_before=dec.label,
            note=note,
            reasons=[*dec.reasons, why],
            undoes_id=dec.id,
            created_at=self.now,
        )
        self.s.add(successor)
        live = self.live[int(task.id)]  # type: ignore[arg-type]
        live[live.index(dec)] = successor  # a migrate action is not a human one: dropped below
        if action not in HUMAN_ACTIONS:
            live.remove(successor)
        self.audit("decision", int(dec.id), dec.item_id, why, dec.label, label)  # type: ignore[arg-type]

    # -- gold -------------------------------------------------------------------------------

    def _gold(self) -> None:
        for gs in latest_gold_sets(self.s, self.new.name):
            link = self.s.get(GoldSetOntology, gs.id)
            if link is not None and link.ontology_version_id == self.new_version.id:
                continue  # imported under the new version already
            labels = list(self.s.exec(select(GoldLabel).where(col(GoldLabel.gold_set_id) == gs.id)))
            outcomes = [(g, *self.plan.map(g.label)) for g in labels]
            if not any(action or why for _, _, action, why in outcomes):
                continue
            successor = GoldSet(
                name=gs.name,
                version=gs.version + 1,
                dataset_id=gs.dataset_id,
                ontology_name=gs.ontology_name,
                source=f"label migration #{self.migration_id} of {gs.name}@{gs.version}",
            )
            self.s.add(successor)
            self.s.flush()
            # Old labels stay tied to the version they were made under, new ones to NEW.
            if link is None:
                link_gold_set(self.s, int(gs.id), self.old_version)  # type: ignore[arg-type]
            link_gold_set(self.s, int(successor.id), self.new_version)  # type: ignore[arg-type]
            self.counts["gold_sets_versioned"] += 1
            for g, mapped, action, why in outcomes:
                if why:
                    self.reopen.setdefault(g.item_id, why)
                    self.audit("gold", int(g.id), g.item_id, why, g.label, None)  # type: ignore[arg-type]
                    self.counts["gold_left_out"] += 1
                    continue
                self.s.add(GoldLabel(gold_set_id=successor.id, item_id=g.item_id, label=mapped))
                if action:
                    self.audit("gold", int(g.id), g.item_id, action, g.label, mapped)  # type: ignore[arg-type]
                    self.counts["gold_mapped"] += 1

    # -- the review queue for what cannot be mapped -----------------------------------------

    def _queue(self, tasks: list[ReviewTask]) -> None:
        by_item: dict[int, list[ReviewTask]] = defaultdict(list)
        for t in tasks:
            by_item[t.item_id].append(t)
        created: list[ReviewTask] = []
        for item_id in sorted(self.reopen):
            if by_item.get(item_id):
                continue
            where = self.item_run.get(item_id)
            if where is None:
                self.unqueued.add(item_id)  # gold-only item: no run to review it under
                continue
            task = ReviewTask(
                queue=self.queue,
                item_id=item_id,
                run_id=where[0],
                prediction_id=where[1],
                created_at=self.now,
                updated_at=self.now,
            )
            created.append(task)
            by_item[item_id].append(task)
        self.s.add_all(created)
        self.s.flush()  # one flush for all new tasks: their ids go into the audit
        self.counts["tasks_created"] = len(created)
        for item_id, reason in sorted(self.reopen.items()):
            reopened = False
            for task in by_item.get(item_id, []):
                if task.status == "decided" and not self.plan.map(task.final_label)[2]:
                    continue  # a human already settled it with a label of the new version
                reopened = True
                before = {"status": task.status, "suggestion": task.suggestion}
                task.reasons = [*[r for r in task.reasons if r != reason], reason]
                # The old label is no longer a valid answer; the reviewer picks a new one.
                if self.plan.map(task.suggestion)[2]:
                    task.suggestion = None
                    task.confidence = None
                self._derive(task)
                self.s.add(task)
                self.audit(
                    "task",
                    int(task.id),  # type: ignore[arg-type]
                    item_id,
                    reason,
                    before,
                    {"status": task.status, "reasons": task.reasons},
                )
            if reopened:
                self.queued.add(item_id)
        self.counts["items_queued"] = len(self.queued)
        self.counts["items_not_queued"] = len(self.unqueued)

    def _derive(self, task: ReviewTask) -> None:
        """Status and final label from the task's live decisions, kept in memory: the task
        rows are locked for the migration's transaction, so nobody else adds decisions."""
        state = derive_state(
            [LiveAction(d.reviewer, d.action, d.label) for d in self.live.get(int(task.id), [])],  # type: ignore[arg-type]
            required=task.required_decisions,
            reviewers_per_item=task.reviewers_per_item,
            live_claims=self.claims.get(int(task.id), 0),  # type: ignore[arg-type]
        )
        task.status = state.status
        task.final_label = state.final_label
        task.final_source = state.final_source
        task.updated_at = self.now
