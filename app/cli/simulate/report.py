"""The simulation's report: one self-contained HTML file (PNG charts inlined, also written beside it) with the
drift per feature, live ROC-AUC over time per model version, the A/B result, the data lineage of each version,
the steps with their times and the count of failed requests."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from app.cli.simulate.loop import Outcome

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drift_chart(out: Outcome, path: Path) -> Path | None:
    features = (out.monitor.get("drift") or {}).get("features") or []
    if not features:
        return None
    plt = _plt()
    rows = sorted(features, key=lambda f: f.get("psi") or 0.0)
    thr = (out.monitor.get("thresholds") or {}).get("psi", 0.2)
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(rows) + 1.4))
    psi = [min(f.get("psi") or 0.0, 5.0) for f in rows]
    ax.barh([f["feature"] for f in rows], psi, color=["#d62728" if f.get("drifted") else "#9e9e9e" for f in rows])
    ax.axvline(thr, color="black", linestyle="--", linewidth=1, label=f"PSI threshold {thr:g}")
    ax.set_xlabel("population stability index (shifted window vs v1's training data)")
    ax.set_title("Input drift per feature (red: drifted, PSI and test p-value past their thresholds)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def auc_chart(out: Outcome, path: Path) -> Path | None:
    if not out.rounds:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(out.rounds))
    versions = sorted({k for r in out.rounds for k in r.auc if k != "all"}, key=lambda k: int(k[1:]))
    for i, v in enumerate(versions):
        ys = [r.auc.get(v, np.nan) for r in out.rounds]
        ax.plot(x, ys, marker="o", color=COLOURS[i % len(COLOURS)], label=f"model {v}")
    for i, r in enumerate(out.rounds):
        if i and r.phase != out.rounds[i - 1].phase:
            ax.axvline(i - 0.5, color="#bbbbbb", linestyle=":")
    ax.set_xticks(x, [r.label for r in out.rounds], rotation=20, fontsize=8)
    ax.set_ylabel("live ROC-AUC (answers vs posted outcomes)")
    ax.set_ylim(0.6, 0.95)
    ax.grid(alpha=0.3)
    ax.set_title("Live ROC-AUC per round and model version", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def ab_chart(out: Outcome, path: Path) -> Path | None:
    variants = out.abtest.get("variants") or {}
    if not variants:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = [n for n in ("champion", "challenger")
             if n in variants and isinstance((variants[n].get("roc_auc") or {}).get("value"), float)
             and not np.isnan(variants[n]["roc_auc"]["value"])]
    if not names:
        return None
    vals = [variants[n]["roc_auc"]["value"] for n in names]
    lo = [v - variants[n]["roc_auc"]["ci"][0] for n, v in zip(names, vals, strict=True)]
    hi = [variants[n]["roc_auc"]["ci"][1] - v for n, v in zip(names, vals, strict=True)]
    labels = [f"{n} v{out.abtest.get(n)}\n(n={variants[n].get('n')})" for n in names]
    ax.bar(labels, vals, yerr=[lo, hi], capsize=8, color=COLOURS[:len(names)])
    for i, v in enumerate(vals):
        ax.text(i, v + hi[i] + 0.005, f"{v:.3f}", ha="center", fontsize=9)
    test = out.abtest.get("test") or {}
    p = test.get("p_value")
    ax.set_ylim(0.6, 1.0)
    ax.set_ylabel("ROC-AUC with 95 % interval")
    ax.set_title(f"A/B result: {out.abtest.get('verdict')}" + (f" (DeLong p = {p:.2g})" if p is not None else ""),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def lineage_chart(out: Outcome, path: Path) -> Path | None:
    if not out.lineage:
        return None
    plt = _plt()
    parts = {v: _segments(ds) for v, ds in out.lineage.items()}
    keys = list(dict.fromkeys(k for segs in parts.values() for k in segs))
    fig, ax = plt.subplots(figsize=(7.5, 0.9 * len(parts) + 1.8))
    left = np.zeros(len(parts))
    labels = [f"v{v}" for v in parts]
    for i, key in enumerate(keys):
        rows = np.asarray([parts[v].get(key, 0) for v in parts], dtype=float)
        ax.barh(labels, rows, left=left, color=COLOURS[i // 2 % len(COLOURS)], alpha=1.0 if i % 2 == 0 else 0.45,
                label=key)
        left += rows
    ax.set_xlabel("rows")
    ax.set_title("Training data of each version, by source (the MLflow datasets of its run)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=min(4, len(keys)))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _segments(datasets: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per source of one version: "<source> training" and "<source> holdout"."""
    out: dict[str, int] = {}
    for d in datasets:
        if d.get("context") != "training":
            continue
        tags = d.get("tags") or {}
        rows, held = int(tags.get("rows") or 0), int(tags.get("holdout_rows") or 0)
        out[f"{d.get('name')} training"] = rows - held
        out[f"{d.get('name')} holdout"] = held
    return out


