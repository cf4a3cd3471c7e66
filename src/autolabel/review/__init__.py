"""Human review: routing predictions to a queue, the queue itself, audit and agreement.

Headless: nothing here imports textual; the TUI (``autolabel.tui``) is a shell over
:class:`ReviewQueue`.
"""

from autolabel.review.queue import ReviewQueue
from autolabel.review.views import DecisionView, QueueStats, TaskView

__all__ = ["DecisionView", "QueueStats", "ReviewQueue", "TaskView"]
