"""Review latency on a big queue: is the next item on screen fast enough?

Builds a queue of N classify items (default 100,000) in a temporary SQLite file with
bulk inserts, then measures

1. the bare queue: ``claim`` and ``decide`` (and both) per item;
2. the TUI, headless under Textual's Pilot: from the decision keypress until the next
   item's text is in the item pane (handler + repaint), per item;
3. ``stats()``: the footer's counts, which the app refreshes off the UI thread.

Prints p50 / p95 / max in milliseconds. Target: next item < 50 ms at 100k items.

    python bench/review_latency.py            # 100k items, 200 decisions each part
    python bench/review_latency.py --items 10000 --decisions 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _fixtures import seed_review_queue

from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database


def summary(name: str, samples_s: list[float]) -> None:
    ms = sorted(x * 1000 for x in samples_s)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"{name:<38} n={len(ms):<4} p50={statistics.median(ms):7.2f} ms  "
        f"p95={p95:7.2f} ms  max={ms[-1]:7.2f} ms"
    )


def bench_queue(db: Database, decisions: int) -> None:
    queue = ReviewQueue(db)
    claims, decides, both = [], [], []
    for _ in range(decisions):
        t0 = time.perf_counter()
        task = queue.claim("bench-queue")
        t1 = time.perf_counter()
        assert task is not None
        queue.decide(task.task_id, "bench-queue", task.suggestion, seconds=1.0)
        t2 = time.perf_counter()
        claims.append(t1 - t0)
        decides.append(t2 - t1)
        both.append(t2 - t0)
    summary("queue.claim", claims)
    summary("queue.decide", decides)
    summary("queue.claim + decide", both)


def bench_stats(db: Database, repeats: int = 5) -> None:
    queue = ReviewQueue(db)
    took = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        queue.stats("bench-tui")
        took.append(time.perf_counter() - t0)
    summary("queue.stats (footer, off UI thread)", took)


async def bench_tui(db: Database, decisions: int) -> None:
    from autolabel.tui import ReviewApp
    from autolabel.tui.panes import ItemPane

    app = ReviewApp(ReviewQueue(db), "bench-tui")
    handler: list[float] = []
    painted: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        screen = app.review
        body = screen.query_one("#item", ItemPane).query_one("#item-body")
        marks: dict[str, float] = {}
        show = screen.show_task

        def timed_show(task):  # type: ignore[no-untyped-def]
            show(task)
            marks["shown"] = time.perf_counter()
            # Runs once the screen has been repainted with the new item.
            screen.call_after_refresh(lambda: marks.setdefault("painted", time.perf_counter()))

        screen.show_task = timed_show  # type: ignore[method-assign]
        for _ in range(decisions):
            before = screen.current
            assert before is not None
            marks.clear()
            t0 = time.perf_counter()
            await pilot.press("enter")
            while "painted" not in marks:
                await asyncio.sleep(0.001)
            handler.append(marks["shown"] - t0)
            painted.append(marks["painted"] - t0)
            now = screen.current
            assert now is not None and now.task_id != before.task_id
            assert str(now.fields["text"]) in str(body.content.renderables[-1])  # type: ignore[attr-defined]
        await pilot.press("q")
    summary("TUI keypress -> next item shown (handler)", handler)
    summary("TUI keypress -> next item painted", painted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        db = seed_review_queue(url, args.items)
        print(f"built a {args.items:,}-item queue in {time.perf_counter() - t0:.1f} s ({url})")
        bench_queue(db, args.decisions)
        bench_stats(db)
        asyncio.run(bench_tui(db, args.decisions))
        db.dispose()


if __name__ == "__main__":
    main()
