"""The review commands as a user runs them (subprocess), plus the headless-import rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database
from autolabel.store.tables import ReviewTask
from tests.review.factories import make_dataset, make_run, ontology

REPO = Path(__file__).resolve().parents[2]


def autolabel(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "AUTOLABEL_DB": db_url}
    return subprocess.run(
        [sys.executable, "-m", "autolabel.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_route_stats_audit_agreement(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    ids = make_dataset(db, ["good", "bad", "meh", "fine"])
    run = make_run(
        db,
        ids,
        ["positive", "negative", "neutral", "positive"],
        [0.95, 0.5, 0.6, 0.99],
        ont=ontology(consensus=2),
        name="first",
    )
    r = autolabel(
        "route", "first", "--threshold", "0.9", "--per-label", "positive=0.97", db_url=sqlite_url
    )
    assert r.returncode == 0, r.stderr
    assert "low_confidence" in r.stdout and "auto-accepted" in r.stdout
    with db.session() as s:
        routed = {t.item_id: t for t in s.exec(select(ReviewTask))}
    assert set(routed) == {ids[0], ids[1], ids[2]}  # 0.95 < positive's 0.97
    assert {t.required_decisions for t in routed.values()} == {2}

    q = ReviewQueue(db)
    for who, label in (("ann", "negative"), ("bob", "negative")):
        q.decide(routed[ids[1]].id, who, label, seconds=2.0)  # type: ignore[arg-type]
    q.decide(routed[ids[2]].id, "ann", "positive")  # type: ignore[arg-type]
    q.decide(routed[ids[2]].id, "bob", "neutral")  # type: ignore[arg-type]

    r = autolabel("queue", "stats", "--reviewer", "ann", db_url=sqlite_url)
    assert r.returncode == 0, r.stderr
    lines = {ln.split("│")[1].strip(): ln for ln in r.stdout.splitlines() if ln.count("│") >= 3}
    assert lines["decided"].split("│")[2].strip() == "1"
    assert lines["pending"].split("│")[2].strip() == "1"
    assert lines["adjudication"].split("│")[2].strip() == "1"  # ann and bob disagreed
    assert "agreement with model 50.0%" in r.stdout

    r = autolabel("audit", "ex1", db_url=sqlite_url)
    assert r.returncode == 0, r.stderr
    assert "low_confidence" in r.stdout and "ann" in r.stdout and "bob" in r.stdout
    assert "consensus" in r.stdout

    r = autolabel("agreement", "--queue", "default", db_url=sqlite_url)
    assert r.returncode == 0, r.stderr
    assert "Cohen's κ" in r.stdout and "4 decisions on 2 items" in r.stdout
    assert "Krippendorff" in r.stdout

    r = autolabel("audit", "nope", db_url=sqlite_url)
    assert r.returncode == 2 and "no item 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = autolabel("route", str(run), "--per-label", "oops", db_url=sqlite_url)
    assert r.returncode == 2 and "LABEL=THRESHOLD" in r.stderr


def test_headless_modules_never_import_textual() -> None:
    code = (
        "import sys\n"
        "import autolabel.engine, autolabel.review, autolabel.store, autolabel.evaluation\n"
        "import autolabel.review.routing, autolabel.review.queue, autolabel.review.agreement\n"
        "import autolabel.review.audit, autolabel.review.resolution, autolabel.cli.reviewing\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not bad, bad\n"
        "print('headless ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "headless ok"


def test_public_names_are_complete_and_sorted() -> None:
    import autolabel.review as review

    assert review.__all__ == sorted(review.__all__)
    assert all(hasattr(review, name) for name in review.__all__)
