"""End to end: a run built in the tables, gold imported from a file, `autolabel eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from autolabel.errors import EvaluationError
from autolabel.evaluation import calibration as cal
from autolabel.evaluation.evaluate import evaluate_run, history, split_of
from autolabel.evaluation.gold import import_gold
from autolabel.ontology.loader import load_ontology
from autolabel.settings import Prices, Settings
from autolabel.store.database import Database
from autolabel.store.tables import EvalRecord
from tests.conftest import REPO

from .builders import cli, dataset_with_items, make_run

SST2 = REPO / "ontologies" / "sst2.yaml"
N = 40


def _gold_labels() -> dict[str, str]:
    return {f"i{k:02d}": ("positive" if k % 2 else "negative") for k in range(N)}


def _setup(tmp_path: Path, db: Database) -> tuple[int, dict[str, tuple[str | None, float | None]]]:
    """40 items; the run is right on 30, wrong on 8, failed on 2; confidence tracks rightness."""
    gold = _gold_labels()
    dataset_with_items(db, "sst", {k: f"text {k}" for k in gold})
    f = tmp_path / "sst.csv"
    f.write_text(
        "id,text,label\n" + "".join(f"{k},text {k},{v}\n" for k, v in gold.items()),
        encoding="utf-8",
    )
    import_gold(db, load_ontology(SST2), f, id_column="id")
    flip = {"positive": "negative", "negative": "positive"}
    preds: dict[str, tuple[str | None, float | None]] = {}
    for k, (ext, label) in enumerate(gold.items()):
        if k < 2:
            preds[ext] = (None, None)
        elif k < 10:
            preds[ext] = (flip[label], 0.55 + 0.01 * k)
        else:
            preds[ext] = (label, 0.70 + 0.0075 * k)
    run_id = make_run(db, load_ontology(SST2), "sst", preds, name="baseline")
    return run_id, preds


def test_eval_scores_the_run_and_stores_a_record(tmp_path: Path, db_url: str) -> None:
    db = Database(db_url)
    run_id, preds = _setup(tmp_path, db)
    res = evaluate_run(db, run_id, gold_ref="sst", target_precision=0.95)
    assert (res.n, res.n_failed, res.n_unmatched) == (N, 2, 0)
    assert res.summary["accuracy"] == pytest.approx(30 / 40)
    assert res.metrics["per_label"][0]["label"] == "positive"
    assert res.cost["tokens_per_item"] == pytest.approx(105)
    assert res.cost["cost_per_item_usd"] is None  # no price known
    priced = evaluate_run(
        db,
        run_id,
        gold_ref="sst",
        store=False,
        settings=Settings(
            prices={"fake-model": Prices(input_per_million=1.0, output_per_million=2.0)}
        ),
    )
    # every item: 100 tokens in, 5 out → (100·1 + 5·2) / 1e6
    assert priced.summary["cost_per_item_usd"] == pytest.approx(110 / 1e6)
    assert res.cost["items_per_s"] == pytest.approx(40 / 2)
    # The threshold is chosen on the calibration half and reported on the other half.
    gold = _gold_labels()
    calib = [k for k in gold if split_of(k, 0.5) == "calibration"]
    held = [k for k in gold if split_of(k, 0.5) != "calibration"]
    assert calib and held
    scored = [k for k in calib if preds[k][1] is not None]
    expect = cal.recommend_threshold(
        [preds[k][1] for k in scored],
        [preds[k][0] == gold[k] for k in scored],
        0.95,
        n_total=len(calib),
    )
    assert expect is not None
    assert res.threshold["recommended"] == pytest.approx(expect.threshold)
    report = cal.evaluate_threshold(
        expect.threshold,
        [preds[k][1] for k in held],
        [preds[k][0] == gold[k] for k in held],
        target_precision=0.95,
    )
    assert res.threshold["held_out"]["coverage"] == pytest.approx(report.coverage)
    assert res.threshold["held_out"]["n_items"] == len(held)
    # Confidence separates right from wrong perfectly here.
    assert res.calibration["auroc"] == 1.0
    assert res.calibration["brier_kind"] == "multiclass"
    with db.session() as s:
        (record,) = s.exec(select(EvalRecord)).all()
        assert record.run_id == run_id
        assert record.metrics["summary"]["accuracy"] == pytest.approx(0.75)
    rows = history(db)
    assert rows[0]["accuracy"] == pytest.approx(0.75) and rows[0]["gold"] == "sst@1"


def test_gold_in_another_dataset_joins_on_external_id(tmp_path: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    ids = {"a": "good", "b": "bad"}
    dataset_with_items(db, "run-data", {k: f"t {k}" for k in ids})
    f = tmp_path / "other.csv"
    f.write_text(
        "id,text,label\na,t a,positive\nb,t b,negative\nc,t c,positive\n", encoding="utf-8"
    )
    import_gold(db, load_ontology(SST2), f, id_column="id")
    run = make_run(
        db, load_ontology(SST2), "run-data", {"a": ("positive", 0.9), "b": ("positive", 0.6)}
    )
    res = evaluate_run(db, run, gold_ref="other", store=False)
    assert (res.n, res.n_unmatched) == (2, 1)
    assert res.summary["accuracy"] == 0.5


def test_no_overlap_and_incompatible_labels_are_clear_errors(
    tmp_path: Path, sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    dataset_with_items(db, "d", {"a": "x"})
    run = make_run(db, load_ontology(SST2), "d", {"a": ("positive", 0.9)})
    f = tmp_path / "g.csv"
    f.write_text("id,text,label\nz,zz,positive\n", encoding="utf-8")
    import_gold(db, load_ontology(SST2), f, id_column="id")
    with pytest.raises(EvaluationError, match="share no items"):
        evaluate_run(db, run, gold_ref="g")
    tweet = load_ontology(REPO / "ontologies" / "tweet_sentiment.yaml")
    f2 = tmp_path / "d.csv"
    f2.write_text("id,text,label\na,x,neutral\n", encoding="utf-8")
    import_gold(db, tweet, f2, id_column="id")
    with pytest.raises(EvaluationError, match=r"labels \['neutral'\].*cannot predict"):
        evaluate_run(db, run, gold_ref="d")


def test_cli_eval_report_apply_and_history(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(sqlite_url)
    run_id, _ = _setup(tmp_path, db)
    ont_copy = tmp_path / "sst2.yaml"
    ont_copy.write_text(SST2.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "report"
    code = cli(
        [
            "eval",
            str(run_id),
            "--db",
            sqlite_url,
            "--gold",
            "sst",
            "--target-precision",
            "0.9",
            "--report",
            str(out),
            "--apply",
            "--ontology",
            str(ont_copy),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "75.0%" in printed and "failed items: 2" in printed
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["summary"]["accuracy"] == pytest.approx(0.75)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and (out / "reliability.png").stat().st_size > 1000
    assert "| accuracy |" in (out / "report.md").read_text(encoding="utf-8")
    t = data["threshold"]["recommended"]
    applied = load_ontology(ont_copy)
    assert applied.review.threshold == pytest.approx(round(t, 4))
    assert applied.review.audit_rate == 0.02  # the rest of review: is untouched
    assert cli(["eval", "baseline", "--db", sqlite_url]) == 0
    capsys.readouterr()
    assert cli(["history", "--db", sqlite_url, "--metric", "accuracy"]) == 0
    table = capsys.readouterr().out
    assert table.count("0.750") == 2


def test_cli_gold_import_error_exits_2(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "g.csv"
    f.write_text("id,text,label\na,x,maybe\n", encoding="utf-8")
    assert cli(["gold", "import", str(f), "--ontology", str(SST2), "--db", sqlite_url]) == 2
    assert "row 1, field 'label'" in capsys.readouterr().err


def test_threshold_chosen_on_another_run(tmp_path: Path, sqlite_url: str) -> None:
    """Calibration file labeled separately: the threshold comes from it, every item is held out."""
    db = Database(sqlite_url)
    ont = load_ontology(SST2)
    calib = {f"c{k}": "positive" for k in range(6)}
    test = {f"t{k}": "positive" for k in range(4)}
    for name, gold in (("calib", calib), ("test", test)):
        dataset_with_items(db, name, {k: f"text {k}" for k in gold})
        f = tmp_path / f"{name}.csv"
        f.write_text(
            "id,text,label\n" + "".join(f"{k},text {k},{v}\n" for k, v in gold.items()),
            encoding="utf-8",
        )
        import_gold(db, ont, f, id_column="id")
    # calibration: right at .9/.8/.7, wrong at .6/.5/.4 → 100% precision needs t = .7
    confs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    calib_run = make_run(
        db,
        ont,
        "calib",
        {k: ("positive" if c >= 0.7 else "negative", c) for k, c in zip(calib, confs, strict=True)},
    )
    test_run = make_run(
        db,
        ont,
        "test",
        {
            "t0": ("positive", 0.95),
            "t1": ("negative", 0.75),
            "t2": ("positive", 0.65),
            "t3": (None, None),
        },
    )
    res = evaluate_run(
        db,
        test_run,
        gold_ref="test",
        target_precision=1.0,
        calibration_run=calib_run,
        calibration_gold="calib",
        store=False,
    )
    th = res.threshold
    assert th["recommended"] == pytest.approx(0.7) and th["n_calibration"] == 6
    held = th["held_out"]
    assert (held["n_items"], held["n_accepted"]) == (4, 2)  # .95 and .75 pass; failed never
    assert held["accuracy"] == 0.5 and held["coverage"] == 0.5
    assert res.summary["coverage_at_target"] == 0.5


def test_calibration_split_by_gold_set_and_gold_list(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(sqlite_url)
    run_id, preds = _setup(tmp_path, db)
    # A second gold set naming 10 of the items: they form the calibration split.
    part = tmp_path / "calib.csv"
    chosen = list(_gold_labels().items())[10:20]
    part.write_text(
        "id,text,label\n" + "".join(f"{k},text {k},{v}\n" for k, v in chosen), encoding="utf-8"
    )
    import_gold(db, load_ontology(SST2), part, id_column="id", dataset="sst")
    res = evaluate_run(
        db, run_id, gold_ref="sst", calibration_split="calib", target_precision=0.9, store=False
    )
    th = res.threshold
    assert (th["n_calibration"], th["n_held_out"]) == (10, 30)
    assert th["split"] == "gold set calib@1"
    # items 10..19 are all right, so the lowest of their confidences is the threshold
    assert th["recommended"] == pytest.approx(min(preds[k][1] for k, _ in chosen))
    assert cli(["gold", "list", "--db", sqlite_url]) == 0
    listing = capsys.readouterr().out
    assert "calib" in listing and "sst" in listing and " 40 " in listing
