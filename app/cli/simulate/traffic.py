"""The simulation's clients of the running service: applications to ``/predict``, outcomes to ``/feedback``, a
steady trickle of requests while models change, and the count of every request that failed.

A request fails when it gets no answer (connection refused or reset, timeout) or any status but 200. Every
request goes through :class:`Client`, so its ``failed`` count covers the whole run.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Scored:
    """One answered application: who scored it, what it said, what really happened (known to the simulation,
    posted to /feedback later)."""

    prediction_id: str
    variant: str
    version: str
    probability: float
    outcome: int


@dataclass
class Round:
    """One batch of traffic: its label (the chart's x axis), the answers, and ROC-AUC per variant."""

    label: str
    phase: str
    scored: list[Scored]
    auc: dict[str, float] = field(default_factory=dict)  # variant (and "all") -> ROC-AUC on its outcomes


class Client:
    def __init__(self, base: str, feedback_token: str, workers: int = 4, timeout: float = 15.0):
        self.base, self.token, self.workers, self.timeout = base, feedback_token, workers, timeout
        self.sent = 0
        self.failed = 0
        self.failures: list[str] = []  # the first few, for the report
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
             ) -> dict[str, Any] | None:
        """The JSON answer of a 200, else None (counted as failed, whatever went wrong)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,  # noqa: S310 (http, loopback)
                                     headers={"Content-Type": "application/json", **(headers or {})})
        problem = None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 (our own server, loopback)
                out = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            problem = f"{method} {path}: HTTP {e.code}"
        except (OSError, ValueError) as e:
            problem = f"{method} {path}: {type(e).__name__}: {e}"
        with self._lock:
            self.sent += 1
            if problem:
                self.failed += 1
                if len(self.failures) < 10:
                    self.failures.append(problem)
        return None if problem else out

    def get(self, path: str) -> dict[str, Any] | None:
        return self.call("GET", path)

    def score(self, rows: list[dict[str, int]], outcomes: Iterable[int]) -> list[Scored]:
        """Send each application to /predict (in parallel, like independent clients); the answered ones."""
        def one(item: tuple[dict[str, int], int]) -> Scored | None:
            out = self.call("POST", "/predict?explain=none", item[0])
            if out is None:
                return None
            return Scored(out["prediction_id"], out.get("variant", "champion"), str(out["model"]["version"]),
                          float(out["probability"]), int(item[1]))

        with ThreadPoolExecutor(self.workers) as pool:
            return [s for s in pool.map(one, zip(rows, outcomes, strict=True)) if s is not None]

    def feedback(self, scored: list[Scored], chunk: int = 500, timeout: float = 30.0) -> int:
        """Post the outcomes that have "arrived"; how many the service recorded. The service writes predictions
        to the store in the background (within a second): an outcome for one not written yet comes back
        ``unknown`` and is posted again, until the deadline."""
        import time

        recorded, pending = 0, list(scored)
        deadline = time.monotonic() + timeout
        while pending:
            unknown: list[Scored] = []
            for i in range(0, len(pending), chunk):
                part = pending[i:i + chunk]
                body = {"outcomes": [{"prediction_id": s.prediction_id, "outcome": s.outcome} for s in part]}
                out = self.call("POST", "/feedback", body, {"Authorization": f"Bearer {self.token}"}) or {}
                recorded += int(out.get("recorded", 0))
                missing = set(out.get("unknown") or [])
                unknown += [s for s in part if s.prediction_id in missing]
            if not unknown or time.monotonic() > deadline:
                break
            pending = unknown
            time.sleep(0.3)
        return recorded

    def serving(self) -> dict[str, str | None]:
        """The versions the answering worker serves: {"champion": "1", "challenger": None}."""
        info = self.get("/model/info") or {}
        return {k: str((info.get(k) or {}).get("version")) if info.get(k) else None
                for k in ("champion", "challenger")}


class Trickle:
    """A steady background stream of applications (a few a second) while models are retrained, promoted and
    rolled back: any request that fails during a reload is counted by the client."""

    def __init__(self, client: Client, rows: list[dict[str, int]], interval: float = 0.1):
        self.client, self.rows, self.interval = client, rows, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulate-trickle", daemon=True)
        self.versions: set[str] = set()

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(self.interval):
            out = self.client.call("POST", "/predict?explain=none", self.rows[i % len(self.rows)])
            if out is not None:
                self.versions.add(str(out["model"]["version"]))
            i += 1

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def requests_of(frame: pd.DataFrame, features: list[str], target: str) -> tuple[list[dict[str, int]], list[int]]:
    """Request bodies (the schema's names, plain ints) and the true outcome of each applicant."""
    rows = [{k: int(v) for k, v in r.items()} for r in frame[features].astype(int).to_dict(orient="records")]
    return rows, [int(v) for v in frame[target]]


def roc_auc(scored: list[Scored]) -> float:
    """ROC-AUC of the answers on their outcomes (NaN with one class only)."""
    from sklearn.metrics import roc_auc_score

    y = np.array([s.outcome for s in scored])
    if len(set(y.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.array([s.probability for s in scored])))


def measure(label: str, phase: str, scored: list[Scored]) -> Round:
    """A round with its ROC-AUC overall and per variant (variant = the model version that answered)."""
    rnd = Round(label, phase, scored, {"all": roc_auc(scored)})
    for version in sorted({s.version for s in scored}, key=int):
        rnd.auc[f"v{version}"] = roc_auc([s for s in scored if s.version == version])
    return rnd
