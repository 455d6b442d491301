"""`credit-score predict` in the format training accepted: the schema's names or the source names (UCI codes),
any column order, extra columns carried along, the target optional (ignored and reported, or used by
--evaluate); rows that fail the schema go to --rejects with their row number and reason and the exit code is 4;
a file that cannot be scored at all is one message and exit 1, never a traceback.

On the session's trained store (tests/integration/conftest.py: 2,500 synthetic rows, UCI schema)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.cli import UNEXPECTED
from app.config import PROJECT_ROOT
from app.datasets import generate_synthetic
from app.exit_codes import EXIT_REJECTED
from app.schema import DatasetSchema
from tests.cli_runner import invoke_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
CODES = {f.name: f.source for f in SCHEMA.features} | {SCHEMA.target.name: SCHEMA.target.source}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return generate_synthetic(400, seed=21)


def _clean(proc) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and f"error: {UNEXPECTED}" not in out, out
    return out


def test_uci_codes_without_target_keep_the_input_columns_and_order(trained_in_place, rows, tmp_path):
    coded = rows.drop(columns=["default"]).rename(columns=CODES)
    coded = coded[list(reversed(coded.columns))]
    coded.insert(0, "ID", np.arange(1, len(coded) + 1))
    coded["branch"] = "north"  # a column the schema does not know: carried along
    inp, out = tmp_path / "coded.csv", tmp_path / "scored.csv"
    coded.to_csv(inp, index=False)
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("row,reason\n1,stale\n")
    proc = invoke_cli(["predict", "-i", inp, "-o", out, "-q", "--rejects", rejects])
    assert proc.returncode == 0, _clean(proc)
    assert "scored 400 of 400 rows" in proc.stdout and "target column" not in proc.stderr
    assert rejects.read_text() == "row,reason\n"  # no row failed: the header alone, not an earlier run's rows
    scored = pd.read_csv(out)
    assert list(scored.columns) == [*coded.columns, "prediction", "probability"]
    pd.testing.assert_frame_equal(scored[coded.columns], coded, check_dtype=False)
    assert set(scored["prediction"]) <= {0, 1} and scored["probability"].between(0, 1).all()

    # the same rows under the schema's names give the same probabilities
    named = tmp_path / "named.csv"
    rows.drop(columns=["default"]).to_csv(named, index=False)
    invoke_cli(["predict", "-i", named, "-o", tmp_path / "named-out.csv", "-q"], check=True)
    assert np.allclose(pd.read_csv(tmp_path / "named-out.csv")["probability"], scored["probability"])


def test_a_present_target_is_reported_and_evaluate_prints_metrics(trained_in_place, rows, tmp_path):
    inp = tmp_path / "with-target.csv"
    rows.rename(columns=CODES).to_csv(inp, index=False)
    proc = invoke_cli(["predict", "-i", inp, "-o", tmp_path / "out.csv", "-q"])
    assert proc.returncode == 0, _clean(proc)
    assert "the target column 'Y' is in the input: ignored for scoring" in proc.stderr
    assert list(pd.read_csv(tmp_path / "out.csv").columns)[:24] == list(rows.rename(columns=CODES).columns)

    proc = invoke_cli(["predict", "-i", inp, "-o", tmp_path / "out.csv", "-q", "--evaluate"])
    assert proc.returncode == 0, _clean(proc)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("evaluation on 400 row(s):"))
    auc = float(line.split("roc_auc ")[1].split(",")[0])
    assert 0.6 < auc <= 1.0, line

    proc = invoke_cli(["predict", "-i", tmp_path / "out.csv", "-o", tmp_path / "o2.csv", "-q", "--evaluate"])
    assert proc.returncode == 0  # the scored file (target, prediction, probability) scores again
    no_target = tmp_path / "no-target.csv"
    rows.drop(columns=["default"]).to_csv(no_target, index=False)
    proc = invoke_cli(["predict", "-i", no_target, "-o", tmp_path / "o3.csv", "-q", "--evaluate"])
    assert proc.returncode == 1 and "--evaluate needs the target column 'default' (or 'Y')" in _clean(proc)


def test_bad_rows_go_to_the_rejects_file_and_the_rest_is_scored(trained_in_place, rows, tmp_path):
    bad = rows.drop(columns=["default"]).astype({"age": object})
    bad.loc[3, "age"] = "abc"
    bad.loc[10, "marriage"] = 9
    bad.loc[250, "limit_bal"] = -5
    bad.loc[251, "sex"] = None
    inp, out, rejects = tmp_path / "bad.csv", tmp_path / "scored.parquet", tmp_path / "rejects.csv"
    bad.to_csv(inp, index=False)
    proc = invoke_cli(["predict", "-i", inp, "-o", out, "--rejects", rejects, "-q", "--chunk-size", "128"])
    assert proc.returncode == EXIT_REJECTED, _clean(proc)
    assert "scored 396 of 400 rows" in proc.stdout and f"rejected 4 row(s) that fail the schema -> {rejects}" \
        in proc.stderr
    rej = pd.read_csv(rejects)
    assert list(rej["row"]) == [4, 11, 251, 252]
    assert list(rej["reason"]) == ["age: 'abc' is not a number",
                                   "marriage: 9 is not one of the categories [1, 2, 3]",
                                   "limit_bal: -5 is outside [0, 10000000]",
                                   "sex: is missing and the column is not nullable"]
    assert list(rej.columns) == ["row", "reason", *bad.columns]
    scored = pd.read_parquet(out)
    assert len(scored) == 396 and list(scored.columns) == [*bad.columns, "prediction", "probability"]

    # without --rejects: the first ones on stderr, same exit code
    proc = invoke_cli(["predict", "-i", inp, "-o", tmp_path / "s.csv", "-q"])
    assert proc.returncode == EXIT_REJECTED
    assert "  row 11: marriage: 9 is not one of the categories [1, 2, 3]" in _clean(proc)


def test_every_row_rejected_still_writes_the_columns(trained_in_place, rows, tmp_path):
    bad = rows.drop(columns=["default"]).head(5).assign(age=500)
    inp = tmp_path / "old.csv"
    bad.to_csv(inp, index=False)
    proc = invoke_cli(["predict", "-i", inp, "-o", tmp_path / "out.csv", "-q"])
    assert proc.returncode == EXIT_REJECTED and "scored 0 of 5 rows" in _clean(proc)
    assert list(pd.read_csv(tmp_path / "out.csv").columns) == [*bad.columns, "prediction", "probability"]


@pytest.mark.parametrize("kind, message", [
    ("column_missing", "the input lacks 2 column(s) of the model's schema 'uci_credit_default': 'age' (or 'X5'), "
                       "'pay_0' (or 'X6')"),
    ("other_schema", "lacks 23 column(s)"),
    ("empty", "input file is empty"),
    ("header_only", "input file has no data rows"),
    ("not_csv", "cannot read"),
    ("not_parquet", "as Parquet"),
])
def test_a_file_that_cannot_be_scored_is_one_message(trained_in_place, rows, tmp_path, kind, message):
    inp = tmp_path / ("in.parquet" if kind == "not_parquet" else "in.csv")
    if kind == "column_missing":
        rows.drop(columns=["age", "pay_0"]).to_csv(inp, index=False)
    elif kind == "other_schema":
        pd.DataFrame({"Loan Amount (EUR)": [100.0], "Gender": ["male"]}).to_csv(inp, index=False)
    elif kind == "empty":
        inp.write_text("")
    elif kind == "header_only":
        inp.write_text(",".join(rows.columns) + "\n")
    elif kind == "not_csv":
        inp.write_bytes(b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256)) * 8)
    else:
        rows.to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    proc = invoke_cli(["predict", "-i", inp, "-o", out, "-q"])
    assert proc.returncode == 1, _clean(proc)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("credit-score: error:") and message in lines[-1], proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part"))
