"""Evaluation: gold sets, metrics, calibration and thresholds, significance, experiments.

- ``metrics``: accuracy / P / R / F1 per task (failed items count as wrong).
- ``calibration``: ECE (equal-mass), Brier, AUROC, coverage curve, threshold choice.
- ``significance``: bootstrap intervals, McNemar, paired bootstrap.
- ``gold``: import gold labels (CSV, JSONL, CoNLL) or take them from review decisions.
- ``evaluate``: one run against one gold set → ``EvalResult`` (stored for ``history``).
- ``experiments``: variants × models × datasets → a comparison report (``report``).
"""

from autolabel.evaluation.evaluate import EvalResult, evaluate_run, history
from autolabel.evaluation.gold import gold_from_review, import_gold

__all__ = ["EvalResult", "evaluate_run", "gold_from_review", "history", "import_gold"]
