"""Experiments: prompt variants × models × datasets, each labeled (cached) and evaluated.

An experiment file (YAML, unknown keys are errors)::

    name: compare_prompts_models
    target_precision: 0.9
    limit: 50                    # items per dataset (optional)
    variants:                    # how to prompt
      - name: zero-shot
        few_shot: false          # drop the ontology's examples
      - name: few-shot
        ontology: {sst2: ontologies/sst2_fewshot.yaml}   # per dataset, or one path
        template: null           # prompt template name (prompts/<name>.j2)
        examples: {tweets: [{input: {text: "..."}, output: positive}]}  # in-memory few-shot
    models:
      - {name: qwen, provider: local, model: qwen2.5-coder-1.5b}
    datasets:
      - name: sst2
        data: eval/data/small/sst2_dev_40.csv
        ontology: ontologies/sst2.yaml
        gold_column: label
        id_column: id
        calibration: null        # optional file: threshold chosen on it
        holdout: null            # optional file: threshold reported on it

Without calibration/holdout files the threshold is chosen on a hash half of the
dataset and reported on the other half. Pairwise comparisons (McNemar, paired
bootstrap of macro-F1) run between every two configurations on the same dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autolabel.errors import ConfigError
from autolabel.evaluation import significance as sig
from autolabel.evaluation.evaluate import EvalResult, evaluate_run
from autolabel.evaluation.gold import import_gold
from autolabel.ontology.loader import load_ontology, resolve_ontology_path
from autolabel.ontology.schema import Ontology
from autolabel.store.database import Database


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    name: str
    ontology: str | dict[str, str] | None = None
    template: str | None = None
    few_shot: bool = True
    # dataset name -> few-shot examples ({input: {text: ...}, output: label}) added in memory,
    # so a variant can be tried on a dataset without writing another ontology file.
    examples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class ModelSpec(_Strict):
    name: str | None = None
    provider: str = "local"
    model: str
    base_url: str | None = None
    samples: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.model


class DatasetSpec(_Strict):
    name: str
    data: str
    ontology: str
    gold_column: str = "label"
    id_column: str | None = None
    calibration: str | None = None
    holdout: str | None = None
    limit: int | None = None


class Experiment(_Strict):
    name: str
    description: str = ""
    target_precision: float = Field(default=0.9, gt=0, le=1)
    limit: int | None = None
    seed: int = 0
    concurrency: int = 4
    variants: list[Variant] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    base_dir: Path = Path(".")

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() or p.exists() else self.base_dir / p


def load_experiment(path: Path) -> Experiment:
    """Parse and validate an experiment file; paths resolve from the cwd, else the repo root."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an experiment must be a mapping (name, variants, ...)")
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid experiment: {problems}") from exc
    # eval/x.yaml lives one level below the repository root.
    exp.base_dir = path.resolve().parent.parent
    return exp


def resolve_variant_ontology(
    exp: Experiment, variant: Variant, ds: DatasetSpec
) -> tuple[Ontology, str]:
    """The ontology a variant uses on a dataset (and its path, for the run record)."""
    source: str | None
    if isinstance(variant.ontology, dict):
        source = variant.ontology.get(ds.name)
    else:
        source = variant.ontology
    path = str(exp.path(source or ds.ontology))
    ontology = load_ontology(path)
    if not variant.few_shot and ontology.examples:
        ontology = ontology.model_copy(update={"examples": []})
    extra = variant.examples.get(ds.name)
    if extra:
        data = ontology.model_dump(mode="json")
        data["examples"] = [*data.get("examples", []), *extra]
        try:
            ontology = Ontology.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(
                f"variant '{variant.name}': bad examples for dataset '{ds.name}': {exc}"
            ) from exc
    return ontology, str(resolve_ontology_path(path))


@dataclass
class ExperimentResult:
    name: str
    rows: list[dict[str, Any]]
    results: dict[str, EvalResult]  # key: dataset|variant|model
    comparisons: list[dict[str, Any]]
    report_dir: Path | None = None
    errors: list[str] = field(default_factory=list)


def make_provider(spec: ModelSpec, settings: Any) -> Any:
    """A provider for one model entry (the factory when available, else direct)."""
    try:
        from autolabel.providers.factory import create_provider
    except ImportError:
        create_provider = None
    if create_provider is not None:
        return create_provider(
            settings, provider=spec.provider, model=spec.model, base_url=spec.base_url
        )
    if spec.provider == "local":
        from autolabel.providers.local import LocalProvider
        from autolabel.providers.models import resolve_model

        return LocalProvider(
            resolve_model(spec.model),
            model_name=spec.model,
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
        )
    from autolabel.providers.openai import OpenAIProvider

    return OpenAIProvider(
        spec.model,
        spec.base_url or settings.base_url,
        settings.resolved_api_key(),
        settings.timeout_s,
    )


