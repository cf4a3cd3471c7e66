"""The simulation's mechanics with a deterministic synthetic "model".

The synthetic model is right zero-shot on half the topics; shown a demonstration of
the item's topic it answers that label. So learning from reviews must help, and the
loop's curve must reach the target with less effort than random order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from autolabel.learning.demonstrations import Demonstration
from autolabel.learning.embeddings import EmbeddingCache, HashingEmbedder
from autolabel.learning.simulate import SimConfig, SimItem, SimPrediction, effort, simulate
from autolabel.learning.simulate_report import write_report

TOPICS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def _items() -> list[SimItem]:
    out = []
    for t, topic in enumerate(TOPICS):
        for j in range(12):
            text = f"{topic} {topic}{j % 3} question number {j} about {topic}"
            out.append(SimItem(f"{topic}-{j}", {"text": text}, text, f"L{t}"))
    return out


class Synthetic:
    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    def __call__(
        self, items: Sequence[SimItem], demos: Sequence[Sequence[Demonstration]]
    ) -> list[SimPrediction]:
        out = []
        for item, ds in zip(items, demos, strict=True):
            self.seen.append((item.ref, tuple(d.ref for d in ds)))
            topic = TOPICS.index(item.text.split()[0])
            taught = [d.output for d in ds if d.text.split()[0] == item.text.split()[0]]
            if taught:
                out.append(SimPrediction(taught[0], 0.9, {taught[0]: 0.9, "L0": 0.1}))
            elif topic % 2 == 0:
                out.append(SimPrediction(item.gold, 0.8, {item.gold: 0.8, "Lx": 0.2}))
            elif topic == 7:
                out.append(SimPrediction(None))  # failed: counts as wrong
            else:
                out.append(SimPrediction("L0", 0.85, {"L0": 0.85, "Lx": 0.15}))
        return out


def test_loop_beats_static_orders_and_never_shows_itself(tmp_path: Path) -> None:
    items = _items()
    model = Synthetic()
    cache = EmbeddingCache(HashingEmbedder().fit([it.text for it in items]))
    results = simulate(items, model, cache, SimConfig(target=0.95, batch=8, seed=1, k=4))
    assert set(results) == {"random", "confidence", "loop"}
    zero = results["random"].extra["zero_shot_accuracy"]
    assert zero == 0.5
    loop, rnd = results["loop"], results["random"]
    assert loop.effort_to_target is not None
    assert rnd.effort_to_target is None or loop.effort_to_target < rnd.effort_to_target
    assert loop.effort_to_target <= 0.35
    # Never an item as its own demonstration.
    assert all(ref not in shown for ref, shown in model.seen)
    # Curves start at the zero-shot accuracy and the static ones end at 100%.
    assert rnd.points[0]["accuracy"] == zero and rnd.points[-1]["accuracy"] == 1.0
    assert effort(rnd.points, 0.5) == 0.0
    at20 = loop.extra["at_20_percent"]
    assert at20["unreviewed_accuracy"] > at20["zero_shot_unreviewed_accuracy"]

    files = write_report(tmp_path / "rep", results, {"target": 0.95, "ontology": "synthetic"})
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    for name in ("random", "confidence", "loop"):
        assert {"points", "effort_to_target"} <= set(data[name])
    assert (tmp_path / "rep" / "effort.png").stat().st_size > 1000
    assert any(f.suffix == ".html" for f in files)


def test_deterministic_with_seed() -> None:
    items = _items()

    def run(seed: int) -> list[float]:
        cache = EmbeddingCache(HashingEmbedder())
        res = simulate(items, Synthetic(), cache, SimConfig(batch=8, seed=seed))
        return [p["accuracy"] for p in res["loop"].points + res["random"].points]

    assert run(4) == run(4)


def test_checkpoints_are_partial_and_end_where_the_final_curve_agrees(tmp_path: Path) -> None:
    items = _items()
    cache = EmbeddingCache(HashingEmbedder().fit([it.text for it in items]))
    seen: list[dict] = []
    cfg = SimConfig(target=0.99, batch=16, seed=2, k=4, budget=0.5)
    final = simulate(items, Synthetic(), cache, cfg, on_checkpoint=lambda r: seen.append(r))
    assert "loop" not in seen[0] and set(seen[0]) == {"random", "confidence"}
    loops = [s["loop"] for s in seen[1:]]
    assert loops and all(r.extra["partial"] for r in loops)
    assert final["loop"].extra["partial"] is False
    # Each checkpoint's curve is a prefix of the final one (nothing rewritten later).
    n_points = [len(r.points) for r in loops]
    assert n_points == sorted(n_points)
    assert final["loop"].points[: n_points[-1]] == loops[-1].points
    # A partial report says so.
    write_report(tmp_path / "p", seen[-1], {"target": 0.99, "partial": True})
    assert "PARTIAL REPORT" in (tmp_path / "p" / "report.md").read_text()
