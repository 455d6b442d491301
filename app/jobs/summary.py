"""The one reader (and writer) of a training run's summary: the JSON object ``credit-score train --json`` prints
last on stdout (the process runner captures it), and the compact copy ``--summary-file`` writes (the Kubernetes
runner reads it from the training pod's termination message, so it needs no access to pod logs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainSummary:
    version: str | None
    alias: str | None
    gate: dict[str, Any] | None
    selected: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = None


TERMINATION_MESSAGE_LIMIT = 4096  # bytes Kubernetes keeps of a container's termination message
SUMMARY_KEYS = ("version", "alias", "gate", "selected", "holdout")


def format_train_summary(result: dict[str, Any], limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """The run's summary as one JSON line of at most ``limit`` bytes (the holdout metrics and then the gate's
    reasons give way first), which :func:`parse_train_summary` reads back."""
    doc = {k: result.get(k) for k in SUMMARY_KEYS}
    for shrink in ("", "holdout", "reasons"):
        if shrink == "holdout":
            doc["holdout"] = None
        elif shrink == "reasons" and doc.get("gate"):
            doc["gate"] = {**doc["gate"], "reasons": [str(r)[:200] for r in doc["gate"].get("reasons") or []][:5]}
        text = json.dumps(doc, default=str)
        if len(text.encode()) <= limit:
            return text
    gate = doc.get("gate") or {}
    return json.dumps({"version": doc["version"], "alias": doc["alias"], "gate": {"passed": gate.get("passed")}})


def parse_train_summary(text: str) -> TrainSummary | None:
    """The last line that is the train command's summary (a JSON object with a version and a gate), skipping
    progress text and JSON log lines; None when there is none."""
    for line in reversed(text.strip().splitlines()):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "gate" in doc and "version" in doc:
            return TrainSummary(version=doc["version"], alias=doc.get("alias"), gate=doc["gate"],
                                selected=doc.get("selected"), holdout=doc.get("holdout"))
    return None
