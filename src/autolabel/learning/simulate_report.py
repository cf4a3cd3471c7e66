"""The simulate report: report.json (scripts depend on its shape), a PNG, Markdown and HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autolabel.evaluation.report import Doc, _pyplot, fmt_pct
from autolabel.learning.simulate import StrategyResult

_TITLES = {
    "random": "random order, no learning",
    "confidence": "confidence order, no learning",
    "loop": "full loop (active order + demonstrations + recalibration + re-label)",
}


def plot_effort(results: dict[str, StrategyResult], target: float, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        xs = [p["share"] for p in r.points]
        ys = [p["accuracy"] for p in r.points]
        ax.plot(xs, ys, label=_TITLES.get(name, name), linewidth=1.6)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.0%}")
    ax.set_xlabel("share of items reviewed by a human")
    ax.set_ylabel("accuracy of the whole dataset")
    ax.set_xlim(0, 1)
    low = min((p["accuracy"] for r in results.values() for p in r.points), default=0.0)
    ax.set_ylim(max(0.0, low - 0.02), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    out_dir: Path, results: dict[str, StrategyResult], meta: dict[str, Any]
) -> list[Path]:
    """``out_dir/report.json`` holds, per strategy, ``points`` and ``effort_to_target``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = float(meta["target"])
    png = plot_effort(results, target, out_dir / "effort.png")
    doc = Doc(f"Effort to quality: {meta.get('ontology')} on {meta.get('data')}")
    doc.p(
        f"{meta.get('n_items')} items, model {meta.get('model')}, batch {meta.get('batch')}, "
        f"seed {meta.get('seed')}. Accuracy counts human labels where reviewed and model "
        "labels elsewhere; failed items count as wrong. The loop stops at the target "
        f"(after at least 20% reviewed) or at its budget of {float(meta.get('budget', 1.0)):.0%} "
        "of items; the static orders are computed to 100%."
    )
    if meta.get("partial"):
        doc.p(
            "PARTIAL REPORT: the run was still going (or was stopped) when this was written; "
            "the loop's curve ends at its last finished round and 'not reached' may only "
            "mean 'not reached yet'."
        )
    any_r = next(iter(results.values()), None)
    if any_r is not None and "zero_shot_s" in any_r.extra:
        doc.p(
            f"Cost: zero-shot pass {any_r.extra['zero_shot_s']} s wall, "
            f"{any_r.extra.get('zero_shot_cpu_s')} s CPU; whole run so far "
            f"{any_r.extra.get('elapsed_s')} s wall, {any_r.extra.get('cpu_s')} s CPU "
            f"(model threads: {meta.get('n_threads') or 'default'})."
        )
    targets = sorted({*meta.get("targets", []), target})
    rows = []
    for name, r in results.items():
        efforts = r.extra.get("effort", {})
        rows.append(
            [_TITLES.get(name, name)]
            + [
                fmt_pct(efforts.get(f"{t:g}"))
                if efforts.get(f"{t:g}") is not None
                else "not reached"
                for t in targets
            ]
            + [r.model_calls]
        )
    doc.table(["strategy", *[f"effort to {t:.0%}" for t in targets], "model calls"], rows)
    loop = results.get("loop")
    if loop is not None and loop.extra.get("at_20_percent"):
        a = loop.extra["at_20_percent"]
        doc.p(
            f"After {fmt_pct(a['share'])} of items were reviewed, the still-unreviewed items "
            f"are {fmt_pct(a['unreviewed_accuracy'])} accurate with the loop vs "
            f"{fmt_pct(a['zero_shot_unreviewed_accuracy'])} zero-shot."
        )
    doc.image(png, "effort curve")
    if loop is not None and loop.extra.get("rounds"):
        doc.h("Loop rounds")
        doc.table(
            [
                "reviewed",
                "accuracy",
                "unreviewed acc.",
                "zero-shot on same",
                "calibrator",
                "re-labelled",
                "wall s",
                "CPU s",
            ],
            [
                [
                    r["reviewed"],
                    fmt_pct(r["accuracy"]),
                    fmt_pct(r["unreviewed_accuracy"]),
                    fmt_pct(r["zero_shot_unreviewed_accuracy"]),
                    r["calibrator"],
                    r.get("relabelled", ""),
                    r["relabel_s"],
                    r.get("relabel_cpu_s", ""),
                ]
                for r in loop.extra["rounds"]
            ],
        )
    payload = {**meta, **{name: r.to_dict() for name, r in results.items()}}
    files = doc.write(out_dir, payload, stem="report")
    return [*files, png]
