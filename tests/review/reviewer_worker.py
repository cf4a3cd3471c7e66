"""A reviewer in its own process, for the concurrency tests.

    python -m tests.review.reviewer_worker DB_URL REVIEWER [--label L] [--max N]
        [--claim-only] [--clock-offset S] [--pause S] [--lease S] [--wait] [--hold-first]

Prints ``decided <decision id> <task id>`` after each decision has committed (and
``claimed <task id>`` in ``--claim-only`` mode), flushing every line, so a parent
can compare what the process was told succeeded with what the database holds.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from autolabel.review.queue import ReviewQueue
from autolabel.store.database import Database


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("db_url")
    p.add_argument("reviewer")
    p.add_argument("--queue", default="default")
    p.add_argument("--label", default="positive")
    p.add_argument("--max", type=int, default=10**9)
    p.add_argument("--claim-only", action="store_true")
    p.add_argument("--clock-offset", type=float, default=0.0)
    p.add_argument("--pause", type=float, default=0.0)
    p.add_argument("--lease", type=int, default=600)
    p.add_argument("--wait", action="store_true", help="print 'ready', start on a stdin line")
    p.add_argument(
        "--hold-first",
        action="store_true",
        help="after the first claim print 'holding', go on at the next stdin line",
    )
    args = p.parse_args()
    offset = timedelta(seconds=args.clock_offset)
    queue = ReviewQueue(
        Database(args.db_url),
        args.queue,
        lease_seconds=args.lease,
        clock=lambda: datetime.now(UTC) + offset,
    )
    if args.wait:
        # A start barrier: all reviewers begin together, after their slow imports.
        print("ready", flush=True)
        sys.stdin.readline()
    done = 0
    while done < args.max:
        task = queue.claim(args.reviewer)
        if task is None:
            break
        if args.hold_first and done == 0:
            # A second barrier: every reviewer holds a lease before anyone decides,
            # so each gets work however the OS or SQLite's busy handler schedules them.
            print("holding", flush=True)
            sys.stdin.readline()
        if args.claim_only:
            print(f"claimed {task.task_id}", flush=True)
            done += 1
            continue
        if args.pause:
            time.sleep(args.pause)  # widen the window in which others could collide
        decision = queue.decide(task.task_id, args.reviewer, args.label)
        print(f"decided {decision.id} {task.task_id}", flush=True)
        done += 1
    print("done", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
