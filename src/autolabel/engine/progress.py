"""The live progress bar: items/s, ETA, tokens, cache hits and failures."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    def __init__(self, total: int | None, *, enabled: bool, description: str) -> None:
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.cache_hits = 0
        self.tokens = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(stderr=True),
                transient=False,
                refresh_per_second=4,
            )
            self._task = self._progress.add_task(description, total=total, rate="", extra="")

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def skip(self, n: int) -> None:
        """Items already labeled by an earlier, interrupted attempt."""
        if self._progress is not None and self._task is not None and n:
            self._progress.advance(self._task, n)

    def update(self, *, failed: bool, cache_hit: bool, tokens: int) -> None:
        self.done += 1
        self.failed += failed
        self.cache_hits += cache_hit
        self.tokens += tokens
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        speed = task.finished_speed or task.speed
        rate = f"{speed:.1f} it/s" if speed else ""
        extra = f"tok {self.tokens:,} · cache {self.cache_hits} · failed {self.failed}"
        self._progress.update(self._task, advance=1, rate=rate, extra=extra)
