"""The Open Inference Protocol's own clients against the real service: Triton's `tritonclient.http`
InferenceServerClient and KServe's InferenceRESTClient, run by .venv-oip's python (tests/integration/
oip_clients.py), call `credit-score serve` (gunicorn) on a trained store: server liveness and readiness, model
readiness, metadata, and inference on one row and on a batch, in JSON and with the binary tensor data
extension. Their probabilities are those /predict gives for the same rows.

`make test` creates .venv-oip first (`make oip-clients`); run alone without it, the test skips and says so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.config import PROJECT_ROOT
from tests.integration.test_serve_gunicorn import Server, http, server_env
from tests.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OIP_PYTHON = PROJECT_ROOT / ".venv-oip" / "bin" / "python"
SCRIPT = Path(__file__).with_name("oip_clients.py")
MODEL = "credit-score"


@pytest.fixture
def served(trained_copy):
    root = trained_copy.root
    s = Server(server_env(root, CREDIT_SCORE_LOG_LEVEL="WARNING"), free_port(), root / "oip-server.log")
    yield s, trained_copy
    s.stop()


def _plain(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def test_triton_and_kserve_clients_live_ready_metadata_and_infer(served):
    if not OIP_PYTHON.exists():
        pytest.skip(f"{OIP_PYTHON} is missing: `make oip-clients` creates it (`make test` does so first)")
    server, trained = served
    meta = json.loads(http("GET", f"{server.base}/v2/models/{MODEL}")[1])
    names = [i["name"] for i in meta["inputs"]]
    X = pd.read_csv(trained.data)[names].dropna().to_numpy(dtype=np.float64)[:40]  # noqa: N806
    expected = []
    for row in X:
        status, body, _ = http("POST", f"{server.base}/predict?explain=none",
                               {f: _plain(v) for f, v in zip(names, row, strict=True)})
        assert status == 200, body
        expected.append(json.loads(body)["probability"])

    proc = subprocess.run([str(OIP_PYTHON), str(SCRIPT), server.base, MODEL, json.dumps(X.tolist())],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:] + server.log.read_text()[-2000:]
    seen = json.loads(proc.stdout)

    for client in ("triton", "kserve"):
        got = seen[client]
        assert got["live"] is True and got["ready"] is True and got["model_ready"] is True, (client, got)
        assert got["metadata"]["name"] == MODEL and [i["name"] for i in got["metadata"]["inputs"]] == names
        assert {o["name"] for o in got["metadata"]["outputs"]} >= {"prediction", "probability"}
        modes = ("json", "binary", "default") if client == "triton" else ("json", "binary")
        for mode in modes:
            for n in (1, len(X)):
                r = got[f"infer_{mode}_{n}"]
                assert r["id"] == f"{client}-{mode}-{n}"
                assert len(r["probability"]) == n and len(r["prediction"]) == n
                # /predict scores one row at a time; a batch may differ by float32 rounding (XGBoost sums its
                # trees in float32: ~3e-8 here), and so, rarely, in the 6th decimal once rounded
                if mode == "json":  # rounded to 6 decimals, as /predict
                    assert r["outputs"].get("binary", []) == [], (client, mode, n)
                    assert r["probability"] == pytest.approx(expected[:n], rel=0, abs=1.1e-6), (client, mode, n)
                    assert r["outputs"]["order"] == ["probability", "prediction"]
                else:  # float64 as computed
                    assert r["probability"] == pytest.approx(expected[:n], rel=0, abs=6e-7), (client, mode, n)
                    want = ["probability", "prediction"] if mode == "binary" else ["prediction", "probability"]
                    assert r["outputs"]["order"] == want, (client, mode, r)
                    assert r["outputs"].get("binary", want) == want, (client, mode, r)
                if client == "kserve":
                    binary = r["content_type"] == "application/octet-stream" and int(r["header_length"] or 0) > 0
                    assert binary == (mode == "binary"), r
    by_version = seen["triton"]["by_version"]
    assert by_version["model_ready"] is True and by_version["metadata"] == [trained.out["version"]]
    assert by_version["probability"] == pytest.approx(expected, rel=0, abs=6e-7)
    assert "unhandled error" not in server.log.read_text()
