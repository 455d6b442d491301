"""A bounded load generator for the blue-green tests: threads POSTing /predict through nginx on 127.0.0.1,
one new connection per request (as simple clients do), recording status, model version, colour and release."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

from tests.unit.test_api import ROW

BODY = json.dumps(ROW).encode()


@dataclass
class Result:
    t: float
    status: int | str
    version: str | None = None
    colour: str | None = None
    release: str | None = None


@dataclass
class Load:
    port: int
    threads: int = 4
    min_requests: int = 0
    max_seconds: float = 90.0
    results: list[Result] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        self._deadline = 0.0
        self.started = False

    def _one(self) -> Result:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/predict", BODY, {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            version = json.loads(body)["model"]["version"] if r.status == 200 else None
            return Result(time.monotonic(), r.status, version, r.getheader("X-Credit-Score-Colour"),
                          r.getheader("X-Credit-Score-Release"))
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            return Result(time.monotonic(), f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def _run(self):
        while time.monotonic() < self._deadline:
            if self._stop.is_set() and len(self.results) >= self.min_requests:
                return
            self.results.append(self._one())

    def start(self) -> Load:
        self.started = True
        self._deadline = time.monotonic() + self.max_seconds
        for w in self._workers:
            w.start()
        return self

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while len(self.results) < n and time.monotonic() < end:
            time.sleep(0.05)

    def stop(self) -> list[Result]:
        """Stop once min_requests were sent (or max_seconds passed); returns every result."""
        self._stop.set()
        for w in self._workers:
            w.join(self.max_seconds + 35)
        return self.results

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status != 200]
