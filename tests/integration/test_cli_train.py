"""The `credit-score` command end to end: training, bad data, the registry, batch scoring.

In-process (tests.cli_runner.invoke_cli) on a store trained once per session (``trained_store``) or a copy of
it; a test trains only when the training is what it checks (other data, another config, determinism). Two tests
run the real console script in a subprocess. Bad arguments and every command's help: tests/unit/test_cli.py.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from app.datasets import generate_synthetic
from tests.cli_runner import invoke_cli, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUIRED = {"roc_auc", "f1_macro", "pr_auc", "accuracy", "balanced_accuracy", "brier"}
# one classifier, one sampler, few trees: for tests of what happens around a training, not of the grid; the
# generous epsilon lets it pass the no-regression gate against the grid's champion
TINY = {"cv_folds": 2, "classifiers": ["xgboost"], "samplers": ["none"], "xgboost": {"n_estimators": 20},
        "gate": {"floors": {"roc_auc": 0.6}, "epsilon": 0.2}}


@pytest.fixture
def data_csv(tmp_path):
    p = tmp_path / "data.csv"
    generate_synthetic(2500, seed=11).to_csv(p, index=False)
    return p


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_train_json_output_report_and_first_champion(trained_store):
    out = trained_store.out
    assert out["version"] == "1" and out["alias"] == "champion"
    assert set(out["selected"]) >= {"classifier", "sampler"}
    for part in ("cv", "holdout"):
        assert REQUIRED | {"ks", "gini"} <= set(out[part]), part
    assert 0 < out["threshold"] < 1 and out["duration_s"] > 0
    assert out["gate"] == {"passed": True, "reasons": []}
    assert len(out["grid"]) == 10 and all(r["error"] is None for r in out["grid"])
    assert all(r["single_row_ms"] > 0 and r["batch_10k_ms"] > 0 and r["over_budget"] == [] for r in out["grid"])
    assert out["scoring_cost"]["single_row_ms"] > 0
    html = Path(out["report"]).read_text()
    for r in out["grid"]:
        assert r["label"].replace("+", "&#43;") in html or r["label"] in html
    for img in ("roc_curve", "pr_curve", "confusion_matrix", "calibration", "feature_importances"):
        assert list((trained_store.root / "reports").rglob(f"{img}.png")), img
        assert f'alt="{img.replace("_", " ")}"' in html


def test_challenger_promote_champion_registry_and_rollback(trained_copy, tiny_config):
    data = trained_copy.data
    # a second model becomes challenger, --promote champion replaces the champion
    out2 = json.loads(invoke_cli(["train", "--config", tiny_config, "--data", data, "--json", "-q"],
                                 check=True).stdout)
    assert out2["alias"] == "challenger" and out2["version"] == "2"
    out3 = json.loads(invoke_cli(["train", "--config", tiny_config, "--data", data, "--json", "-q",
                                  "--promote", "champion"], check=True).stdout)
    assert out3["alias"] == "champion" and out3["version"] == "3"

    shown = json.loads(invoke_cli(["registry", "show", "champion"], check=True).stdout)
    for tag in ("data_sha256", "data_rows", "schema_name", "schema_sha256", "git_commit", "package_versions",
                "trained_at", "classifier", "sampler", "threshold", "artifact_sha256", "scoring_single_row_ms",
                "scoring_batch_10k_ms"):
        assert shown["tags"].get(tag), tag
    assert shown["version"] == "3"
    assert shown["tags"]["data_rows"] == str(out3["grid"] and len(pd.read_csv(data).drop_duplicates()))
    listing = invoke_cli(["registry", "list"], check=True).stdout
    assert "v3" in listing and "champion" in listing

    assert "champion: v3 -> v1" in invoke_cli(["registry", "rollback"], check=True).stdout
    assert json.loads(invoke_cli(["registry", "show", "champion"], check=True).stdout)["version"] == "1"


def test_batch_scoring_csv_and_parquet(trained_in_place, tmp_path):
    inp = tmp_path / "score.csv"
    generate_synthetic(1200, seed=99).drop(columns=["default"]).to_csv(inp, index=False)
    for name in ("scored.csv", "scored.parquet"):
        out = invoke_cli(["predict", "-i", inp, "-o", tmp_path / name, "--chunk-size", "500", "-q"], check=True)
        assert f"scored 1200 of 1200 rows -> {tmp_path / name}" in out.stdout
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == 1200 and {"prediction", "probability"} <= set(scored.columns)
    assert scored["probability"].between(0, 1).all()
    parquet = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(parquet) == 1200 and np.allclose(parquet["probability"], scored["probability"], atol=1e-9)


def test_same_data_config_and_seed_give_same_metrics(trained_copy):
    b = json.loads(invoke_cli(["train", "--config", trained_copy.config, "--data", trained_copy.data, "--json",
                               "-q"], check=True).stdout)
    a = trained_copy.out
    assert a["cv"] == b["cv"] and a["holdout"] == b["holdout"] and a["threshold"] == b["threshold"]
    assert a["selected"] == b["selected"]


def test_uci_coded_columns_are_accepted(tmp_path, cli_env):
    from app.config import PROJECT_ROOT
    from app.schema import DatasetSchema

    schema = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
    frame = generate_synthetic(2500, seed=5).rename(columns={v: k for k, v in schema.source_columns.items()})
    p = tmp_path / "coded.csv"
    frame.to_csv(p, index=False)
    proc = invoke_cli(["data", "validate", "--data", p])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 error(s)" in proc.stdout


def _bad(frame, kind):
    if kind == "wrong_type":
        frame = frame.astype({"age": object})
        frame.loc[3, "age"] = "abc"
    elif kind == "out_of_range":
        frame.loc[3, "limit_bal"] = -100
    elif kind == "unknown_category":
        frame.loc[3, "marriage"] = 7
    elif kind == "missing_class":
        frame = frame[frame["default"] == 0]
    return frame


@pytest.mark.parametrize("kind, expect", [
    ("wrong_type", "[error] age: 1 value(s) are not numbers (e.g. line 5='abc')"),
    ("out_of_range", "[error] limit_bal: 1 value(s) outside [0, 10000000] (e.g. line 5=-100)"),
    ("unknown_category", "[error] marriage: 1 value(s) with unknown codes [7]; allowed [1, 2, 3]"),
    ("missing_class", "[error] default: target class 1 has no rows"),
    ("empty", "data file is empty"),
])
def test_invalid_data_stops_training_and_registers_nothing(tmp_path, cli_env, small_config, kind, expect):
    p = tmp_path / f"{kind}.csv"
    if kind == "empty":
        p.write_text("")
    else:
        _bad(generate_synthetic(600, seed=1), kind).to_csv(p, index=False)
    proc = invoke_cli(["train", "--config", small_config, "--data", p, "-q"])
    assert proc.returncode == 1, proc.stderr
    assert expect in proc.stderr
    assert "nothing was registered" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "no versions registered" in invoke_cli(["registry", "list"], check=True).stdout


def test_gate_failure_exits_3_and_is_not_promoted(tmp_path, cli_env, data_csv):
    cfg = tmp_path / "strict.yaml"
    cfg.write_text(yaml.safe_dump({"cv_folds": 3, "classifiers": ["xgboost"], "samplers": ["none"],
                                   "xgboost": {"n_estimators": 20}, "gate": {"floors": {"roc_auc": 0.999}}}))
    proc = invoke_cli(["train", "--config", cfg, "--data", data_csv, "--json", "-q"])
    assert proc.returncode == 3
    out = json.loads(proc.stdout)
    assert out["gate"]["passed"] is False and "roc_auc" in out["gate"]["reasons"][0]
    assert out["alias"] is None
    shown = json.loads(invoke_cli(["registry", "show", out["version"]], check=True).stdout)
    assert shown["aliases"] == [] and shown["tags"]["gate_passed"] == "false"
    proc = invoke_cli(["registry", "promote", out["version"], "--alias", "champion"])
    assert proc.returncode == 1 and "failed the quality gate" in proc.stderr


def test_multiclass_trains_end_to_end(tmp_path, cli_env, small_config):
    cfg = yaml.safe_load(small_config.read_text())
    cfg["gate"] = {"floors": {"roc_auc": 0.7, "f1_macro": 0.5}}  # a 3-class model on 3k rows with 40 trees
    small_config.write_text(yaml.safe_dump(cfg))
    p = tmp_path / "three.csv"
    invoke_cli(["data", "make-synthetic", "--rows", "3000", "--classes", "3", "-o", p], check=True)
    proc = invoke_cli(["train", "--config", small_config, "--data", p, "--schema",
                       "data/schemas/credit_rating_3class.yaml", "--json", "-q"], check=True)
    out = json.loads(proc.stdout)
    assert out["alias"] == "champion" and out["threshold"] is None
    assert REQUIRED <= set(out["holdout"]) and "ks" not in out["holdout"]
    assert len(out["grid"]) == 10
    inp = tmp_path / "in.csv"
    pd.read_csv(p).head(300).to_csv(inp, index=False)
    invoke_cli(["predict", "-i", inp, "-o", tmp_path / "out.csv", "-q"], check=True)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert {"probability_Good", "probability_Standard", "probability_Poor"} <= set(scored.columns)
    assert set(scored["prediction"]) <= {"Good", "Standard", "Poor"}


# ---- the real console script, in a subprocess ------------------------------------------------------------
def test_console_script_help(cli_env):
    proc = run_cli(["--help"], os.environ)
    assert proc.returncode == 0 and "Usage: credit-score" in proc.stdout
    for group in ("data", "train", "registry", "predict", "monitor", "abtest", "serve", "bootstrap"):
        assert f"  {group} " in proc.stdout, group


def test_console_script_trains_and_scores(tmp_path, cli_env, data_csv, tiny_config):
    out = json.loads(run_cli(["train", "--config", tiny_config, "--data", data_csv, "--json", "-q"], os.environ,
                             check=True).stdout)
    assert out["version"] == "1" and out["alias"] == "champion" and out["gate"]["passed"]
    inp = tmp_path / "score.csv"
    generate_synthetic(300, seed=3).drop(columns=["default"]).to_csv(inp, index=False)
    proc = run_cli(["predict", "-i", inp, "-o", tmp_path / "scored.csv", "-q"], os.environ, check=True)
    assert "scored 300 of 300 rows" in proc.stdout
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 300


def test_no_register_trains_and_gates_but_writes_nothing_to_the_registry(trained_copy, tiny_config, tmp_path):
    """A pull-request build (`make train-check`): the same training and gate against the champion, a local
    bundle, the summary for the termination message; the registry keeps exactly what it had."""
    before = invoke_cli(["registry", "list", "--json"], check=True).stdout
    summary = tmp_path / "summary.json"
    out = json.loads(invoke_cli(["train", "--config", tiny_config, "--data", trained_copy.data, "--json", "-q",
                                 "--no-register", "--summary-file", summary], check=True).stdout)
    assert out["version"] is None and out["alias"] is None and out["gate"]["passed"] is True
    assert (Path(out["bundle"]) / "bundle.json").exists()
    assert invoke_cli(["registry", "list", "--json"], check=True).stdout == before
    short = json.loads(summary.read_text())
    assert set(short) == {"version", "alias", "gate", "selected", "holdout"} and short["gate"] == out["gate"]
    assert len(summary.read_bytes()) <= 4096
