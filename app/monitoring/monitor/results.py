"""What the monitor's stages hand each other: one typed result per stage, and the run's error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.monitoring.store import PredictionStore

Row = dict[str, Any]  # a prediction as PredictionStore.read_predictions returns it


class MonitorError(RuntimeError):
    """The monitor cannot run (store disabled or unreachable, no champion)."""


@dataclass
class Models:
    """What the monitor needs to know of the registered models."""

    champion: str | None
    challenger: str | None
    schema: Any  # the champion's DatasetSchema
    profiles: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # version -> reference profile
    trained_at: dict[str, str] = field(default_factory=dict)

    def variants(self) -> list[tuple[str, str | None]]:
        """(variant, version) of both aliases, the challenger's version None when there is none."""
        return [("champion", self.champion), ("challenger", self.challenger)]


@dataclass
class Collected:
    """Stage 1 (collect): the models and the store's rows of this run."""

    now: datetime
    store: PredictionStore
    models: Models
    rows: list[Row]  # predictions in the drift window, shadow ones included
    labelled: list[Row]  # predictions with outcomes in the performance window

    @property
    def served(self) -> list[Row]:
        """The window's predictions that answered a request (no shadow ones)."""
        return [r for r in self.rows if not r["shadow"]]

    @property
    def feature_names(self) -> list[str]:
        return self.models.schema.feature_names

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.models.schema.classes]

    @property
    def bad(self) -> str:
        return str(self.models.schema.target.bad_class)


@dataclass
class Drift:
    """Input drift against the champion's training data, and score drift per variant against its own."""

    status: str = "ok"  # ok | no_reference_profile | insufficient_data
    features: list[dict[str, Any]] = field(default_factory=list)  # FeatureDrift.to_dict() per feature
    drifted: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> FeatureDrift.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "features": self.features, "drifted": self.drifted, "scores": self.scores}


@dataclass
class Analysis:
    """Stage 2 (analyse): drift, live performance, fairness and the A/B comparison."""

    drift: Drift
    live: dict[str, dict[str, Any]]  # variant -> {"version": ..., **live_metrics(...)}
    fairness: list[dict[str, Any]]
    fairness_ratios: list[dict[str, Any]]
    abtest: dict[str, Any] | None  # ab_report(...) when there is a challenger


@dataclass
class RetrainDecision:
    """Stage 3 (decide): which retrain rules fire (name -> reason) and whether a job should start now."""

    triggered: bool
    reasons: dict[str, str]
    start: bool = False
    skipped: str | None = None  # why no job starts although a rule fired

    def to_dict(self) -> dict[str, Any]:
        return {"triggered": self.triggered, "reasons": self.reasons, "start": self.start, "skipped": self.skipped}


@dataclass
class Actions:
    """Stage 4 (act): the decision as carried out, the newest retrain job and what retention deleted."""

    decision: RetrainDecision  # start/skipped updated when the runner refused
    dry_run: bool
    job: dict[str, Any] | None  # {"job_id", "started_at"} of the job this run started
    last_job: dict[str, Any] | None
    retention: dict[str, Any]  # {"days", "deleted"}; deleted is None when the purge failed

    def retrain(self) -> dict[str, Any]:
        """The summary's ``retrain`` entry."""
        return {**self.decision.to_dict(), "dry_run": self.dry_run, **(self.job or {})}
