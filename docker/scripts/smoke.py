#!/usr/bin/env python3
"""Smoke test of a running credit-score service (`make smoke`, Jenkins "Smoke test" stages, container tests).

    smoke.py --url http://127.0.0.1:8000 [--timeout 120] [--body applicant.json] [--expect-version 7]

Checks, in order: GET /health answers 200 (retried until --timeout: the container may still be starting);
GET /ready answers 200 (a verified model is loaded; retried); POST /predict with one applicant answers 200
with a prediction, a probability in [0, 1] and the model's name and version (and that version, when
--expect-version is given); GET /metrics is Prometheus text with credit_score_ series; GET /openapi.json is
JSON. With --public (the URL is the public entry: an Ingress or the proxy), the last two are reversed:
/metrics, /docs and /openapi.json must NOT answer 200 there. Prints one line per check; exit 0 when all pass, 1
otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

# one applicant with every feature of the default schema (data/schemas/uci_credit.yaml)
APPLICANT = {
    "limit_bal": 120000, "sex": 2, "education": 2, "marriage": 2, "age": 35,
    "pay_0": 0, "pay_2": 0, "pay_3": 0, "pay_4": 0, "pay_5": 0, "pay_6": 0,
    "bill_amt1": 45000, "bill_amt2": 43000, "bill_amt3": 41000, "bill_amt4": 39000, "bill_amt5": 37000,
    "bill_amt6": 35000, "pay_amt1": 2000, "pay_amt2": 2000, "pay_amt3": 1800, "pay_amt4": 1500,
    "pay_amt5": 1500, "pay_amt6": 1500,
}


class SmokeFailure(Exception):
    pass


def request(url: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",  # noqa: S310
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (URL given by the operator)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(url: str, deadline: float) -> bytes:
    last = "no answer"
    while True:
        try:
            status, payload = request(url, timeout=5)
            if status == 200:
                return payload
            last = f"HTTP {status}: {payload[:200]!r}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{url} not 200 in time (last: {last})")
        time.sleep(1)


INTERNAL_PATHS = ("/metrics", "/docs", "/openapi.json")  # never published through the public entry


def run(base: str, timeout: float, body: dict, expect_version: str | None, public: bool = False) -> list[str]:
    base = base.rstrip("/")
    deadline = time.monotonic() + timeout
    done = []

    wait_for(f"{base}/health", deadline)
    done.append("GET /health 200")

    ready = json.loads(wait_for(f"{base}/ready", deadline))
    done.append(f"GET /ready 200 {json.dumps(ready, sort_keys=True)}")

    status, payload = request(f"{base}/predict", body)
    if status != 200:
        raise SmokeFailure(f"POST /predict answered {status}: {payload[:500]!r}")
    answer = json.loads(payload)
    for key in ("prediction", "probability", "model"):
        if key not in answer:
            raise SmokeFailure(f"POST /predict answer has no {key!r}: {answer}")
    p = answer["probability"]
    if not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise SmokeFailure(f"POST /predict probability {p!r} is not in [0, 1]")
    model = answer["model"]
    if not model.get("name") or not model.get("version"):
        raise SmokeFailure(f"POST /predict answer names no model version: {model}")
    if expect_version is not None and str(model["version"]) != str(expect_version):
        raise SmokeFailure(f"served model version {model['version']}, expected {expect_version}")
    done.append(f"POST /predict 200 prediction={answer['prediction']} probability={p:.4f} "
                f"model={model['name']} v{model['version']}")

    if public:
        for path in INTERNAL_PATHS:
            status, _ = request(f"{base}{path}")
            if status == 200:
                raise SmokeFailure(f"GET {path} answered 200 through the public entry (it must not be published)")
            done.append(f"GET {path} {status} (not published)")
        return done

    status, payload = request(f"{base}/metrics")
    if status != 200 or b"credit_score_" not in payload:
        raise SmokeFailure(f"GET /metrics answered {status} without credit_score_ series")
    done.append("GET /metrics 200")

    status, payload = request(f"{base}/openapi.json")
    if status != 200:
        raise SmokeFailure(f"GET /openapi.json answered {status}")
    json.loads(payload)
    done.append("GET /openapi.json 200")
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="base URL of the service, e.g. http://127.0.0.1:8000")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /health and /ready [120]")
    p.add_argument("--body", help="JSON file with one applicant (default: a built-in valid applicant)")
    p.add_argument("--expect-version", help="fail unless this model version answers")
    p.add_argument("--public", action="store_true",
                   help="the URL is the public entry: /metrics, /docs and /openapi.json must not answer 200")
    a = p.parse_args(argv)
    body = APPLICANT
    if a.body:
        with open(a.body) as f:
            body = json.load(f)
    try:
        for line in run(a.url, a.timeout, body, a.expect_version, a.public):
            print(f"ok   {line}")
    except (SmokeFailure, ValueError) as e:
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    print(f"smoke test of {a.url} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
