"""Images/s of `autolabel label` on the embedded image classifier vs the classifier alone.

On the shipped photos (eval/data/images, 50 files), interleaved rounds so both see the same
machine load:

  model      EmbeddedImageClassifier.label_probs(all images, labels) in batches of 16: what the
             model costs on its own (decode, resize, run, label mapping)
  pipeline   the engine end to end (run_job): read and check every image (decode + SHA-256),
             store items, compile prompts, batch requests to the model, score confidence,
             write predictions to SQLite; no response cache, a new run each round

Prints images/s and CPU ms per image (process CPU time) for each, the ratio, the load average
and the core count (the machine may be shared: compare the ratio, not the absolute numbers).
A run has a fixed cost (database, lease, prompt templates: ~0.5 s); ``--copies N`` labels N
copies of each photo (a distinct trailing byte each, so N x 50 distinct items) to see the
per-image cost apart from it.

    .venv/bin/python bench/images_pipeline.py [--threads 2] [--rounds 3] [--copies 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from autolabel.engine.pipeline import LabelJob, run_job  # noqa: E402
from autolabel.ontology.loader import load_ontology  # noqa: E402
from autolabel.providers.image_local import LocalImageProvider  # noqa: E402
from autolabel.store import Database  # noqa: E402

PHOTOS = REPO / "eval" / "data" / "images"
ONTOLOGY = load_ontology(REPO / "ontologies" / "photos.yaml")


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="images-bench-"))
    folder = tmp / "photos"
    images = []
    for copy in range(args.copies):
        for f in sorted(PHOTOS.glob("*/*.jpg")):
            # Bytes after the JPEG end marker are ignored by decoders but change the hash.
            data = f.read_bytes() + bytes([copy])
            target = folder / f.parent.name / f"{copy}_{f.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            images.append(data)
    labels = [(name, "") for name in ONTOLOGY.label_names]
    provider = LocalImageProvider(threads=args.threads)
    clf = provider.classifier
    clf.label_probs(images[:2], labels)  # warm: session, label mapping
    db = Database(f"sqlite:///{tmp / 'bench.db'}")
    results: dict[str, list[tuple[float, float]]] = {"model": [], "pipeline": []}
    for i in range(args.rounds):
        results["model"].append(_timed(lambda: clf.label_probs(images, labels)))
        job = LabelJob(
            ontology=ONTOLOGY,
            data=folder,
            provider=provider,
            db=db,
            cache=None,
            progress=False,
            new_run=True,
            run_name=f"bench{i}",
        )
        results["pipeline"].append(_timed(lambda job=job: run_job(job)))
    n = len(images)
    rate = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        rate[name] = n / wall
        print(
            f"{name:9s} {n / wall:6.1f} images/s  {wall / n * 1000:6.1f} ms/image wall  "
            f"{cpu / n * 1000:6.1f} ms/image CPU  (median of {len(runs)} rounds, {n} images)"
        )
    print(f"pipeline / model: {rate['pipeline'] / rate['model']:.2f}x (target >= 0.9x)")
    print(f"threads {args.threads} · cores {os.cpu_count()} · load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
