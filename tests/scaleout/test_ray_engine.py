"""The Ray engine against the loopback OpenAI-protocol server, on a local Ray runtime.

Same labels, confidences and prompt hashes as the local engine; one run per job; a
killed worker or driver ends, after resume, with exactly one prediction per item.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from autolabel.engine.export import export_run
from autolabel.engine.pipeline import LabelJob, run_job
from autolabel.errors import InputError, JobBusyError
from autolabel.ontology import load_ontology
from autolabel.providers.openai import OpenAIProvider
from autolabel.review.routing import route
from autolabel.scaleout.driver import run_job_on_ray
from autolabel.store import Database
from autolabel.store.leases import holder_of
from autolabel.store.tables import Item, Prediction, Run
from autolabel.testing import FakeOpenAIServer, default_responder
from tests.scaleout.conftest import SKIP_REASON

pytest.importorskip("ray.data", reason=SKIP_REASON)
pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
SST2 = load_ontology(REPO / "ontologies" / "sst2.yaml")


def _data(tmp_path: Path, n: int) -> Path:
    p = tmp_path / "reviews.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(1, n + 1):
            w.writerow([f"r{i}", f"review {i}: {'positive' if i % 3 else 'negative'} film"])
    return p


def _job(srv: FakeOpenAIServer, db: Database, data: Path, **kw: Any) -> LabelJob:
    provider = OpenAIProvider(model="fake-model", base_url=srv.base_url, api_key="unused")
    kw.setdefault("cache", None)
    kw.setdefault("ontology", SST2)
    return LabelJob(data=data, provider=provider, db=db, progress=False, **kw)


def _by_external_id(db: Database, run_id: int) -> dict[str, Prediction]:
    with db.session() as s:
        rows = s.execute(
            select(Item.external_id, Prediction)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.run_id == run_id)
        ).all()
    return {ext: p for ext, p in rows}


def _count(db: Database, run_id: int) -> tuple[int, int]:
    with db.session() as s:
        total = s.execute(select(func.count()).where(Prediction.run_id == run_id)).scalar_one()
        distinct = s.execute(
            select(func.count(func.distinct(Prediction.item_id))).where(Prediction.run_id == run_id)
        ).scalar_one()
    return total, distinct


def test_same_labels_confidences_and_prompt_hashes_as_local_then_export_and_route(
    ray_address: str, tmp_path: Path, db_url: str
) -> None:
    db = Database(db_url)
    data = _data(tmp_path, 40)
    with FakeOpenAIServer() as srv:
        local = run_job(_job(srv, db, data))
        on_ray = run_job_on_ray(_job(srv, db, data), actors=2)
    # Same job: the finished local run is not resumed, a new run of the same key is made.
    assert on_ray.run_id != local.run_id and not on_ray.resumed
    assert on_ray.n_items == on_ray.n_labeled == 40 and on_ray.n_model_calls == 40
    a, b = _by_external_id(db, local.run_id), _by_external_id(db, on_ray.run_id)
    assert sorted(a) == sorted(b) and len(b) == 40
    for ext, p in a.items():
        q = b[ext]
        assert (q.label, q.confidence, q.method, q.prompt_hash) == (
            p.label,
            p.confidence,
            p.method,
            p.prompt_hash,
        ), ext
    assert {p.label for p in b.values()} == {"positive", "negative"}
    with db.session() as s:
        r1, r2 = s.get(Run, local.run_id), s.get(Run, on_ray.run_id)
    assert r2.status == "completed" and r2.run_key == r1.run_key
    assert (r2.n_labeled, r2.prompt_hash, r2.model) == (40, r1.prompt_hash, r1.model)

    out = tmp_path / "labels.jsonl"
    assert export_run(db, on_ray.run_id, out) == 40
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["id"]: r["label"] for r in exported} == {k: p.label for k, p in b.items()}
    report = route(db, [on_ray.run_id], overrides={"threshold": 0.99, "audit_rate": 0.0})
    assert report.n_items == 40 and report.auto_accepted + report.queued == 40


def test_second_invocation_of_a_running_job_is_refused(ray_address: str, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    data = _data(tmp_path, 24)
    with FakeOpenAIServer(latency_s=0.25) as srv:
        first: list[Any] = []
        t = threading.Thread(
            target=lambda: first.append(
                run_job_on_ray(_job(srv, db, data, concurrency=2), actors=1)
            )
        )
        t.start()
        try:
            deadline = time.monotonic() + 120
            while not _lease_has_run(db) and time.monotonic() < deadline:
                time.sleep(0.05)
            with pytest.raises(JobBusyError, match="already running"):
                run_job_on_ray(_job(srv, db, data, concurrency=2), actors=1)
        finally:
            t.join(timeout=180)
    assert first and first[0].n_labeled == 24
    assert _count(db, first[0].run_id) == (24, 24)


def _lease_has_run(db: Database) -> bool:
    with db.session() as s:
        keys = s.execute(select(Run.run_key)).scalars().all()
    return any((h := holder_of(db, k)) is not None and h.run_id for k in keys)


def _pids_of(marker: str) -> list[int]:
    """Processes whose command line (Ray sets it to the actor's name) holds ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to find actors")
def test_worker_killed_mid_run_ends_with_one_prediction_per_item(
    ray_address: str, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    data = _data(tmp_path, 96)
    killed: list[int] = []
    seen = 0

    def responder(request: dict[str, Any]):
        nonlocal seen
        seen += 1
        if seen == 40 and not killed:  # mid-run: the first batch is in, the second is not
            for pid in _pids_of("LabelBatch"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return default_responder(request)

    with FakeOpenAIServer(responder=responder) as srv:
        job = _job(srv, db, data, concurrency=4, commit_every=32)
        try:
            summary = run_job_on_ray(job, actors=1)  # Ray restarts the actor, retries the batch
        except Exception:  # noqa: BLE001 - or the run stops; the next invocation resumes
            summary = run_job_on_ray(_job(srv, db, data, concurrency=4, commit_every=32))
    assert killed, "no labeling actor was found to kill"
    assert _count(db, summary.run_id) == (96, 96)
    assert summary.n_labeled == 96 and summary.n_failed == 0


def test_driver_killed_mid_run_resumes_with_one_prediction_per_item(
    ray_address: str, tmp_path: Path, db_url: str
) -> None:
    db = Database(db_url)
    data = _data(tmp_path, 96)
    with FakeOpenAIServer(latency_s=0.1) as srv:
        args = ["label", "sst2", str(data), "--base-url", srv.base_url, "--model", "fake-model"]
        args += ["--concurrency", "2", "--no-cache", "--db", db_url, "-q"]
        args += ["--engine", "ray", "--actors", "1"]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "AUTOLABEL_LEASE_TTL": "60"}
        driver = subprocess.Popen(
            [sys.executable, "-m", "autolabel.cli.main", *args, "--address", ray_address],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and driver.poll() is None:
                if _labeled(db) > 0:
                    break
                time.sleep(0.1)
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            driver.send_signal(signal.SIGKILL)  # no cleanup: lease, run status stay as they are
            driver.wait(timeout=30)
        finally:
            if driver.poll() is None:
                driver.kill()
            driver.stderr.close()  # type: ignore[union-attr]
        with db.session() as s:
            run = s.execute(select(Run)).scalars().one()
        assert run.status == "running" and 0 < _count(db, run.id)[0] < 96

        from autolabel.cli.main import main

        with pytest.raises(SystemExit) as done:
            main(args)  # the same command again, in this process (Ray is already up)
        assert done.value.code == 0
    with db.session() as s:
        resumed = s.execute(select(Run)).scalars().one()  # resumed, not a new run
    assert resumed.id == run.id and resumed.status == "completed"
    assert _count(db, run.id) == (96, 96) and resumed.n_labeled == 96


def _labeled(db: Database) -> int:
    with db.session() as s:
        return s.execute(select(func.count()).select_from(Prediction)).scalar_one()


def test_bad_rows_are_reported_like_the_local_engine_or_fail_the_run(
    ray_address: str, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    data = _data(tmp_path, 12)
    lines = data.read_text().splitlines()
    lines[4] = "r4,"  # data row 4: empty text
    data.write_text("\n".join(lines) + "\n")
    with FakeOpenAIServer() as srv:
        summary = run_job_on_ray(_job(srv, db, data), actors=1)
        assert (summary.n_labeled, summary.n_bad_rows) == (11, 1)
        assert [(b.row, b.field) for b in summary.bad_rows] == [(4, "text")]
        with pytest.raises(InputError, match=r"reviews.csv: row 4, field 'text': empty text"):
            run_job_on_ray(_job(srv, db, data, on_bad_row="fail", new_run=True), actors=1)


def test_unknown_engine_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from autolabel.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["label", "sst2", str(_data(tmp_path, 2)), "--engine", "spark"])
    assert done.value.code == 2
    assert "--engine must be 'local' or 'ray'" in capsys.readouterr().err


def test_demonstrations_from_reviews_as_in_the_local_engine(
    ray_address: str, tmp_path: Path, db_url: str
) -> None:
    from autolabel.ontology.schema import Ontology
    from autolabel.review.queue import ReviewQueue
    from autolabel.store.tables import PredictionDemos

    ont = Ontology.model_validate(
        {
            "name": "sst2_loop",
            "task": "classify",
            "labels": [{"name": "positive"}, {"name": "negative"}],
            "examples": {"from": "reviews", "k": 2},
        }
    )
    db = Database(db_url)
    data = _data(tmp_path, 12)
    with FakeOpenAIServer() as srv:
        first = run_job(_job(srv, db, data, ontology=ont))
        route(db, [first.run_id], queue="loop", overrides={"threshold": 1.0, "audit_rate": 1.0})
        q = ReviewQueue(db, "loop")
        decided = []
        for _ in range(3):
            view = q.claim("ann")
            assert view is not None
            q.decide(view.task_id, "ann", "negative")
            decided.append(view.item_id)
        local = run_job(_job(srv, db, data, ontology=ont, new_run=True))
        on_ray = run_job_on_ray(_job(srv, db, data, ontology=ont, new_run=True), actors=2)

    def demos(run_id: int) -> dict[int, list[str]]:
        with db.session() as s:
            rows = s.execute(select(PredictionDemos).where(PredictionDemos.run_id == run_id))
            return {d.item_id: d.refs for (d,) in rows.all()}

    a, b = demos(local.run_id), demos(on_ray.run_id)
    assert len(b) == 12 and a == b  # the same demonstrations as the local engine
    for item_id, refs in b.items():
        assert f"item:{item_id}" not in refs and set(refs) <= {f"item:{i}" for i in decided}
    pa_, pb = _by_external_id(db, local.run_id), _by_external_id(db, on_ray.run_id)
    assert {k: p.prompt_hash for k, p in pa_.items()} == {k: p.prompt_hash for k, p in pb.items()}
