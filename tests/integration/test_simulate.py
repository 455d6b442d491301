"""The loop, end to end and seeded (issue 14, acceptance 2): `credit-score simulate --quick` on a real PostgreSQL
prediction store, with real gunicorn, a real MLflow store and a real retrain job started by the monitor.

The challenger trained on base + labelled production data (read from PostgreSQL by the job: the store's URL is
what the process runner hands the job) beats the champion on a fresh sample of the shifted population by at
least MARGIN; the A/B verdict promotes it; the rollback restores v1 on the alias and on the serving workers;
no request of the whole run failed; the report has its four charts.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.cli_runner import invoke_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MARGIN = 0.05  # ROC-AUC on the shifted population: v2 (production outcomes) over v1 (base only); seed 42: ~0.08


def test_simulate_closes_the_loop_on_postgresql(tmp_path):
    from tests.integration.test_monitoring_store_outage import Postgres

    pg = Postgres()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
        res = invoke_cli(["simulate", "--quick", "--seed", "42", "--workdir", tmp_path / "sim", "--store-url",
                          pg.url, "--json"], env)
    finally:
        pg.destroy()
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    v1, v2 = out["versions"]["v1"], out["versions"]["v2"]

    # the monitor started the retrain; the job trained on production rows from PostgreSQL, gated on the newest
    assert out["job"]["status"] == "succeeded" and out["job"]["reason"].startswith("monitor: drift")
    prod = next(d for d in out["lineage"][v2] if d["name"] == "production")
    assert prod["rows"] >= 1000 and prod["holdout_rows"] > 0 and prod["source"]["location"].startswith("postgresql")
    assert not any(d["name"] == "production" for d in out["lineage"][v1])
    champ = next(c for c in out["gate"]["checks"] if c["check"] == "champion")
    assert out["gate"]["passed"] and champ["value"] > champ["champion"]
    # better on the shifted population, by the margin
    assert out["evaluation"]["v2"] - out["evaluation"]["v1"] >= MARGIN, out["evaluation"]
    # the A/B verdict, the promotion, then the rollback: alias and workers back on v1
    assert out["abtest"]["verdict"] == "challenger_better" and out["abtest"]["challenger"] == v2
    assert [r["phase"] for r in out["rounds"]][-2:] == ["v2", "v1"]
    assert out["champion_after_rollback"] == v1 and out["serving_after_rollback"] == [v1]
    # zero failed requests throughout (the trickle ran through every reload)
    assert out["requests"]["failed"] == 0 and out["requests"]["sent"] > 3000, out["requests"]
    assert out["error"] is None
    report = tmp_path / "sim" / "report"
    html = (report / "simulation.html").read_text()
    for png in ("drift.png", "live_auc.png", "abtest.png", "lineage.png"):
        assert (report / png).stat().st_size > 5000
    assert html.count("data:image/png;base64,") == 4