def _rows(d: dict[str, Any]) -> int:
    return int((d.get("tags") or {}).get("rows") or 0)


def write_report(out: Outcome, directory: Path) -> Path:
    """Write the charts and ``simulation.html`` into ``directory``; returns the HTML file."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = [(title, fn(out, directory / name)) for title, fn, name in (
        ("Drift per feature", drift_chart, "drift.png"), ("Live ROC-AUC over time", auc_chart, "live_auc.png"),
        ("A/B result", ab_chart, "abtest.png"), ("Data lineage", lineage_chart, "lineage.png"))]
    e = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>credit-score simulate</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}"
             "table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
             "th{background:#f3f3f3}.fail{color:#b71c1c}.pass{color:#1b5e20}img{max-width:100%;border:1px solid #eee}"
             "code{background:#f6f6f6;padding:0 .2rem}</style></head><body>",
             "<h1>The model's life cycle, simulated</h1>"]
    req = out.requests
    status = f"<b class='fail'>stopped: {e(out.error)}</b>" if out.error else "<b class='pass'>completed</b>"
    parts.append(f"<p>Run {status}. Requests: {req.get('sent', 0)} sent, "
                 f"<b class='{'fail' if req.get('failed') else 'pass'}'>{req.get('failed', 0)} failed</b>. "
                 f"Prediction store <code>{e(out.store)}</code>; working directory "
                 f"<code>{e(str(out.workdir))}</code>.</p>")
    if out.evaluation:
        cells = "".join(f"<tr><td>{e(k)} (version {e(out.versions.get(k, '?'))})</td><td>{v:.4f}</td></tr>"
                        for k, v in out.evaluation.items())
        parts.append("<h2>Champion v1 vs the retrained challenger on a fresh shifted sample</h2>"
                     f"<table><tr><th>model</th><th>ROC-AUC</th></tr>{cells}</table>")
    gate = out.job.get("gate") or {}
    if gate:
        checks = "".join(f"<tr><td>{e(str(c.get('check')))}</td><td>{e(str(c.get('metric')))}</td>"
                         f"<td>{_num(c.get('value'))}</td><td>{_num(c.get('limit', c.get('champion')))}</td>"
                         f"<td class='{'pass' if c.get('passed') else 'fail'}'>{c.get('passed')}</td></tr>"
                         for c in gate.get("checks", []))
        parts.append("<h2>Quality gate of the challenger (the newest production rows as holdout)</h2>"
                     "<table><tr><th>check</th><th>metric</th><th>challenger</th><th>limit / champion</th>"
                     f"<th>passed</th></tr>{checks}</table>")
    for title, path in charts:
        if path is not None:
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>")
            if title == "A/B result":
                parts.append("<p><code>credit-score abtest report --days</code> over the A/B period: the "
                             "labelled predictions of each variant while traffic was split.</p>")
    if out.lineage:
        rows = "".join(f"<tr><td>v{e(v)}</td><td>{e(str(d.get('name')))}</td><td>{e(str(d.get('context')))}</td>"
                       f"<td>{_rows(d)}</td>"
                       f"<td><code>{e(str(d.get('digest', ''))[:12])}</code></td>"
                       f"<td>{e(json.dumps(d.get('tags') or {}))[:200]}</td></tr>"
                       for v, ds in out.lineage.items() for d in ds)
        parts.append("<h2>Lineage (registry show)</h2><table><tr><th>version</th><th>dataset</th><th>context</th>"
                     f"<th>rows</th><th>digest</th><th>tags</th></tr>{rows}</table>")
    steps = "".join(f"<tr><td>{e(s['step'])}</td><td>{s['seconds']}</td></tr>" for s in out.steps)
    parts.append(f"<h2>Steps</h2><table><tr><th>step</th><th>seconds</th></tr>{steps}</table></body></html>")
    page = directory / "simulation.html"
    page.write_text("\n".join(parts))
    return page


def _num(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, int | float) else html.escape(str(v))
