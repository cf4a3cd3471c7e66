"""Start the review app from the command line: open the store, check the queue, run."""

from __future__ import annotations

from autolabel.errors import ConfigError, ReviewError
from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database


def run_review(
    db_url: str,
    queue: str,
    reviewer: str,
    *,
    lease_seconds: int = 600,
    adjudicate: bool = False,
    idle_release_s: float | None = None,
) -> int:
    """Run the TUI until the reviewer quits; returns how many items they decided.

    The shown item's lease is renewed every third of ``lease_seconds`` while the app
    runs; ``idle_release_s`` (None: never) gives it back after that long without a key."""
    if idle_release_s is not None and idle_release_s <= 0:
        raise ConfigError(
            f"--idle-release must be a positive number of seconds, got {idle_release_s:g}",
            hint="e.g. --idle-release 900 (15 minutes), or leave it out to never release",
        )
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewError("a reviewer name is needed", hint="pass --reviewer YOUR_NAME")
    db = Database(db_url)
    review_queue = ReviewQueue(db, queue, lease_seconds=lease_seconds)
    before = review_queue.stats(reviewer)
    if before.total == 0:
        raise ReviewError(
            f"review queue '{queue}' is empty in {db_url}",
            hint="route a run into it first: autolabel route RUN_ID --queue "
            f"{queue} (or pick another --queue / --db)",
        )
    from autolabel.tui.app import ReviewApp  # textual loads only when the app runs

    ReviewApp(review_queue, reviewer, adjudicate=adjudicate, idle_release_s=idle_release_s).run()
    after = review_queue.stats(reviewer)
    db.dispose()
    return after.done_by_reviewer.get(reviewer, 0) - before.done_by_reviewer.get(reviewer, 0)
