"""Evaluate one run against a gold set: join on items, score, calibrate, store a record.

Joining: predictions and gold labels are matched on the item. When the gold set was
imported into another dataset than the run's, items are matched on external id, then
on content hash. Gold items the run never saw are left out (``n_unmatched``);
items the run saw but failed count as wrong.

Calibration split: the threshold for auto-accepting is chosen on one split and its
coverage/accuracy reported on the other. The split is either a fraction (a seeded,
hash-based assignment of items, stable across runs so two runs share it) or the name
of another gold set whose items form the calibration split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from autolabel.errors import EvaluationError
from autolabel.evaluation import calibration as cal
from autolabel.evaluation import metrics as m
from autolabel.evaluation import significance as sig
from autolabel.evaluation.gold import resolve_gold
from autolabel.hashing import stable_hash
from autolabel.store.database import Database
from autolabel.store.lookup import resolve_run
from autolabel.store.tables import EvalRecord, GoldLabel, GoldSet, Item, Prediction, Run

if TYPE_CHECKING:
    from autolabel.settings import Settings


@dataclass
class Pair:
    """One gold item with the run's prediction for it."""

    item_id: int
    external_id: str
    gold: Any
    pred: Any  # None when the item failed
    confidence: float | None
    distribution: Any
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    model_ms: float | None = None
    cache_hit: bool = False
    error: str | None = None
    method: str | None = None  # how the confidence was obtained (engine.confidence)


