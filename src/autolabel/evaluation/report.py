"""Reports: one document model rendered as Markdown, standalone HTML and JSON, plus PNGs.

The HTML embeds its images as base64 so the file can be mailed or attached alone.
Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autolabel.evaluation.evaluate import EvalResult


@dataclass
class Doc:
    """A small document: headings, paragraphs, tables and images, in order."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", (headers, rows)))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h":
                out += [f"{'#' * value[0]} {value[1]}", ""]
            elif kind == "p":
                out += [value, ""]
            elif kind == "ul":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                headers, rows = value
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
                out.append("")
            elif kind == "img":
                path, alt = value
                out += [f"![{alt}]({path.relative_to(base).as_posix()})", ""]
        return "\n".join(out)

    def html(self) -> str:
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
            "padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}"
            "img{max-width:100%}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, value in self.blocks:
            if kind == "h":
                parts.append(f"<h{value[0]}>{html.escape(value[1])}</h{value[0]}>")
            elif kind == "p":
                parts.append(f"<p>{html.escape(value)}</p>")
            elif kind == "ul":
                parts.append(
                    "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in value) + "</ul>"
                )
            elif kind == "table":
                headers, rows = value
                head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
                    for row in rows
                )
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif kind == "img":
                path, alt = value
                data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
                parts.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, out_dir: Path, payload: dict[str, Any], stem: str = "report") -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        md = out_dir / f"{stem}.md"
        md.write_text(self.markdown(out_dir), encoding="utf-8")
        page = out_dir / f"{stem}.html"
        page.write_text(self.html(), encoding="utf-8")
        data = out_dir / f"{stem}.json"
        data.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        return [md, page, data]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


# -- plots ---------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_reliability(series: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Reliability diagram: accuracy against mean confidence per equal-mass bin."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    for name, bins in series.items():
        if bins:
            xs = [b["mean_confidence"] for b in bins]
            ys = [b["accuracy"] for b in bins]
            ax.plot(xs, ys, marker="o", linewidth=1.5, label=name)
    return _finish(
        plt,
        fig,
        ax,
        path,
        "mean confidence (equal-mass bins)",
        "accuracy",
        "Reliability",
        legend="upper left",
    )


def plot_coverage(series: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Accuracy of the auto-accepted items against the share of items accepted."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, curve in series.items():
        if curve:
            ax.plot(
                [c["coverage"] for c in curve],
                [c["accuracy"] for c in curve],
                linewidth=1.5,
                label=name,
            )
    return _finish(
        plt,
        fig,
        ax,
        path,
        "coverage (share auto-accepted)",
        "accuracy of accepted",
        "Coverage vs accuracy",
        legend="lower left",
    )


def _finish(
    plt: Any, fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str, *, legend: str
) -> Path:
    """Shared tail of both plots: unit axes, labels, legend, save, release the figure."""
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7, loc=legend)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- one evaluation ------------------------------------------------------------------------


