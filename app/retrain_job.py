"""The retrain job process of the process runner: ``python -m app.retrain_job <job id> [<lock fd>]``.

app/jobs/process.py starts it and :func:`app.jobs.process.run_job` does the work; this program adds the
observer that counts the job's outcome in the service's Prometheus metrics (``PROMETHEUS_MULTIPROC_DIR``, as
the serving workers). It sits above app.jobs, like the CLI, so that the jobs package depends on no monitoring
code.
"""

from __future__ import annotations

import sys

from app.jobs.base import JobStatus
from app.jobs.process import run_job


def count_outcome(status: JobStatus) -> None:
    from app.monitoring.metrics import metrics

    metrics().retrains.labels(outcome=status.status).inc()


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: python -m app.retrain_job <job id> [<lock fd>]", file=sys.stderr)
        return 2
    return run_job(argv[0], int(argv[1]) if len(argv) > 1 else None, on_finished=count_outcome)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
