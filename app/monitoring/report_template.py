"""The monitor's HTML report (a Jinja template; app/monitoring/monitor/export.py renders it)."""
# ruff: noqa: E501 (HTML table rows are long by nature)

MONITOR_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Monitor report {{ s.time }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;font-size:.85rem;margin-bottom:1rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.bad{color:#b71c1c;font-weight:bold}.ok{color:#1b5e20}
</style></head><body>
<h1>Monitor report: {{ s.model }} at {{ s.time }}</h1>
<p>Champion v{{ s.champion }}{% if s.challenger %}, challenger v{{ s.challenger }}{% endif %}; store
<code>{{ s.store }}</code>. Drift window: last {{ s.window.hours }} h, {{ s.window.predictions }} predictions
({% for k, v in s.window.by_variant.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}).
Performance window: last {{ s.performance_window.days }} days, {{ s.performance_window.labelled }} predictions with
outcomes.</p>
<h2>Retrain policy</h2>
{% if s.retrain.triggered %}<p class="bad">Triggered: {{ s.retrain.reasons.values()|join("; ") }}.
{% if s.retrain.job_id %}Started retrain job <code>{{ s.retrain.job_id }}</code>.{% elif s.retrain.skipped %}No job started: {{ s.retrain.skipped }}.{% elif s.retrain.dry_run %}No job started: dry run.{% endif %}</p>
{% else %}<p class="ok">Not triggered.</p>{% endif %}
<h2>Input drift (against the champion's training data): {{ s.drift.status }}</h2>
{% if s.drift.features %}<p>Drift = PSI &ge; {{ s.thresholds.psi }} and p-value &lt; {{ s.thresholds.p_value }}.
Drifting: {{ s.drift.drifted|join(", ") or "none" }}.</p>
<table><tr><th>feature</th><th>kind</th><th>rows</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th><th>missing</th><th>missing (reference)</th><th>drift</th></tr>
{% for d in s.drift.features %}<tr><td>{{ d.feature }}</td><td>{{ d.kind }}</td><td>{{ d.rows }}</td><td{% if d.drifted %} class="bad"{% endif %}>{{ fmt(d.psi) }}</td><td>{{ d.test }}</td><td>{{ fmt(d.statistic) }}</td><td>{{ fmt(d.p_value) }}</td><td>{{ fmt(d.missing_rate, 3) }}</td><td>{{ fmt(d.reference_missing_rate, 3) }}</td><td>{{ "yes" if d.drifted else "no" }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.drift.scores %}<h3>Score drift (each variant against its own version's holdout scores)</h3>
<table><tr><th>variant</th><th>rows</th><th>PSI</th><th>KS</th><th>p-value</th><th>drift</th></tr>
{% for v, d in s.drift.scores.items() %}<tr><td>{{ v }}</td><td>{{ d.rows }}</td><td>{{ fmt(d.psi) }}</td><td>{{ fmt(d.statistic) }}</td><td>{{ fmt(d.p_value) }}</td><td>{{ "yes" if d.drifted else "no" }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Live performance (predictions with outcomes)</h2>
<table><tr><th>variant</th><th>version</th><th>outcomes</th><th>bad</th><th>ROC-AUC</th><th>F1 macro</th><th>accuracy</th><th>precision (bad)</th><th>recall (bad)</th><th>Brier</th><th>ECE</th></tr>
{% for v, m in s.live.items() %}<tr><td>{{ v }}</td><td>{{ m.version }}</td><td>{{ m.n }}</td><td>{{ m.bad }}</td><td>{{ fmt(m.roc_auc) }}</td><td>{{ fmt(m.f1_macro) }}</td><td>{{ fmt(m.accuracy) }}</td><td>{{ fmt(m.precision_bad) }}</td><td>{{ fmt(m.recall_bad) }}</td><td>{{ fmt(m.brier) }}</td><td>{{ fmt(m.ece) }}</td></tr>{% endfor %}</table>
{% for v, m in s.live.items() %}{% if m.calibration %}<h3>Calibration: {{ v }} (quantile bins of P(bad))</h3>
<table><tr><th>bin</th><th>rows</th><th>P(bad) range</th><th>mean predicted</th><th>observed bad rate</th></tr>
{% for c in m.calibration %}<tr><td>{{ loop.index }}</td><td>{{ c.rows }}</td><td>{{ fmt(c.min, 3) }} - {{ fmt(c.max, 3) }}</td><td>{{ fmt(c.mean_predicted, 3) }}</td><td>{{ fmt(c.observed, 3) }}</td></tr>{% endfor %}</table>{% endif %}{% endfor %}
{% if s.abtest %}<h2>A/B: {{ s.abtest.verdict }}</h2><p>{{ s.abtest.reason }}</p>
{% if s.abtest.variants %}<table><tr><th>variant</th><th>version</th><th>outcomes</th><th>ROC-AUC [95 % CI]</th><th>F1 macro [95 % CI]</th><th>accuracy [95 % CI]</th></tr>
{% for v, m in s.abtest.variants.items() %}<tr><td>{{ v }}</td><td>{{ m.version }}</td><td>{{ m.n }}</td><td>{{ fmt(m.roc_auc.value) }} [{{ fmt(m.roc_auc.ci[0]) }}, {{ fmt(m.roc_auc.ci[1]) }}]</td><td>{{ fmt(m.f1_macro.value) }} [{{ fmt(m.f1_macro.ci[0]) }}, {{ fmt(m.f1_macro.ci[1]) }}]</td><td>{{ fmt(m.accuracy.value) }} [{{ fmt(m.accuracy.ci[0]) }}, {{ fmt(m.accuracy.ci[1]) }}]</td></tr>{% endfor %}</table>{% endif %}{% endif %}
<h2>Fairness (protected groups)</h2>
<p>Approval rate on the drift window's served requests; TPR and FPR (bad class) on the outcomes known.</p>
<table><tr><th>feature</th><th>group</th><th>requests</th><th>approval rate</th><th>approval ratio (vs best group)</th><th>outcomes</th><th>TPR</th><th>FPR</th></tr>
{% for f in s.fairness %}<tr><td>{{ f.feature }}</td><td>{{ f.group }}</td><td>{{ f.rows }}</td><td>{{ fmt(f.approval_rate, 3) }}</td><td>{{ fmt(f.approval_ratio, 3) }}</td><td>{{ f.labelled }}</td><td>{{ fmt(f.tpr, 3) }}</td><td>{{ fmt(f.fpr, 3) }}</td></tr>{% endfor %}</table>
{% if s.fairness_ratios %}<h3>Ratios between groups (lowest / highest; approval below 0.8 flagged: four-fifths rule)</h3>
<table><tr><th>feature</th><th>rate</th><th>ratio</th><th>lowest group</th><th>highest group</th></tr>
{% for r in s.fairness_ratios %}<tr><td>{{ r.feature }}</td><td>{{ r.metric }}</td><td{% if r.flag %} class="bad"{% endif %}>{{ fmt(r.ratio, 3) }}</td><td>{{ r.min_group }} ({{ fmt(r.min, 3) }})</td><td>{{ r.max_group }} ({{ fmt(r.max, 3) }})</td></tr>{% endfor %}</table>{% endif %}
<h2>Retention</h2><p>Rows older than {{ s.retention.days }} days deleted: {{ s.retention.deleted }}.</p>
<p>Run took {{ s.duration_s }} s.</p>
</body></html>
"""
