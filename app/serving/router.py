"""A/B and shadow routing between champion and challenger.

``split``: a configured share of traffic is answered by the challenger. The choice is a deterministic hash
of the applicant key when the caller gives one (sticky: the same applicant always sees the same variant),
else of the request id. ``shadow``: the challenger scores every request too, but the champion answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.serving.model import ServedModel
from app.serving.reload import Snapshot

CHAMPION, CHALLENGER = "champion", "challenger"


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a key (first 8 bytes of its sha256)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class Route:
    variant: str
    model: ServedModel
    shadow: ServedModel | None = None


def route(snap: Snapshot, mode: str, split: float, key: str) -> Route:
    """Which model answers (and which shadows) for this request. ``snap.champion`` must not be None."""
    champion, challenger = snap.champion, snap.challenger
    assert champion is not None
    if challenger is None or mode == "off":
        return Route(CHAMPION, champion)
    if mode == "shadow":
        return Route(CHAMPION, champion, shadow=challenger)
    if mode == "split" and bucket(key) < split:
        return Route(CHALLENGER, challenger)
    return Route(CHAMPION, champion)