@dataclass
class EvalResult:
    run: dict[str, Any]
    gold: dict[str, Any]
    task: str
    n: int
    n_failed: int
    n_unmatched: int
    summary: dict[str, Any]  # flat numbers: the history table and the experiment table
    metrics: dict[str, Any]
    calibration: dict[str, Any] | None
    threshold: dict[str, Any] | None
    intervals: dict[str, Any]
    cost: dict[str, Any]
    pairs: list[Pair] = field(default_factory=list, repr=False)
    # ECE before/after the ontology's latest calibrator, on items it was not fitted on.
    recalibration: dict[str, Any] | None = None

    def to_dict(self, *, with_items: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_items:
            out.pop("pairs")
        return out

    @property
    def correct(self) -> list[bool]:
        return [m.is_correct(self.task, p.gold, p.pred) for p in self.pairs]


def load_pairs(session: Session, run: Run, gold: GoldSet) -> tuple[list[Pair], int]:
    """Join the run's predictions with the gold labels; returns (pairs, n_unmatched)."""
    golds = session.exec(
        select(GoldLabel, Item)
        .join(Item, col(Item.id) == GoldLabel.item_id)
        .where(GoldLabel.gold_set_id == gold.id)
        .order_by(col(GoldLabel.id))
    ).all()
    preds = session.exec(
        select(Prediction, Item)
        .join(Item, col(Item.id) == Prediction.item_id)
        .where(Prediction.run_id == run.id)
    ).all()
    by_id = {p.item_id: (p, i) for p, i in preds}
    by_ext = {i.external_id: (p, i) for p, i in preds}
    by_hash = {i.content_hash: (p, i) for p, i in preds}
    pairs: list[Pair] = []
    unmatched = 0
    for g, item in golds:
        hit = by_id.get(item.id)  # type: ignore[arg-type]
        if hit is None and gold.dataset_id != run.dataset_id:
            hit = by_ext.get(item.external_id) or by_hash.get(item.content_hash)
        if hit is None:
            unmatched += 1
            continue
        p, _ = hit
        failed = p.label is None or p.error is not None
        pairs.append(
            Pair(
                item_id=item.id,  # type: ignore[arg-type]
                external_id=item.external_id,
                gold=g.label,
                pred=None if failed else p.label,
                confidence=None if failed else p.confidence,
                distribution=None if failed else p.distribution,
                tokens_in=p.tokens_in,
                tokens_out=p.tokens_out,
                latency_ms=p.latency_ms,
                model_ms=p.model_ms,
                cache_hit=p.cache_hit,
                error=p.error,
                method=p.method,
            )
        )
    return pairs, unmatched


def split_of(external_id: str, fraction: float, seed: int = 0) -> str:
    """'calibration' or 'held-out', by a hash of the item: the same for every run."""
    bucket = int(stable_hash({"id": external_id, "seed": seed})[:8], 16) / 0xFFFFFFFF
    return "calibration" if bucket < fraction else "held-out"


def task_metrics(task: str, pairs: list[Pair], ontology: dict[str, Any]) -> Any:
    labels = [label["name"] for label in ontology.get("labels", [])]
    gold = [p.gold for p in pairs]
    pred = [p.pred for p in pairs]
    if task == "classify":
        return m.classify_metrics(gold, pred, labels)
    if task == "multi_label":
        return m.multilabel_metrics(gold, pred, labels)
    if task == "spans":
        return m.span_metrics(gold, pred, labels)
    if task == "boxes":
        from autolabel.evaluation.detection import detection_metrics  # pycocotools: extra

        return detection_metrics(gold, pred, labels)
    fields = [f["name"] for f in ontology.get("fields", [])]
    return m.field_metrics(gold, pred, fields)


def _headline(task: str, metrics: Any) -> dict[str, Any]:
    if task == "classify":
        return {
            "accuracy": metrics.accuracy,
            "macro_f1": metrics.macro.f1,
            "micro_f1": metrics.micro.f1,
            "weighted_f1": metrics.weighted.f1,
        }
    if task == "multi_label":
        return {
            "accuracy": metrics.subset_accuracy,
            "hamming_loss": metrics.hamming_loss,
            "macro_f1": metrics.macro.f1,
            "micro_f1": metrics.micro.f1,
        }
    if task == "spans":
        return {
            "accuracy": metrics.item_accuracy,
            "micro_f1": metrics.exact.f1,
            "macro_f1": metrics.exact_macro.f1,
            "partial_f1": metrics.partial.f1,
        }
    if task == "boxes":
        return {"accuracy": metrics.item_accuracy, "map50": metrics.map50, "map": metrics.map}
    return {"accuracy": metrics.accuracy}


def _calibration_split(
    session: Session, pairs: list[Pair], split: str | float, seed: int
) -> tuple[list[int], list[int], str]:
    """Indices of (calibration, held-out) pairs and a description of the split."""
    if isinstance(split, str) and not _is_number(split):
        other = resolve_gold(session, split)
        ids = set(
            session.exec(
                select(Item.external_id)
                .join(GoldLabel, col(GoldLabel.item_id) == Item.id)
                .where(GoldLabel.gold_set_id == other.id)
            ).all()
        )
        calib = [i for i, p in enumerate(pairs) if p.external_id in ids]
        held = [i for i, p in enumerate(pairs) if p.external_id not in ids]
        return calib, held, f"gold set {other.name}@{other.version}"
    fraction = float(split)
    if not 0.0 < fraction < 1.0:
        raise EvaluationError(f"calibration split must be in (0, 1), got {fraction}")
    sides = [split_of(p.external_id, fraction, seed) for p in pairs]
    calib = [i for i, side in enumerate(sides) if side == "calibration"]
    held = [i for i, side in enumerate(sides) if side != "calibration"]
    return calib, held, f"{fraction:.0%} of items (hash split, seed {seed})"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calibration_and_threshold(
    pairs: list[Pair],
    correct: list[bool],
    *,
    task: str,
    labels: list[str],
    target_precision: float,
    calib_idx: list[int],
    held_idx: list[int],
    split_desc: str = "",
    chosen: tuple[cal.ThresholdChoice | None, int] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Calibration summary over all items, threshold chosen on calib and reported on held-out.

    ``chosen`` is a threshold already chosen elsewhere (another run's calibration items)
    and how many items it was chosen on; then every item here is held-out.
    """
    scored = [i for i, p in enumerate(pairs) if p.confidence is not None]
    if not scored:
        return None, None
    conf = [min(1.0, max(0.0, float(pairs[i].confidence))) for i in scored]  # type: ignore[arg-type]
    ok = [correct[i] for i in scored]
    dists = [pairs[i].distribution for i in scored]
    multiclass = task == "classify" and all(isinstance(d, dict) and d for d in dists)
    summary = cal.summarize(
        conf,
        ok,
        n_total=len(pairs),
        distributions=dists if multiclass else None,
        gold=[pairs[i].gold for i in scored] if multiclass else None,
        labels=labels if multiclass else None,
    )

    def _conf(idx: list[int]) -> list[float | None]:
        return [pairs[i].confidence for i in idx]

    threshold: dict[str, Any] = {"target_precision": target_precision, "split": split_desc}
    if chosen is not None:
        choice, n_calib = chosen
        held_idx = list(range(len(pairs)))
    else:
        calib_scored = [
            (c, correct[i])
            for c, i in zip(_conf(calib_idx), calib_idx, strict=True)
            if c is not None
        ]
        choice = cal.recommend_threshold(
            [c for c, _ in calib_scored],
            [ok_ for _, ok_ in calib_scored],
            target_precision,
            n_total=len(calib_idx),
        )
        n_calib = len(calib_idx)
    threshold["n_calibration"] = n_calib
    threshold["n_held_out"] = len(held_idx)
    if choice is None:
        threshold["recommended"] = None
        threshold["sentence"] = (
            f"no confidence threshold reaches {target_precision:.0%} precision on the "
            f"calibration split ({n_calib} items): send everything to review"
        )
        return summary.to_dict(), threshold
    threshold["recommended"] = choice.threshold
    threshold["calibration"] = asdict(choice)
    if held_idx:
        report = cal.evaluate_threshold(
            choice.threshold,
            _conf(held_idx),
            [correct[i] for i in held_idx],
            target_precision=target_precision,
        )
        threshold["held_out"] = report.to_dict()
        threshold["sentence"] = report.sentence()
    else:
        threshold["sentence"] = (
            f"threshold {choice.threshold:.3f} (chosen on all {len(calib_idx)} items; "
            "no held-out split to report on)"
        )
    return summary.to_dict(), threshold


def cost_summary(pairs: list[Pair], run: Run, settings: Settings | None) -> dict[str, Any]:
    n = len(pairs) or 1
    tokens_in = sum(p.tokens_in for p in pairs)
    tokens_out = sum(p.tokens_out for p in pairs)
    wall = [p.latency_ms for p in pairs if not p.cache_hit]
    model = [p.model_ms for p in pairs if not p.cache_hit and p.model_ms is not None]
    model_ms = sum(model) / len(model) if model else None
    wall_ms = sum(wall) / len(wall) if wall else None
    prices = (settings.prices if settings else {}).get(run.model)
    cost = None
    if prices is not None:
        cost = (tokens_in * prices.input_per_million + tokens_out * prices.output_per_million) / 1e6
    elif run.cost_usd and run.n_items:
        # Priced when labeling (--price flags) but not in settings: scale the run's total.
        cost = run.cost_usd * len(pairs) / run.n_items
    elapsed = None
    if run.finished_at and run.started_at:
        elapsed = (run.finished_at - run.started_at).total_seconds()
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_per_item": (tokens_in + tokens_out) / n,
        # The model's own time per item; runs stored before model_ms existed fall
        # back to the wall time (which includes queueing).
        "latency_ms_per_item": model_ms if model_ms is not None else wall_ms,
        "model_ms_per_item": model_ms,
        "wall_ms_per_item": wall_ms,
        "cache_hits": sum(p.cache_hit for p in pairs),
        "cost_usd": cost,
        "cost_per_item_usd": cost / n if cost is not None else None,
        "elapsed_s": elapsed,
        "items_per_s": run.n_items / elapsed if elapsed and run.n_items else None,
        "priced": cost is not None,
    }


def evaluate_run(
    db: Database,
    run_ref: str | int,
    *,
    gold_ref: str | None = None,
    target_precision: float = 0.95,
    calibration_split: str | float = 0.5,
    seed: int = 0,
    settings: Settings | None = None,
    experiment: str | None = None,
    store: bool = True,
    calibration_run: str | int | None = None,
    calibration_gold: str | None = None,
) -> EvalResult:
    """Score a run against a gold set and (by default) store an EvalRecord.

    With ``calibration_run`` the threshold is chosen on that run's items (scored against
    ``calibration_gold``) and every item of this run is the held-out split.
    """
    chosen = None
    if calibration_run is not None:
        calib = evaluate_run(
            db,
            calibration_run,
            gold_ref=calibration_gold,
            target_precision=target_precision,
            calibration_split=calibration_split,
            seed=seed,
            store=False,
        )
        ok = calib.correct
        scored = [
            (p.confidence, c)
            for p, c in zip(calib.pairs, ok, strict=True)
            if p.confidence is not None
        ]
        choice = cal.recommend_threshold(
            [min(1.0, max(0.0, float(c))) for c, _ in scored],
            [c for _, c in scored],
            target_precision,
            n_total=len(calib.pairs),
        )
        chosen = (choice, len(calib.pairs))
        calibration_split = f"run {calib.run['id']} vs {calib.gold['name']}"
    with db.session() as session:
        run = resolve_run(session, run_ref)
        gold = resolve_gold(session, gold_ref, run=run)
        pairs, unmatched = load_pairs(session, run, gold)
        _check_compatible(run, gold, pairs)
        if not pairs:
            raise EvaluationError(
                f"run {run.id} and gold set {gold.name}@{gold.version} share no items",
                hint="label the same file the gold set was imported from, or import gold for "
                "the run's input file",
            )
        if chosen is not None:
            calib_idx, held_idx, split_desc = [], [], str(calibration_split)
        else:
            calib_idx, held_idx, split_desc = _calibration_split(
                session, pairs, calibration_split, seed
            )
    task = run.task
    ontology = run.ontology or {}
    labels = [label["name"] for label in ontology.get("labels", [])]
    metrics = task_metrics(task, pairs, ontology)
    correct = [m.is_correct(task, p.gold, p.pred) for p in pairs]
    calibration, threshold = calibration_and_threshold(
        pairs,
        correct,
        task=task,
        labels=labels,
        target_precision=target_precision,
        calib_idx=calib_idx,
        held_idx=held_idx,
        split_desc=split_desc,
        chosen=chosen,
    )
    intervals: dict[str, Any] = {"accuracy": asdict(sig.bootstrap_accuracy(correct, seed=seed))}
    if task == "classify":
        intervals["macro_f1"] = asdict(
            sig.bootstrap_macro_f1([p.gold for p in pairs], [p.pred for p in pairs], seed=seed)
        )
    cost = cost_summary(pairs, run, settings)
    recalibration = _recalibration(db, run, pairs, correct)
    summary = {
        **_headline(task, metrics),
        "n": len(pairs),
        "n_failed": metrics.n_failed,
        "ece": calibration["ece"] if calibration else None,
        "brier": calibration["brier"] if calibration else None,
        "auroc": calibration["auroc"] if calibration else None,
        "threshold": threshold.get("recommended") if threshold else None,
        "coverage_at_target": _held_out(threshold, "coverage"),
        "accuracy_at_target": _held_out(threshold, "accuracy"),
        "cost_per_item_usd": cost["cost_per_item_usd"],
        "tokens_per_item": cost["tokens_per_item"],
        "latency_ms_per_item": cost["latency_ms_per_item"],
        "items_per_s": cost["items_per_s"],
    }
    result = EvalResult(
        run=_run_info(run),
        gold={"id": gold.id, "name": gold.name, "version": gold.version},
        task=task,
        n=len(pairs),
        n_failed=metrics.n_failed,
        n_unmatched=unmatched,
        summary=summary,
        metrics=metrics.to_dict(),
        calibration=calibration,
        threshold=threshold,
        intervals=intervals,
        cost=cost,
        pairs=pairs,
        recalibration=recalibration,
    )
    if store:
        with db.session() as session:
            session.add(
                EvalRecord(
                    run_id=run.id,  # type: ignore[arg-type]
                    gold_set_id=gold.id,
                    experiment=experiment,
                    metrics=_jsonable(result.to_dict()),
                )
            )
            session.commit()
    return result


def _recalibration(
    db: Database, run: Run, pairs: list[Pair], correct: list[bool]
) -> dict[str, Any] | None:
    from autolabel.learning.calibrators import held_out_ece, latest

    record = latest(db, run.ontology_name)
    if record is None:
        return None
    return held_out_ece(
        record,
        [p.item_id for p in pairs],
        [p.confidence for p in pairs],
        [p.distribution for p in pairs],
        correct,
    )


def _check_compatible(run: Run, gold: GoldSet, pairs: list[Pair]) -> None:
    """Gold of another ontology may be fine (sst2 vs sst2_fewshot) if its labels fit."""
    if run.task not in ("classify", "multi_label", "spans", "boxes"):
        return
    labels = {label["name"] for label in (run.ontology or {}).get("labels", [])}
    seen: set[str] = set()
    for p in pairs:
        if run.task == "classify":
            seen.add(p.gold)
        elif run.task == "multi_label":
            seen.update(p.gold)
        elif run.task == "boxes":
            seen.update(o["label"] for o in p.gold["objects"])
        else:
            seen.update(s["label"] for s in p.gold)
    unknown = sorted(seen - labels) if labels else []
    if unknown:
        raise EvaluationError(
            f"gold set {gold.name}@{gold.version} (ontology '{gold.ontology_name}') has labels "
            f"{unknown[:5]} that run {run.id} (ontology '{run.ontology_name}') cannot predict",
            hint="evaluate against gold imported with the run's ontology",
        )


def _held_out(threshold: dict[str, Any] | None, key: str) -> float | None:
    """Coverage or accuracy at the threshold, on the held-out split when there is one.

    Accuracy of an empty accepted set is undefined: None, not 0.
    """
    if not threshold:
        return None
    if threshold.get("recommended") is None:
        return 0.0 if key == "coverage" else None  # no threshold: nothing is auto-accepted
    held = threshold.get("held_out")
    if held is not None:
        if key == "accuracy" and not held.get("n_accepted"):
            return None
        return held.get(key)
    chosen = threshold.get("calibration")
    if not chosen:
        return None
    return chosen.get("coverage") if key == "coverage" else chosen.get("precision")


def _run_info(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "ontology": run.ontology_name,
        "ontology_version": run.ontology_version,
        "ontology_path": run.ontology_path,
        "template": run.template,
        "provider": run.provider,
        "model": run.model,
        "prompt_hash": run.prompt_hash[:12],
        "status": run.status,
        "n_items": run.n_items,
        # The listed multi-label rule the answers were decided with (``eval --apply``).
        "multi_label": (run.ontology or {}).get("multi_label"),
    }


def _jsonable(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON in PostgreSQL) with None."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def history(
    db: Database, *, run: str | None = None, experiment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Stored evaluations, oldest first: one flat row per EvalRecord."""
    with db.session() as session:
        query = select(EvalRecord, Run).join(Run, col(Run.id) == EvalRecord.run_id)
        if experiment:
            query = query.where(EvalRecord.experiment == experiment)
        if run:
            query = query.where(EvalRecord.run_id == resolve_run(session, run).id)
        rows = session.exec(query.order_by(col(EvalRecord.id).desc()).limit(limit)).all()
    out = []
    for record, r in reversed(rows):
        summary = (record.metrics or {}).get("summary", {})
        gold = (record.metrics or {}).get("gold", {})
        out.append(
            {
                "eval_id": record.id,
                "when": record.created_at,
                "run_id": r.id,
                "run": r.name or f"run {r.id}",
                "model": r.model,
                "ontology": r.ontology_name,
                "template": r.template,
                "gold": f"{gold.get('name')}@{gold.get('version')}" if gold else "",
                "experiment": record.experiment,
                **summary,
            }
        )
    return out
