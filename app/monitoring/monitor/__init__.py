"""The monitor job (``credit-score monitor``; a cron job / Kubernetes CronJob, hourly).

One run (:func:`run_monitor`, app/monitoring/monitor/run.py) goes through five stages, each a module that hands
a typed result (app/monitoring/monitor/results.py) to the next:

1. **collect** (collect.py): the registered champion and challenger (schema, reference profiles, training time)
   and, from the prediction store, the predictions of the last ``monitor_window_hours`` and those of the last
   ``monitor_performance_days`` that have outcomes (``/feedback``) -> :class:`Collected`;
2. **analyse** (analyse.py): the served requests' features against the champion's reference profile (PSI, KS for
   numbers, chi-square for categories, missing rates) and each variant's scores against its own version's
   profile; live ROC-AUC, F1 macro, precision/recall of the bad class, Brier score and calibration (ECE and a
   reliability table) per variant; the fairness table (approval rate, TPR, FPR per protected group, ratios
   between groups) and the A/B comparison (app/monitoring/abtest.py) -> :class:`Analysis`;
3. **decide** (decide.py): the retrain policy: drift on at least ``retrain_drift_features`` features, or the
   champion's live ROC-AUC below ``retrain_auc_floor`` (on at least ``retrain_min_labels`` outcomes), or a
   champion older than ``retrain_every_days``; a job starts unless one is running or the monitor started one
   within ``retrain_cooldown_hours`` -> :class:`RetrainDecision`;
4. **act** (act.py): starts the retrain job through the same runner as ``POST /model/retrain`` (app.jobs) unless
   this is a dry run, and enforces retention (``retention_days``) on the store -> :class:`Actions`;
5. **export** (export.py): the results as Prometheus gauges, stored in the ``monitor_runs`` table (the service
   appends the latest run's gauges to its own /metrics, so Prometheus scrapes them with the service: no
   Pushgateway needed) and, when ``monitor_textfile`` is set, written for node-exporter's textfile collector;
   ``monitor.json`` and ``report.html`` under ``<reports_dir>/monitor/<time>/``.

The run returns the summary: one JSON-ready dict (the same that ``monitor.json`` holds and ``--json`` prints).
"""

# the stage functions (collect, analyse, decide, act, export) are not re-exported: each has its module's name
from app.monitoring.monitor.analyse import LIVE_METRICS, feature_matrix, live_metrics
from app.monitoring.monitor.collect import load_models
from app.monitoring.monitor.decide import last_jobs, retrain_decision
from app.monitoring.monitor.export import gauges, json_safe, write_reports, write_textfile
from app.monitoring.monitor.results import Actions, Analysis, Collected, Drift, Models, MonitorError, RetrainDecision
from app.monitoring.monitor.run import run_monitor

__all__ = [
    "LIVE_METRICS", "Actions", "Analysis", "Collected", "Drift", "Models", "MonitorError", "RetrainDecision",
    "feature_matrix", "gauges", "json_safe", "last_jobs", "live_metrics", "load_models", "retrain_decision",
    "run_monitor", "write_reports", "write_textfile",
]
