"""Human review: routing predictions to a queue, the queue itself, audit and agreement.

Headless: nothing here imports textual; the TUI (``autolabel.tui``) is a shell over
:class:`ReviewQueue`.

    routing.py      which predictions need a human, and why (reason codes)
    ordering.py     queue order strategies (confidence, random, fifo; pluggable)
    rules.py        ontology review rules (regex, required fields, forbidden combos)
    queue.py        ReviewQueue: leased claims, decisions, consensus, undo, stats
    consensus.py    task status and final label from its live decisions
    resolution.py   final label per item for export (adjudicator > consensus > human > model)
    audit.py        an item's full history
    metrics.py      Cohen's/Fleiss' kappa, Krippendorff's alpha (pure functions)
    agreement.py    agreement report for a queue
"""

from autolabel.review.agreement import AgreementReport, agreement_report
from autolabel.review.audit import ItemHistory, item_history
from autolabel.review.queue import ReviewQueue
from autolabel.review.resolution import FinalLabel, resolve_final_labels
from autolabel.review.routing import RoutingReport, route
from autolabel.review.views import DecisionView, QueueStats, TaskView

__all__ = [
    "AgreementReport",
    "DecisionView",
    "FinalLabel",
    "ItemHistory",
    "QueueStats",
    "ReviewQueue",
    "RoutingReport",
    "TaskView",
    "agreement_report",
    "item_history",
    "resolve_final_labels",
    "route",
]
