"""The model's life cycle, end to end, on the local stack (app/cli/simulate/stack.py): what
``credit-score simulate`` runs.

1. train v1 on the base population and make it champion; serve it (real gunicorn);
2. base traffic, then applications from a shifted population (an income shock and a younger product mix, with
   outcomes from the shifted truth: ``generate_synthetic(shift=...)``); their outcomes "arrive" and are posted
   to /feedback;
3. the monitor flags the drift and the drop in live ROC-AUC, and its retrain policy starts a real retrain job
   (process runner) that trains on the base file plus the labelled production rows; the gate judges the
   challenger against the champion on the newest production rows;
4. the service splits traffic between champion and challenger; outcomes; ``abtest report`` gives its verdict
   and ``abtest promote`` makes the challenger champion; live ROC-AUC recovers;
5. ``registry rollback`` restores v1, on the alias and on the serving workers.

A steady trickle of requests runs from the first shifted round to the end, so every reload (challenger loaded,
promotion, rollback) happens under load; every request of the run is counted and a failed one is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.cli.simulate.stack import SimulationError, Stack, wait_until
from app.cli.simulate.traffic import Client, Round, Trickle, measure, requests_of, roc_auc


@dataclass
class Plan:
    """The sizes of the run; :meth:`quick` is the test's setting."""

    seed: int = 42
    shift: float = 1.0
    base_rows: int = 3000
    warmup_rows: int = 400  # base-population traffic before the shift
    shifted_rounds: int = 2
    ab_rounds: int = 3
    round_rows: int = 1000
    eval_rows: int = 2000  # a fresh shifted sample: v1 and v2 both score it after the run
    n_estimators: int = 150
    ab_min_samples: int = 300

    @classmethod
    def quick(cls, seed: int = 42) -> Plan:
        """Smaller base data and model, less warm-up traffic (the A/B rounds keep their power)."""
        return cls(seed=seed, base_rows=2500, warmup_rows=300, eval_rows=1500, n_estimators=100)


@dataclass
class Outcome:
    """What the run found; ``to_dict`` is the JSON summary and the report's input."""

    workdir: Path
    store: str = ""
    versions: dict[str, str] = field(default_factory=dict)  # role -> version: v1, v2
    rounds: list[Round] = field(default_factory=list)
    monitor: dict[str, Any] = field(default_factory=dict)  # the run that triggered the retrain
    job: dict[str, Any] = field(default_factory=dict)
    abtest: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, float] = field(default_factory=dict)  # "v1"/"v2" -> ROC-AUC on the fresh shifted sample
    lineage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # version -> MLflow datasets
    steps: list[dict[str, Any]] = field(default_factory=list)  # name, seconds, note
    requests: dict[str, Any] = field(default_factory=dict)  # sent, failed, failures
    serving_after_rollback: list[str] = field(default_factory=list)
    champion_after_rollback: str | None = None
    error: str | None = None
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        rounds = [{"label": r.label, "phase": r.phase, "n": len(r.scored),
                   "roc_auc": {k: (None if np.isnan(v) else round(v, 4)) for k, v in r.auc.items()}}
                  for r in self.rounds]
        lineage = {v: [_dataset(d) for d in ds] for v, ds in self.lineage.items()}
        return {"workdir": str(self.workdir), "store": self.store, "versions": self.versions,
                "evaluation": self.evaluation, "gate": self.job.get("gate"), "job": self.job,
                "abtest": {k: self.abtest.get(k) for k in ("verdict", "reason", "test", "champion", "challenger")},
                "rounds": rounds, "requests": self.requests, "lineage": lineage,
                "serving_after_rollback": self.serving_after_rollback,
                "champion_after_rollback": self.champion_after_rollback, "steps": self.steps,
                "error": self.error, "report": self.report}