def run_experiment(
    exp: Experiment,
    *,
    db: Database,
    settings: Any,
    report_dir: Path | None = None,
    limit: int | None = None,
    log: Callable[[str], Any] = print,
) -> ExperimentResult:
    """Label every configuration (cache on), evaluate, compare, and write the report."""
    from autolabel.engine.cache import ResponseCache

    cache = ResponseCache(settings.cache_dir)
    results: dict[str, EvalResult] = {}
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for model in exp.models:
        provider = make_provider(model, settings)
        try:
            for ds in exp.datasets:
                n_limit = limit or ds.limit or exp.limit
                for variant in exp.variants:
                    ontology, ont_path = resolve_variant_ontology(exp, variant, ds)
                    key = f"{ds.name}|{variant.name}|{model.label}"

                    ctx = _Ctx(
                        exp,
                        model,
                        variant,
                        ds,
                        ontology,
                        ont_path,
                        provider,
                        db,
                        cache,
                        settings,
                        n_limit,
                        key,
                        log,
                    )
                    label = ctx.label

                    # Choose the threshold on one file and report on another when given:
                    # holdout → report on it, choose on calibration (else on data);
                    # calibration only → choose on it, report on data; neither → hash split.
                    report_file = ds.holdout or ds.data
                    calib_file = ds.calibration or (ds.data if ds.holdout else None)
                    # Datasets are named by file stem, as `autolabel label` names them, so
                    # different files never share items or run keys.
                    report_ds = Path(report_file).stem
                    summary, elapsed = label(report_file, report_ds, "")
                    gold_ref = _ensure_gold(db, exp, report_file, report_ds, ds, ontology)
                    calib_run = calib_gold = None
                    if calib_file:
                        calib_ds = Path(calib_file).stem
                        calib_summary, _ = label(calib_file, calib_ds, ":calibration")
                        calib_run = calib_summary.run_id
                        calib_gold = _ensure_gold(db, exp, calib_file, calib_ds, ds, ontology)
                    result = evaluate_run(
                        db,
                        summary.run_id,
                        gold_ref=gold_ref,
                        target_precision=exp.target_precision,
                        calibration_split=0.5,
                        seed=exp.seed,
                        settings=settings,
                        experiment=exp.name,
                        calibration_run=calib_run,
                        calibration_gold=calib_gold,
                    )
                    results[key] = result
                    speed = first_labeling_speed(db, summary.run_id)
                    rows.append(
                        _row(ds.name, variant.name, model.label, result, summary, elapsed, speed)
                    )
        finally:
            close = getattr(provider, "aclose", None)
            if close is not None:
                import asyncio

                try:
                    asyncio.run(close())
                except Exception as exc:  # closing must not hide the experiment's results
                    errors.append(f"closing {model.label}: {exc}")
    comparisons = compare_all(results, seed=exp.seed)
    out = ExperimentResult(exp.name, rows, results, comparisons, errors=errors)
    from autolabel.evaluation.report import write_experiment_report

    out.report_dir = report_dir or exp.base_dir / "eval" / "reports" / exp.name
    write_experiment_report(out, exp, out.report_dir)
    return out


@dataclass
class _Ctx:
    """One configuration (dataset × variant × model) being labeled."""

    exp: Experiment
    model: ModelSpec
    variant: Variant
    ds: DatasetSpec
    ontology: Ontology
    ontology_path: str
    provider: Any
    db: Database
    cache: Any
    settings: Any
    limit: int | None
    key: str
    log: Callable[[str], Any]

    def label(self, file: str, dataset: str, tag: str) -> tuple[Any, float]:
        """Label ``file`` (cached) into ``dataset``; returns the run summary and seconds."""
        from autolabel.engine.pipeline import LabelJob, run_job

        self.log(f"[{self.exp.name}] {self.key}: labeling {file} (limit {self.limit})")
        started = time.perf_counter()
        summary = run_job(
            LabelJob(
                ontology=self.ontology,
                data=self.exp.path(file),
                provider=self.provider,
                db=self.db,
                cache=self.cache,
                ontology_path=self.ontology_path,
                template=self.variant.template,
                id_column=self.ds.id_column,
                dataset=dataset,
                limit=self.limit,
                concurrency=self.exp.concurrency,
                samples=self.model.samples or self.settings.samples,
                seed=self.exp.seed,
                run_name=f"{self.exp.name}:{self.key}{tag}",
                progress=False,
            )
        )
        return summary, time.perf_counter() - started


