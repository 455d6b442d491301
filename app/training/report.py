"""The training report: one self-contained HTML file (images inlined) plus the PNGs beside it."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

TABLE_METRICS = ("roc_auc", "pr_auc", "f1_macro", "accuracy", "balanced_accuracy", "precision_macro",
                 "recall_macro", "ks", "gini", "brier")

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Training report: {{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}tr.winner{background:#e8f5e9}.fail{color:#b71c1c}.pass{color:#1b5e20}
img{max-width:480px;margin:.5rem;border:1px solid #eee}code{background:#f6f6f6;padding:0 .2rem}
</style></head><body>
<h1>Training report: {{ title }}</h1>
<p>Data: <code>{{ data_path }}</code> ({{ rows }} rows after validation, sha256 <code>{{ data_sha[:12] }}</code>),
schema <code>{{ schema_name }}</code>; {{ folds }}-fold stratified CV on {{ train_rows }} rows, holdout
{{ holdout_rows }} rows; seed {{ seed }}; duration {{ "%.1f"|format(duration) }} s.</p>
{% if sources %}<h3>Data sources (holdout: {{ holdout_rule }})</h3>
<table><tr><th>source</th><th>kind</th><th>rows used</th><th>holdout rows</th><th>left out</th><th>scored</th>
<th>sha256</th><th>notes</th></tr>
{% for s in sources %}<tr><td>{{ s.name }}</td><td>{{ s.kind }}</td><td>{{ s.rows if s.used else "not used" }}</td>
<td>{{ s.holdout_rows }}</td><td>{% for k, v in s.excluded.items() %}{{ k }}: {{ v }} {% endfor %}</td>
<td>{% if s.window and s.window.first_scored %}{{ s.window.first_scored }} to {{ s.window.last_scored }}{% endif %}</td>
<td><code>{{ (s.digest or "")[:12] }}</code></td><td>{{ s.notes|join("; ") }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Selected: {{ selected }}</h2>
<p>Selection metric <code>{{ selection_metric }}</code>{% if threshold is not none %}; decision threshold
{{ "%.4f"|format(threshold) }} tuned on out-of-fold predictions for <code>{{ threshold_objective }}</code>{% endif %}.</p>
<p>Scoring cost of the selected model, refit on the training split: {{ "%.2f"|format(scoring_cost.single_row_ms) }} ms
for one row, {{ "%.1f"|format(scoring_cost.batch_10k_ms) }} ms for 10,000 rows.
{%- set budget_set = latency_budget.single_row_ms is not none or latency_budget.batch_10k_ms is not none %}
Latency budget: {% if not budget_set %}none configured{% else %}
{%- if latency_budget.single_row_ms is not none %} one row &le; {{ latency_budget.single_row_ms }} ms{% endif %}
{%- if latency_budget.batch_10k_ms is not none %} 10,000 rows &le; {{ latency_budget.batch_10k_ms }} ms{% endif %}
{%- if not within_budget %}: <b class="fail">no candidate is within the budget</b>; the best on the metric is
registered and fails the quality gate{% endif %}{% endif %}.</p>
<p>Quality gate: {% if gate.passed %}<b class="pass">passed</b>{% else %}<b class="fail">failed</b>: {{ gate.reasons|join("; ") }}{% endif %}</p>
<h2>Grid ({{ grid|length }} combinations, mean &plusmn; std over folds)</h2>
<p>Scoring cost: the model's own <code>predict_proba</code> (feature transformer, then classifier, one thread) on
each candidate's first-fold model: the median of single-row calls, and of calls on 10,000 rows drawn from the
training split. The service scores through faster paths; <code>bench/serve_bench.py</code> measures it.</p>
<table><tr><th>combination</th>{% for m in metrics %}<th>{{ m }}</th>{% endfor %}<th>fit s (mean)</th>
<th>1 row ms</th><th>10,000 rows ms</th><th>latency budget</th></tr>
{% for r in grid %}<tr{% if r.winner %} class="winner"{% endif %}><td>{{ r.label }}</td>
{% if r.error %}<td colspan="{{ metrics|length }}" class="fail">{{ r.error }}</td>{% else %}
{% for m in metrics %}<td>{{ "%.4f"|format(r.mean[m]) if m in r.mean else "" }}{% if m in r.std %} &plusmn; {{ "%.4f"|format(r.std[m]) }}{% endif %}</td>{% endfor %}{% endif %}
<td>{{ "%.2f"|format(r.fit_s) }}</td>
<td>{{ "%.2f"|format(r.single_row_ms) if r.single_row_ms is not none else "" }}</td>
<td>{{ "%.1f"|format(r.batch_10k_ms) if r.batch_10k_ms is not none else "" }}</td>
<td{% if r.over_budget %} class="fail"{% endif %}>{% if r.over_budget %}over latency budget: {{ r.over_budget|join("; ") }}{% elif budget_set and not r.error %}within{% endif %}</td></tr>{% endfor %}</table>
<h2>Holdout metrics (selected model)</h2>
<table><tr><th>metric</th><th>cross-validation</th><th>holdout</th></tr>
{% for m in metrics %}{% if m in holdout %}<tr><td>{{ m }}</td><td>{{ "%.4f"|format(cv[m]) if m in cv else "" }}</td><td>{{ "%.4f"|format(holdout[m]) }}</td></tr>{% endif %}{% endfor %}</table>
<h3>Confusion matrix (holdout; rows true, columns predicted: {{ classes|join(", ") }})</h3>
<table>{% for row in confusion %}<tr><th>{{ classes[loop.index0] }}</th>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>Plots</h2>
{% for name, data in images %}<figure style="display:inline-block"><img alt="{{ name }}" src="data:image/png;base64,{{ data }}"><figcaption>{{ name }}</figcaption></figure>{% endfor %}
{% if fairness %}<h2>Fairness on the holdout (per protected group)</h2>
<table><tr><th>feature</th><th>group</th><th>rows</th><th>approval rate</th><th>approval ratio (vs best group)</th><th>TPR</th><th>FPR</th></tr>
{% for f in fairness %}<tr><td>{{ f.feature }}</td><td>{{ f.group }}</td><td>{{ f.rows }}</td><td>{{ "%.3f"|format(f.approval_rate) }}</td><td>{{ "%.3f"|format(f.approval_ratio) }}</td><td>{{ "%.3f"|format(f.tpr) }}</td><td>{{ "%.3f"|format(f.fpr) }}</td></tr>{% endfor %}</table>
{% if fairness_ratios %}<h3>Ratios between groups (lowest / highest rate per feature; approval below 0.8 is flagged: four-fifths rule)</h3>
<table><tr><th>feature</th><th>rate</th><th>ratio</th><th>lowest group</th><th>highest group</th></tr>
{% for r in fairness_ratios %}<tr><td>{{ r.feature }}</td><td>{{ r.metric }}</td><td{% if r.flag %} class="fail"{% endif %}>{{ "%.3f"|format(r.ratio) }}</td><td>{{ r.min_group }} ({{ "%.3f"|format(r.min) }})</td><td>{{ r.max_group }} ({{ "%.3f"|format(r.max) }})</td></tr>{% endfor %}</table>{% endif %}{% endif %}
</body></html>
"""