class Loop:
    def __init__(self, workdir: Path, plan: Plan, say: Callable[[str], None], store_url: str | None = None,
                 port: int | None = None):
        from app.datasets import generate_synthetic

        self.plan, self.say, self.workdir = plan, say, workdir
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        base = data / "base.csv"
        generate_synthetic(plan.base_rows, plan.seed).to_csv(base, index=False)
        self.stack = Stack(workdir, base, store_url, port, plan.n_estimators, plan.ab_min_samples)
        self.out = Outcome(workdir=workdir)
        self.client = Client(self.stack.base, self.stack.feedback_token)
        self._draws = 0
        self._trickle: Trickle | None = None

    # ---- populations ----------------------------------------------------------------------------------
    def population(self, n: int, shift: float) -> tuple[list[dict[str, int]], list[int]]:
        from app.datasets import generate_synthetic

        self._draws += 1  # each round its own applicants, all derived from the run's seed
        frame = generate_synthetic(n, self.plan.seed * 1000 + self._draws, shift=shift)
        return requests_of(frame, [c for c in frame.columns if c != "default"], "default")

    def traffic(self, label: str, phase: str, n: int, shift: float) -> Round:
        """Send ``n`` applications, then post their outcomes (they "arrive" once the round is over)."""
        rows, ys = self.population(n, shift)
        scored = self.client.score(rows, ys)
        recorded = self.client.feedback(scored)
        rnd = measure(label, phase, scored)
        self.out.rounds.append(rnd)
        aucs = ", ".join(f"{k} {v:.3f}" for k, v in rnd.auc.items() if k != "all" and not np.isnan(v))
        self.say(f"    {label}: {len(scored)} applications, {recorded} outcomes posted; live ROC-AUC {aucs}")
        return rnd

    def step(self, name: str) -> _Step:
        return _Step(self, name)

    # ---- the loop -------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        p, st, out = self.plan, self.stack, self.out
        out.store = _redact(st.store_url)
        try:
            with self.step("train v1 on the base population"):
                v1 = st.cli_json("train", "--json", "--quiet", "--config", str(st.config), "--promote", "champion")
                out.versions["v1"] = str(v1["version"])
                self.say(f"    v{v1['version']} champion, holdout ROC-AUC {v1['holdout']['roc_auc']:.3f}")
            with self.step("serve it (gunicorn, 2 workers, A/B split once there is a challenger)"):
                st.serve()
                self.say(f"    {st.base}, prediction store {out.store}")
            with self.step("traffic: the base population, then the shifted one"):
                self.traffic("base", "v1", p.warmup_rows, 0.0)
                trickle_rows, _ = self.population(200, p.shift)
                self._trickle = Trickle(self.client, trickle_rows).__enter__()
                for i in range(p.shifted_rounds):
                    self.traffic(f"shift {i + 1}", "v1", p.round_rows, p.shift)
                pre_split_end = time.time()  # the last labelled prediction before the split is older
            with self.step("monitor: drift, live ROC-AUC, retrain policy"):
                self.monitor()
            with self.step("retrain job: base + labelled production data, gated on the newest rows"):
                self.retrain()
            with self.step("A/B split: champion vs challenger on live traffic"):
                v2 = out.versions["v2"]
                wait_until(lambda: self._all_serve("challenger", v2), 60, what=f"the workers to load v{v2}")
                for i in range(p.ab_rounds):
                    self.traffic(f"A/B {i + 1}", "A/B", p.round_rows, p.shift)
                # the A/B period only: the champion's labelled traffic before the split is not part of the test
                # (the window starts after the last of it: a command's start-up is shorter than the monitor run
                # and the training that separate the two)
                out.abtest = st.cli_json("abtest", "report", "--json", "--days", _since(pre_split_end))
                self.say(f"    verdict: {out.abtest['verdict']} ({out.abtest.get('reason', '')})")
            with self.step("promote the challenger"):
                if out.abtest.get("verdict") != "challenger_better":
                    raise SimulationError(f"the A/B verdict is {out.abtest.get('verdict')}: nothing to promote")
                promoted = st.cli("abtest", "promote", "--days", _since(pre_split_end)).stdout.strip()
                self.say("    " + promoted.splitlines()[-1])
                wait_until(lambda: self._all_serve("champion", v2), 60, what=f"the workers to serve v{v2}")
                self.traffic("promoted", "v2", p.round_rows, p.shift)
            with self.step("roll back: v1 on the alias and on the workers"):
                self.say("    " + st.cli("registry", "rollback").stdout.strip().splitlines()[-1])
                v1v = out.versions["v1"]
                wait_until(lambda: self._all_serve("champion", v1v), 60, what=f"the workers to serve v{v1v}")
                rnd = self.traffic("rolled back", "v1", 200, p.shift)
                out.serving_after_rollback = sorted({s.version for s in rnd.scored})
                out.champion_after_rollback = st.cli_json("registry", "show", "champion").get("version")
                out.champion_after_rollback = str(out.champion_after_rollback)
        except SimulationError as e:
            out.error = str(e)
            self.say(f"  stopped: {e}")
        finally:
            if self._trickle is not None:
                self._trickle.__exit__(None, None, None)
            st.stop()
            st.stop_jobs()
        out.requests = {"sent": self.client.sent, "failed": self.client.failed, "failures": self.client.failures}
        if not out.error:
            with self.step("evaluate v1 and v2 on a fresh shifted sample; lineage"):
                self.evaluate()
        return out

    def monitor(self) -> None:
        out = self.out
        summary = self.stack.cli_json("monitor", "--json")
        out.monitor = summary
        drift = summary["drift"]
        live = (summary.get("live") or {}).get("champion") or {}
        self.say(f"    drift in {len(drift['drifted'])} features ({', '.join(drift['drifted'][:6])}"
                 f"{', ...' if len(drift['drifted']) > 6 else ''}); live ROC-AUC of the champion "
                 f"{live.get('roc_auc', float('nan')):.3f} on {live.get('n', '?')} outcomes")
        retrain = summary.get("retrain") or {}
        if not retrain.get("job_id"):
            raise SimulationError(f"the monitor started no retrain job: {retrain}")
        self.say("    retrain triggered: " + "; ".join((retrain.get("reasons") or {}).values()))
        out.job = {"id": retrain["job_id"]}

    def retrain(self) -> None:
        out, st = self.out, self.stack
        auth = {"Authorization": f"Bearer {st.admin_token}"}

        def finished() -> dict[str, Any] | None:
            doc = self.client.call("GET", f"/model/retrain/{out.job['id']}", headers=auth)
            return doc if doc and doc.get("status") not in ("queued", "running") else None

        job = wait_until(finished, 600, 1.0, what="the retrain job")
        out.job = job
        if job["status"] != "succeeded":
            raise SimulationError(f"the retrain job {job['status']}: {job.get('error') or job.get('gate')}")
        v2 = str(job["version"])
        out.versions["v2"] = v2
        job["gate"] = self._gate(v2) or job.get("gate")  # every check, with the champion's score
        champ = [c for c in (job.get("gate") or {}).get("checks", []) if c.get("check") == "champion"]
        vs = f"; the champion on the same rows {champ[0]['champion']:.3f}" if champ and "champion" in champ[0] else ""
        self.say(f"    v{v2} registered as {job.get('alias')}, {job.get('duration_s', 0):.0f} s; newest-holdout "
                 f"ROC-AUC {(job.get('holdout') or {}).get('roc_auc', float('nan')):.3f}{vs}")

    def _gate(self, version: str) -> dict[str, Any] | None:
        """The gate's result with all its checks, as the training run logged it (``gate.json``)."""
        import json
        import tempfile

        import mlflow

        from app.config import Settings
        from app.registry import Registry

        settings = Settings.from_env(self.stack.env)
        try:
            run_id = Registry(settings).get(version).run_id
            with tempfile.TemporaryDirectory() as d:
                path = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).download_artifacts(
                    run_id, "gate.json", d)
                return json.loads(Path(path).read_text())
        except Exception:  # noqa: BLE001 (the report shows the job's gate result instead)
            return None

    def _all_serve(self, alias: str, version: str) -> bool:
        """Both workers answer with ``version`` under ``alias`` (a few answers in a row, any worker)."""
        return all(self.client.serving().get(alias) == version for _ in range(6))

    def evaluate(self) -> None:
        """v1 and v2 on applicants none of them saw, from the shifted population; the lineage of each."""
        from app.config import Settings
        from app.registry import Registry

        rows, ys = self.population(self.plan.eval_rows, self.plan.shift)
        import pandas as pd

        frame = pd.DataFrame(rows)
        reg = Registry(Settings.from_env(self.stack.env))
        for role, version in self.out.versions.items():
            _, bundle = reg.load(version)
            proba = bundle.predict_proba(frame[bundle.schema.feature_names])[:, bundle.bad_index]
            self.out.evaluation[role] = roc_auc_of(ys, proba)
            self.out.lineage[version] = reg.datasets(reg.get(version).run_id)
        self.say("    ROC-AUC on the shifted population: " +
                 ", ".join(f"{k} {v:.3f}" for k, v in self.out.evaluation.items()))


