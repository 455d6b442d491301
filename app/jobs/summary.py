"""The one reader of a training run's summary: the JSON object ``credit-score train --json`` prints last on
stdout (the process runner captures it; the Kubernetes runner reads it from the training pod's log, where JSON
log lines may follow it)."""

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
