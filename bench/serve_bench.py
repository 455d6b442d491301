"""Serving benchmark: the champions users actually serve, beside the bare floor and KServe, in one run.

    python bench/serve_bench.py [--duration 20] [--connections 16] [--cache DIR]

1. Trains (once; ``--cache`` keeps the stores between runs) on the UCI data (../shared/data when present, else
   synthetic): the default grid, whose champion is what a user serves (on the UCI data a RandomForest), and an
   XGBoost-only grid (and a RandomForest-only one if the default grid picked XGBoost).
2. For each of those champions, starts `credit-score serve` (2 workers, default settings: INFO JSON logs to a
   file, the prediction store on) and measures: wrk on single-row /predict (a real UCI row, the default reason
   codes), the first ``?explain=exact`` request after the service is ready, a 10,000-row
   /predict/batch?explain=fast, and a 10,000-row Open Inference Protocol v2 batch with the binary tensor
   extension.
3. The floor: a bare Flask + XGBoost endpoint (``bench/bare_flask_app.py``: no validation, logs, metrics, reason
   codes or store) under gunicorn with 2 sync workers, serving the XGBoost champion, same row, same load.
4. KServe's own model server (``bench/kserve_xgb_server.py``, PyPI ``kserve`` in ``.venv-oip``, 2 workers)
   serving the same plain XGBoost booster over v2, same row (as the booster's input columns), same load.
Prints throughput, p50/p99 latency and non-2xx counts for each, and the targets as ratios within the run:
/predict >= 0.9x the bare floor and >= 1.1x KServe, p99 <= 20 ms, zero non-2xx, 10,000-row batch <= 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

from app.config import PROJECT_ROOT
from app.datasets import generate_synthetic, read_table
from app.schema import DatasetSchema

UCI = PROJECT_ROOT.parent / "shared" / "data" / "uci_credit_default.csv"
BIN = Path(sys.executable).parent
OIP_PYTHON = PROJECT_ROOT / ".venv-oip" / "bin" / "python"
BATCH_ROWS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback)
        return r.status, dict(r.headers), r.read()


def wait_http(url: str, timeout: float = 120, body: bytes | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            if http(url, body, {"Content-Type": "application/json"} if body else None, timeout=2)[0] == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, body: str | None, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if body is not None:
        script = workdir / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        args += ["-s", str(script)]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out.split("Socket errors:")[1])) \
        if "Socket errors:" in out else 0

    def pct(p: str) -> float:
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {"rps": rps, "requests": total, "non2xx": non2xx, "socket_errors": sock, "p50_ms": pct("50"),
            "p99_ms": pct("99")}


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            stop(proc)


def train(cache: Path, name: str, data: Path, config: dict, env: dict[str, str]) -> dict:
    """A store with one registered champion, trained once per cache directory."""
    done = cache / name / "train.json"
    if not done.exists():
        (cache / name).mkdir(parents=True, exist_ok=True)
        cfg = cache / name / "config.yaml"
        cfg.write_text(yaml.safe_dump(config))
        print(f"training {name} on {data.name} ...", flush=True)
        t0 = time.perf_counter()
        res = subprocess.run([str(BIN / "credit-score"), "train", "--data", str(data), "--config", str(cfg),
                              "--json", "-q"], env=store_env(env, cache / name), capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"training {name} failed: {res.stderr[-2000:]}")
        out = json.loads(res.stdout)
        out["train_s"] = round(time.perf_counter() - t0, 1)
        done.write_text(json.dumps(out))
    return json.loads(done.read_text())


def store_env(env: dict[str, str], store: Path) -> dict[str, str]:
    return dict(env, CREDIT_SCORE_MODELS_DIR=str(store / "models"), CREDIT_SCORE_REPORTS_DIR=str(store / "reports"))


def v2_binary_batch(rows: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """An Open Inference Protocol v2 request with the binary tensor data extension: the JSON header, then the
    tensor's raw little-endian bytes; the probability asked for as binary too."""
    raw = np.ascontiguousarray(rows, dtype="<f8").tobytes()
    header = json.dumps({"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "probability", "parameters": {"binary_data": True}}]}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header)),
                          "Content-Type": "application/octet-stream"}


def median_time(what: str, fn, runs: int = 3) -> float:
    """The median of ``runs`` timed calls, or NaN (and why) when a call fails: the rest of the run goes on."""
    times = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    except (OSError, AssertionError, KeyError, ValueError) as e:
        print(f"{what} failed: {e}", flush=True)
        return float("nan")
    return sorted(times)[len(times) // 2]


def bench_ours(label: str, store: Path, env: dict[str, str], applicant: dict, X: np.ndarray, a: argparse.Namespace,
               tmp: Path, results: dict, timings: dict) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    senv = dict(store_env(env, store), PROMETHEUS_MULTIPROC_DIR=str(tmp / f"prom-{label}"))
    with server([str(BIN / "credit-score"), "serve", "--port", str(port), "--workers", "2"], senv,
                tmp / f"{label}.log"):
        wait_http(base + "/ready")
        one = json.dumps(applicant).encode()
        t0 = time.perf_counter()
        status, _, _ = http(base + "/predict?explain=exact", one, {"Content-Type": "application/json"})
        timings[f"{label}: first exact after ready (ms)"] = (time.perf_counter() - t0) * 1000
        assert status == 200
        body = json.dumps(applicant)
        wrk(base + "/predict", body, 3, a.connections, tmp)  # warm-up
        results[f"{label} /predict"] = wrk(base + "/predict", body, a.duration, a.connections, tmp)
        batch = json.dumps({"instances": [applicant] * BATCH_ROWS}).encode()

        answers: list[bytes] = []

        def predict_batch() -> None:  # until the whole answer is read; the client's JSON parsing is not timed
            status, _, out = http(base + "/predict/batch?explain=fast", batch, {"Content-Type": "application/json"})
            assert status == 200
            answers.append(out)

        key = f"{label}: /predict/batch 10k fast (s)"
        timings[key] = median_time(key, predict_batch)
        assert all(json.loads(a)["count"] == BATCH_ROWS for a in answers)
        name = json.loads(http(base + "/model/info")[2])["champion"]["name"]
        v2_body, v2_headers = v2_binary_batch(X)

        def v2_batch() -> None:
            status, headers, out = http(f"{base}/v2/models/{name}/infer", v2_body, v2_headers)
            n = int(headers["Inference-Header-Content-Length"])
            assert status == 200 and len(np.frombuffer(out[n:], dtype="<f8")) == BATCH_ROWS

        key = f"{label}: /v2 10k binary (s)"
        timings[key] = median_time(key, v2_batch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--cache", type=Path, help="keep the trained stores here between runs")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)")
        return 2
    if not OIP_PYTHON.exists():
        print(f"{OIP_PYTHON} is missing: `make oip-clients` installs KServe there")
        return 2
    schema = DatasetSchema.load(PROJECT_ROOT / "data/schemas/uci_credit.yaml")
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    cache = a.cache or tmp / "stores"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_SCORE_", "MLFLOW_"))}
    data = UCI if UCI.exists() else tmp / "synthetic.csv"
    if not UCI.exists():
        generate_synthetic(30_000, 42).to_csv(data, index=False)

    grid = train(cache, "grid", data, {}, env)
    train(cache, "xgboost", data, {"classifiers": ["xgboost"], "samplers": ["none"]}, env)
    print(f"the default grid selected {grid['selected']['label']} (holdout ROC-AUC {grid['holdout']['roc_auc']:.4f})")
    forest = "grid"
    if grid["selected"]["classifier"] != "random_forest":
        forest = "random_forest"
        train(cache, forest, data, {"classifiers": ["random_forest"], "samplers": ["none"]}, env)

    table = read_table(data, schema)[schema.feature_names]
    row = table.iloc[0]
    applicant = {k: (int(v) if float(v).is_integer() else float(v)) for k, v in row.items()}
    applicant["education"] = min(applicant["education"], 4) if applicant["education"] in (0, 5, 6) else \
        applicant["education"]
    X = np.tile(np.asarray([applicant[n] for n in schema.feature_names], dtype=float), (BATCH_ROWS, 1))
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}

    bench_ours("ours RF", cache / forest, env, applicant, X, a, tmp, results, timings)
    bench_ours("ours XGB", cache / "xgboost", env, applicant, X, a, tmp, results, timings)
    body = json.dumps(applicant)

    bport = free_port()
    benv = dict(store_env(env, cache / "xgboost"), OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
    with server([str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{bport}", "--chdir", str(PROJECT_ROOT / "bench"),
                 "bare_flask_app:app"], benv, tmp / "bare.log"):
        bbase = f"http://127.0.0.1:{bport}"
        wait_http(bbase + "/predict", body=body.encode())  # no health route: up when a prediction answers
        wrk(bbase + "/predict", body, 3, a.connections, tmp)
        results["bare Flask+XGB /predict"] = wrk(bbase + "/predict", body, a.duration, a.connections, tmp)

    from app.config import get_settings
    from app.registry import Registry

    os.environ.update(store_env({}, cache / "xgboost"))
    get_settings.cache_clear()
    _, bundle = Registry(get_settings()).load("champion")
    (tmp / "kserve").mkdir()
    bundle.classifier.get_booster().save_model(str(tmp / "kserve" / "model.bst"))
    z = bundle.features.transform(X[:1])
    kbody = json.dumps({"inputs": [{"name": "input-0", "shape": list(z.shape), "datatype": "FP64",
                                    "data": z.ravel().tolist()}]})
    kport = free_port()
    with server([str(OIP_PYTHON), str(PROJECT_ROOT / "bench" / "kserve_xgb_server.py"), "--model_dir",
                 str(tmp / "kserve"), "--model_name", "credit-score", "--http_port", str(kport), "--workers", "2"],
                dict(env, OMP_NUM_THREADS="1"), tmp / "kserve.log"):
        kurl = f"http://127.0.0.1:{kport}/v2/models/credit-score/infer"
        wait_http(f"http://127.0.0.1:{kport}/v2/health/ready")
        wrk(kurl, kbody, 3, a.connections, tmp)
        results["KServe XGB /v2 infer"] = wrk(kurl, kbody, a.duration, a.connections, tmp)

    print(f"\n{'endpoint':26s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'requests':>9s} {'non-2xx':>8s}")
    for name, r in results.items():
        print(f"{name:26s} {r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['requests']:9d} "
              f"{r['non2xx'] + r['socket_errors']:8d}")
    print()
    for name, v in timings.items():
        print(f"{name:42s} {v:9.3f}")
    bare, kserve = results["bare Flask+XGB /predict"], results["KServe XGB /v2 infer"]
    ok = True
    print()
    for label in ("ours RF", "ours XGB"):
        r = results[f"{label} /predict"]
        checks = [(f"{label} /predict / bare >= 0.9", r["rps"] / bare["rps"], r["rps"] / bare["rps"] >= 0.9),
                  (f"{label} /predict / KServe >= 1.1", r["rps"] / kserve["rps"], r["rps"] / kserve["rps"] >= 1.1),
                  (f"{label} p99 <= 20 ms", r["p99_ms"], r["p99_ms"] <= 20),
                  (f"{label} non-2xx == 0", r["non2xx"] + r["socket_errors"],
                   r["non2xx"] + r["socket_errors"] == 0),
                  (f"{label} batch 10k <= 1 s", timings[f"{label}: /predict/batch 10k fast (s)"],
                   timings[f"{label}: /predict/batch 10k fast (s)"] <= 1.0)]
        for k, v, passed in checks:
            ok &= passed
            print(f"{k:36s} {v:10.3f}  {'PASS' if passed else 'MISS'}")
    print(f"{'bare / KServe':36s} {bare['rps'] / kserve['rps']:10.3f}  (context)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