class _Step:
    """Progress and timing of one step of the loop."""

    def __init__(self, loop: Loop, name: str):
        self.loop, self.name = loop, name

    def __enter__(self) -> _Step:
        self.t0 = time.monotonic()
        self.loop.say(f"[{len(self.loop.out.steps) + 1}] {self.name}")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        dt = round(time.monotonic() - self.t0, 1)
        self.loop.out.steps.append({"step": self.name, "seconds": dt, "ok": exc_type is None})


def _since(t0: float) -> str:
    """``--days`` of a window from ``t0`` (a Unix time) to now: a command started now reads from a little after
    ``t0`` (its own start-up time later)."""
    return f"{(time.time() - t0) / 86400:.7f}"


def _dataset(d: dict[str, Any]) -> dict[str, Any]:
    """One MLflow dataset of a version's run, in brief."""
    tags = d.get("tags") or {}
    return {"name": d.get("name"), "context": d.get("context"), "rows": int(tags.get("rows") or 0),
            "holdout_rows": int(tags.get("holdout_rows") or 0), "source": d.get("source")}


def roc_auc_of(y: list[int], proba: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(y), np.asarray(proba)))


def _redact(url: str) -> str:
    from app.monitoring.store import redact_url

    return redact_url(url)


__all__ = ["Loop", "Outcome", "Plan", "roc_auc"]
