"""Prediction-store overhead: /predict throughput with the store enabled vs disabled, measured in the same run.

    python bench/store_bench.py [--duration 10] [--rounds 3] [--connections 16]

1. Trains an XGBoost model on the UCI data (../shared/data when present, else synthetic) into a temporary store
   (the same model as bench/serve_bench.py).
2. Starts two `credit-score serve` instances (2 workers each) on the same registry: one with
   CREDIT_SCORE_STORE_URL=none, one with the embedded default store (SQLite file, background writer per worker).
3. Drives single-row /predict (a real UCI row, default response with reason codes) with wrk, alternating the two
   (A B, then B A, ...) so that the load of a shared machine falls on both alike; each run is `--duration` s.
   The verdict uses the median over rounds of enabled/disabled (adjacent runs), robust to other jobs' load.
4. Checks afterwards that the store holds every prediction the enabled instance answered (none dropped).
Prints throughput, p50/p99 latency and non-2xx per run and in total, and the ratio enabled/disabled.
Target: ratio >= 0.85, zero non-2xx, zero dropped records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from serve_bench import BIN, UCI, free_port, stop, wait_http, wrk

from app.config import PROJECT_ROOT
from app.datasets import generate_synthetic, read_table
from app.schema import DatasetSchema


def metric_sum(base: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:  # noqa: S310 (loopback)
        text = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=6, help="runs per configuration (alternating)")
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)")
        return 2
    schema = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    env.update(CREDIT_SCORE_MODELS_DIR=str(tmp / "models"), CREDIT_SCORE_REPORTS_DIR=str(tmp / "reports"),
               CREDIT_SCORE_LOG_LEVEL="WARNING")
    data = UCI if UCI.exists() else tmp / "synthetic.csv"
    if not UCI.exists():
        generate_synthetic(30_000, 42).to_csv(data, index=False)
    cfg = tmp / "bench.yaml"
    cfg.write_text(yaml.safe_dump({"classifiers": ["xgboost"], "samplers": ["none"]}))
    print(f"training an XGBoost model on {data.name} ...", flush=True)
    subprocess.run([str(BIN / "credit-score"), "train", "--data", str(data), "--config", str(cfg), "--json", "-q"],
                   env=env, capture_output=True, text=True, check=True)
    row = read_table(data, schema)[schema.feature_names].iloc[0]
    applicant = {k: (int(v) if float(v).is_integer() else float(v)) for k, v in row.items()}
    if applicant["education"] in (0, 5, 6):
        applicant["education"] = 4
    body = json.dumps(applicant)
    db = tmp / "models" / "predictions.db"

    configs = {"store disabled": {"CREDIT_SCORE_STORE_URL": "none"},
               "store enabled": {"CREDIT_SCORE_STORE_URL": f"sqlite:///{db}"}}
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    try:
        for name, extra in configs.items():
            port = free_port()
            e = dict(env, PROMETHEUS_MULTIPROC_DIR=str(tmp / f"prom-{port}"), **extra)
            proc = subprocess.Popen([str(BIN / "credit-score"), "serve", "--port", str(port), "--workers", "2"], env=e,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            servers[name] = (proc, f"http://127.0.0.1:{port}")
        for _, base in servers.values():
            wait_http(base + "/ready")
            wrk(base + "/predict", body, 3, args.connections, tmp)  # warm-up
        order = list(configs)
        for r in range(args.rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                res = wrk(servers[name][1] + "/predict", body, args.duration, args.connections, tmp)
                runs[name].append(res)
                print(f"round {r + 1} {name:15s} {res['rps']:9.1f} req/s  p99 {res['p99_ms']:6.2f} ms  "
                      f"non-2xx {res['non2xx'] + res['socket_errors']}", flush=True)
        base = servers["store enabled"][1]
        answered = metric_sum(base, "credit_score_predictions_total")
        deadline = time.time() + 30
        while time.time() < deadline and metric_sum(base, "credit_score_store_written_total") < answered:
            time.sleep(0.5)
        written = metric_sum(base, "credit_score_store_written_total")
        dropped = metric_sum(base, "credit_score_store_dropped_total")
    finally:
        for proc, _ in servers.values():
            stop(proc)
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("select count(*) from predictions").fetchone()[0]

    def total(name: str) -> dict[str, float]:
        rs = runs[name]
        return {"rps": sum(r["rps"] for r in rs) / len(rs), "p50_ms": sorted(r["p50_ms"] for r in rs)[len(rs) // 2],
                "p99_ms": max(r["p99_ms"] for r in rs), "errors": sum(r["non2xx"] + r["socket_errors"] for r in rs)}

    off, on = total("store disabled"), total("store enabled")
    # adjacent runs (one pair per round) saw about the same machine load: the median of their ratios is robust to
    # other jobs on a shared machine; the ratio of the means is printed beside it
    pairs = sorted(b["rps"] / a["rps"] for a, b in zip(runs["store disabled"], runs["store enabled"], strict=True))
    median = pairs[len(pairs) // 2] if len(pairs) % 2 else (pairs[len(pairs) // 2 - 1] + pairs[len(pairs) // 2]) / 2
    print(f"\n{'configuration':16s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for name, t in (("store disabled", off), ("store enabled", on)):
        print(f"{name:16s} {t['rps']:9.1f} {t['p50_ms']:8.2f} {t['p99_ms']:8.2f} {t['errors']:7.0f}")
    print(f"\npredictions answered by the enabled instance {answered:.0f}, written {written:.0f}, rows in the store "
          f"{rows}, dropped {dropped:.0f}")
    print("enabled/disabled per round: " + ", ".join(f"{p:.3f}" for p in pairs)
          + f"; ratio of the means {on['rps'] / off['rps']:.3f}")
    checks = {"enabled/disabled >= 0.85": (median, median >= 0.85),
              "errors == 0": (off["errors"] + on["errors"], off["errors"] + on["errors"] == 0),
              "dropped == 0": (dropped, dropped == 0),
              "store rows == answered": (rows, rows == answered)}
    print()
    for k, (v, ok) in checks.items():
        print(f"{k:26s} {v:10.3f}  {'PASS' if ok else 'MISS'}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(ok for _, ok in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