def _plots(out: Path, y: np.ndarray, proba: np.ndarray, bad_index: int, classes: list[Any],
           confusion: list[list[int]], importances: list[tuple[str, float]]) -> list[tuple[str, Path]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    files: list[tuple[str, Path]] = []

    def save(fig, name: str) -> None:
        path = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append((name.replace("_", " "), path))

    curves = [(str(classes[bad_index]), (y == bad_index).astype(int), proba[:, bad_index])]
    if proba.shape[1] > 2:
        curves = [(str(c), (y == i).astype(int), proba[:, i]) for i, c in enumerate(classes)]
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, yt, s in curves:
        fpr, tpr, _ = roc_curve(yt, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend()
    save(fig, "roc_curve")
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, yt, s in curves:
        p, r, _ = precision_recall_curve(yt, s)
        ax.plot(r, p, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax.legend()
    save(fig, "pr_curve")
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, yt, s in curves:
        frac, mean = calibration_curve(yt, s, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="Calibration (holdout)")
    ax.legend()
    save(fig, "calibration")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    cm = np.asarray(confusion)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title="Confusion matrix (holdout)")
    save(fig, "confusion_matrix")
    if importances:
        top = importances[:20][::-1]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.barh([n for n, _ in top], [v for _, v in top])
        ax.set(title="Feature importances (selected model)")
        save(fig, "feature_importances")
    return files


def write_report(out_dir: Path, context: dict[str, Any], y_holdout: np.ndarray, proba_holdout: np.ndarray,
                 importances: list[tuple[str, float]]) -> Path:
    """Render ``report.html`` and the PNGs into ``out_dir``; returns the HTML path."""
    from jinja2 import Environment

    out_dir.mkdir(parents=True, exist_ok=True)
    images = _plots(out_dir, y_holdout, proba_holdout, context["bad_index"], context["classes"],
                    context["confusion"], importances)
    inline = [(name, base64.b64encode(p.read_bytes()).decode()) for name, p in images]
    env = Environment(autoescape=True)
    text = env.from_string(_TEMPLATE).render(**context, metrics=TABLE_METRICS, images=inline,
                                             title=html.escape(context["selected"]))
    path = out_dir / "report.html"
    path.write_text(text)
    return path