def _ensure_gold(
    db: Database, exp: Experiment, file: str, dataset: str, ds: DatasetSpec, ontology: Ontology
) -> str:
    """Import a file's gold column once per content (a changed file makes a new version)."""
    from sqlmodel import select

    from autolabel.hashing import short_hash
    from autolabel.store.tables import GoldSet

    path = exp.path(file)
    source = f"{path}#{short_hash(path.read_bytes())}"
    name = dataset  # like `autolabel gold import FILE`: the file stem
    with db.session() as session:
        found = session.exec(
            select(GoldSet).where(GoldSet.name == name, GoldSet.source == source)
        ).first()
    if found is not None:
        return f"{name}@{found.version}"
    gold, _ = import_gold(
        db,
        ontology,
        path,
        label_column=ds.gold_column,
        name=name,
        id_column=ds.id_column,
        dataset=dataset,
        source=source,
    )
    return f"{name}@{gold.version}"
    return name


def first_labeling_speed(db: Database, run_id: int) -> float | None:
    """Items/s of the first completed run of the same job: a cached re-run is no speed test."""
    from sqlmodel import col, select

    from autolabel.store.tables import Run

    with db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return None
        first = session.exec(
            select(Run)
            .where(Run.run_key == run.run_key, Run.status == "completed")
            .order_by(col(Run.id))
        ).first()
    if first is None or not first.finished_at or not first.n_items:
        return None
    seconds = (first.finished_at - first.started_at).total_seconds()
    return first.n_items / seconds if seconds > 0 else None


def _row(
    dataset: str,
    variant: str,
    model: str,
    r: EvalResult,
    summary: Any,
    elapsed: float,
    speed: float | None = None,
) -> dict[str, Any]:
    s = r.summary
    n_calls = getattr(summary, "n_model_calls", None)
    return {
        "dataset": dataset,
        "variant": variant,
        "model": model,
        "run_id": r.run["id"],
        "n": r.n,
        "n_failed": r.n_failed,
        "accuracy": s.get("accuracy"),
        "accuracy_low": r.intervals["accuracy"]["low"],
        "accuracy_high": r.intervals["accuracy"]["high"],
        "macro_f1": s.get("macro_f1"),
        "ece": s.get("ece"),
        "brier": s.get("brier"),
        "auroc": s.get("auroc"),
        "threshold": s.get("threshold"),
        "coverage_at_target": s.get("coverage_at_target"),
        "accuracy_at_target": s.get("accuracy_at_target"),
        "cost_per_item_usd": s.get("cost_per_item_usd"),
        "tokens_per_item": s.get("tokens_per_item"),
        "items_per_s": (r.n / elapsed) if elapsed > 0 and n_calls else speed,
        "cache_hits": getattr(summary, "n_cache_hits", None),
        "elapsed_s": elapsed,
    }


def compare_all(results: dict[str, EvalResult], *, seed: int = 0) -> list[dict[str, Any]]:
    """McNemar (accuracy) and paired bootstrap (macro-F1) for every pair on a dataset."""
    by_dataset: dict[str, list[str]] = {}
    for key in results:
        by_dataset.setdefault(key.split("|", 1)[0], []).append(key)
    out = []
    for dataset, keys in by_dataset.items():
        for a, b in combinations(keys, 2):
            out.append({"dataset": dataset, **compare(results[a], results[b], a, b, seed=seed)})
    return out


def compare(
    a: EvalResult, b: EvalResult, name_a: str, name_b: str, *, seed: int = 0
) -> dict[str, Any]:
    """Paired tests on the items both runs were scored on."""
    pa = {p.item_id: p for p in a.pairs}
    pb = {p.item_id: p for p in b.pairs}
    if not set(pa) & set(pb):  # different datasets rows: match on external id
        pa = {p.external_id: p for p in a.pairs}  # type: ignore[misc]
        pb = {p.external_id: p for p in b.pairs}  # type: ignore[misc]
    common = sorted(set(pa) & set(pb), key=str)
    from autolabel.evaluation.metrics import is_correct

    ca = [is_correct(a.task, pa[k].gold, pa[k].pred) for k in common]
    cb = [is_correct(b.task, pb[k].gold, pb[k].pred) for k in common]
    result: dict[str, Any] = {
        "a": name_a.split("|", 1)[1],
        "b": name_b.split("|", 1)[1],
        "n": len(common),
        "accuracy_a": sum(ca) / len(common) if common else None,
        "accuracy_b": sum(cb) / len(common) if common else None,
        "mcnemar": sig.mcnemar(ca, cb).to_dict(),
    }
    if a.task == "classify" and common:
        result["paired_bootstrap_f1"] = sig.paired_bootstrap_f1(
            [pa[k].gold for k in common],
            [pa[k].pred for k in common],
            [pb[k].pred for k in common],
            n_resamples=1000,
            seed=seed,
        ).to_dict()
    return result