def eval_doc(result: EvalResult, out_dir: Path) -> Doc:
    run, gold, s = result.run, result.gold, result.summary
    doc = Doc(f"Evaluation of run {run['id']} against {gold['name']}@{gold['version']}")
    doc.p(
        f"{run['provider']}/{run['model']} · ontology {run['ontology']} v{run['ontology_version']}"
        f" · template {run['template']} · prompt {run['prompt_hash']} · generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    doc.h("Summary")
    ci = result.intervals.get("accuracy", {})
    rows = [
        ["items evaluated", result.n],
        ["failed (counted wrong)", result.n_failed],
        ["gold items not in the run", result.n_unmatched],
        [
            "accuracy",
            f"{fmt_pct(s.get('accuracy'))} (95% CI {fmt_pct(ci.get('low'))}–"
            f"{fmt_pct(ci.get('high'))})",
        ],
    ]
    for key in (
        "macro_f1",
        "micro_f1",
        "weighted_f1",
        "partial_f1",
        "hamming_loss",
        "ece",
        "brier",
        "auroc",
    ):
        if s.get(key) is not None:
            rows.append([key, s[key]])
    doc.table(["metric", "value"], rows)
    if result.threshold:
        doc.h("Auto-accept threshold")
        doc.p(result.threshold["sentence"])
    per_label = result.metrics.get("per_label") or result.metrics.get("per_type")
    if per_label:
        doc.h("Per label")
        doc.table(
            ["label", "support", "predicted", "precision", "recall", "F1"],
            [
                [r["label"], r["support"], r["predicted"], r["precision"], r["recall"], r["f1"]]
                for r in per_label
            ],
        )
    confusions = result.metrics.get("top_confusions")
    if confusions:
        doc.h("Top confusions")
        doc.table(["gold", "predicted", "count"], confusions)
    doc.bullets(result.metrics.get("notes", []))
    c = result.cost
    doc.h("Cost and speed")
    doc.table(
        [
            "tokens in",
            "tokens out",
            "tokens/item",
            "model ms/item",
            "wall ms/item (with queueing)",
            "cost/item (USD)",
            "items/s",
        ],
        [
            [
                c["tokens_in"],
                c["tokens_out"],
                c["tokens_per_item"],
                c.get("model_ms_per_item"),
                c.get("wall_ms_per_item", c["latency_ms_per_item"]),
                c["cost_per_item_usd"],
                c["items_per_s"],
            ]
        ],
    )
    if result.calibration:
        name = f"run {run['id']}"
        doc.h("Calibration")
        doc.image(
            plot_reliability({name: result.calibration["bins"]}, out_dir / "reliability.png"),
            "reliability diagram",
        )
        doc.image(
            plot_coverage({name: result.calibration["curve"]}, out_dir / "coverage.png"),
            "coverage curve",
        )
    return doc


def write_eval_report(result: EvalResult, out_dir: Path) -> list[Path]:
    """report.md, report.html (standalone), report.json and the PNGs in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = eval_doc(result, out_dir)
    return doc.write(out_dir, result.to_dict())


# -- experiments ---------------------------------------------------------------------------


def experiment_doc(result: Any, exp: Any, out_dir: Path) -> Doc:
    """Side-by-side table, plots per dataset and pairwise tests."""
    doc = Doc(f"Experiment: {result.name}")
    if exp.description:
        doc.p(exp.description)
    doc.p(
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Thresholds are chosen on a "
        f"calibration split for {exp.target_precision:.0%} precision and reported on the "
        "held-out split; failed items count as wrong."
    )
    doc.h("Results")
    doc.table(
        [
            "dataset",
            "variant",
            "model",
            "n",
            "failed",
            "accuracy (95% CI)",
            "macro-F1",
            "ECE",
            "Brier",
            "AUROC",
            f"coverage @ {exp.target_precision:.0%}",
            "accuracy there",
            "cost/item",
            "items/s",
        ],
        [
            [
                r["dataset"],
                r["variant"],
                r["model"],
                r["n"],
                r["n_failed"],
                f"{fmt_pct(r['accuracy'])} ({fmt_pct(r['accuracy_low'])}–"
                f"{fmt_pct(r['accuracy_high'])})",
                r["macro_f1"],
                r["ece"],
                r["brier"],
                r["auroc"],
                fmt_pct(r["coverage_at_target"]),
                fmt_pct(r["accuracy_at_target"]),
                "–" if r["cost_per_item_usd"] is None else f"${r['cost_per_item_usd']:.6f}",
                r["items_per_s"],
            ]
            for r in result.rows
        ],
    )
    datasets = list(dict.fromkeys(r["dataset"] for r in result.rows))
    for dataset in datasets:
        doc.h(f"{dataset}", 2)
        keys = [k for k in result.results if k.split("|", 1)[0] == dataset]
        bins = {
            k.split("|", 1)[1]: (result.results[k].calibration or {}).get("bins", []) for k in keys
        }
        curves = {
            k.split("|", 1)[1]: (result.results[k].calibration or {}).get("curve", []) for k in keys
        }
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset)
        doc.image(
            plot_reliability(bins, out_dir / f"reliability_{safe}.png"),
            f"reliability diagram, {dataset}",
        )
        doc.image(
            plot_coverage(curves, out_dir / f"coverage_{safe}.png"), f"coverage curve, {dataset}"
        )
        doc.bullets(
            [
                f"{k.split('|', 1)[1]}: {(result.results[k].threshold or {}).get('sentence', '–')}"
                for k in keys
            ]
        )
        comps = [c for c in result.comparisons if c["dataset"] == dataset]
        if comps:
            doc.h(f"Paired tests on {dataset}", 3)
            doc.table(
                [
                    "A",
                    "B",
                    "n",
                    "acc A",
                    "acc B",
                    "A-only right",
                    "B-only right",
                    "McNemar p",
                    "ΔF1 (A−B) [95% CI]",
                    "bootstrap p",
                ],
                [
                    [
                        c["a"],
                        c["b"],
                        c["n"],
                        fmt_pct(c["accuracy_a"]),
                        fmt_pct(c["accuracy_b"]),
                        c["mcnemar"]["a_only"],
                        c["mcnemar"]["b_only"],
                        f"{c['mcnemar']['p_value']:.3g} ({c['mcnemar']['method']})",
                        _delta(c.get("paired_bootstrap_f1")),
                        None
                        if "paired_bootstrap_f1" not in c
                        else f"{c['paired_bootstrap_f1']['p_value']:.3g}",
                    ]
                    for c in comps
                ],
            )
    if result.errors:
        doc.h("Problems")
        doc.bullets(result.errors)
    return doc


def _delta(pb: dict[str, Any] | None) -> str:
    if not pb:
        return "–"
    return f"{pb['difference']:+.3f} [{pb['low']:+.3f}, {pb['high']:+.3f}]"


def write_experiment_report(result: Any, exp: Any, out_dir: Path) -> list[Path]:
    """report.md, report.html (standalone), report.json and PNGs for an experiment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = experiment_doc(result, exp, out_dir)
    payload = {
        "name": result.name,
        "experiment": exp.model_dump(mode="json", exclude={"base_dir"}),
        "rows": result.rows,
        "comparisons": result.comparisons,
        "evaluations": {k: v.to_dict() for k, v in result.results.items()},
        "errors": result.errors,
    }
    return doc.write(out_dir, payload)
